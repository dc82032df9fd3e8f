"""The contenders for mutating calls, and the calls they make.

* ``ours``: the worker's :class:`~orchestrator.amplify.AmplifyApi` (one attempt per botocore
  call) under its :class:`~orchestrator.ratelimit.AdaptiveRateLimiter` and
  :class:`~orchestrator.backoff.RetryPolicy`, configured as the worker's defaults configure them;
* ``legacy``, ``standard``, ``adaptive``: a plain aiobotocore client with botocore's own retry
  mode of that name and its default attempts (legacy 5, standard 3, adaptive 3): what a user
  gets without us.

All of them run against the same emulator settings, one after the other, and the emulator's
counters (reset between contenders) give attempts and throttles.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

from orchestrator import servicemodel
from orchestrator.amplify import AmplifyApi
from orchestrator.errors import OrchestratorError
from orchestrator.metrics import Metrics
from orchestrator.ratelimit import AdaptiveRateLimiter
from orchestrator.settings import Settings
from orchestrator.worker import limiter_settings, retry_policy

PEERS = ("legacy", "standard", "adaptive")
CONTENDERS = ("ours", *PEERS)
APP = "bench"


class Contender:
    """A way to make one mutating call until it succeeds or fails for good."""

    def __init__(self, name: str, client: Any, api: AmplifyApi | None) -> None:
        self.name = name
        self.client = client
        self.api = api

    async def call(self, operation: str, params: dict[str, Any]) -> bool:
        try:
            if self.api is not None:
                await self.api.call(operation, params)
            else:
                await getattr(self.client, servicemodel.method_name(operation))(**params)
        except (OrchestratorError, Exception):  # a peer's final failure is a botocore error
            return False
        return True


def worker_settings(**overrides: Any) -> Settings:
    return Settings(queue_url="unused", **overrides)


@contextlib.asynccontextmanager
async def contender(name: str, endpoint: str, **overrides: Any) -> AsyncIterator[Contender]:
    """``ours`` with the worker's defaults (``overrides`` change Settings fields), or a peer."""
    if name == "ours":
        # The worker's AmplifyBackend client (orchestrator.aws.open_clients): botocore retries
        # off, one attempt per call; ours retries under its limiter.
        config = AioConfig(retries={"mode": "standard", "total_max_attempts": 1},
                           max_pool_connections=128)  # fmt: skip
    else:
        config = AioConfig(retries={"mode": name}, max_pool_connections=128)
    async with get_session().create_client(
        servicemodel.SERVICE_NAME, endpoint_url=endpoint, config=config
    ) as client:
        api = None
        if name == "ours":
            settings = worker_settings(**overrides)
            limiter = AdaptiveRateLimiter(limiter_settings(settings))
            api = AmplifyApi(client, limiter, retry_policy(settings), Metrics())
        yield Contender(name, client, api)


def storage_params(app: str, env: str, index: int | str) -> dict[str, Any]:
    return {
        "AppId": app,
        "BackendEnvironmentName": env,
        "ResourceName": f"r{index}",
        "ResourceConfig": {"ServiceName": "S3", "Permissions": {"Authenticated": ["READ"]}},
    }


def storage_request(request_id: str, app: str, env: str, **extra: Any) -> dict[str, Any]:
    """A change request (the SQS body) creating one storage resource."""
    return {
        "request_id": request_id,
        "operation": "CreateBackendStorage",
        "params": storage_params(app, env, request_id.replace(".", "-")),
        **extra,
    }
