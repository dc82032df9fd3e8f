"""What every benchmark scenario shares: the emulator, the contenders, measurements.

Contenders for mutating calls:

* ``ours``: the worker's :class:`~orchestrator.amplify.AmplifyApi` (one attempt per botocore
  call) under its :class:`~orchestrator.ratelimit.AdaptiveRateLimiter` and
  :class:`~orchestrator.backoff.RetryPolicy`, configured as the worker's defaults configure them;
* ``legacy``, ``standard``, ``adaptive``: a plain aiobotocore client with botocore's own retry
  mode of that name and its default attempts: what a user gets without us.

All of them run against the same emulator settings in the same process, one after the other,
and the emulator's counters (reset between contenders) give attempts and throttles.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

from orchestrator import servicemodel
from orchestrator.amplify import AmplifyApi
from orchestrator.errors import OrchestratorError
from orchestrator.metrics import Metrics
from orchestrator.ratelimit import AdaptiveRateLimiter
from orchestrator.settings import Settings

PEERS = ("legacy", "standard", "adaptive")
CONTENDERS = ("ours", *PEERS)
APP = "bench"


@dataclass
class Calls:
    """Offer → success (or final failure) times of each call, seconds since the start."""

    offered: list[float] = field(default_factory=list)
    done: list[float] = field(default_factory=list)
    failed: int = 0
    timeline: list[float] = field(default_factory=list)

    def latencies(self) -> list[float]:
        return [d - o for o, d in zip(self.offered, self.done, strict=True)]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


class Contender:
    """A way to make one mutating call until it succeeds or fails for good."""

    def __init__(self, name: str, client: Any, api: AmplifyApi | None) -> None:
        self.name = name
        self._client = client
        self._api = api

    async def call(self, operation: str, params: dict[str, Any]) -> bool:
        try:
            if self._api is not None:
                await self._api.call(operation, params)
            else:
                await getattr(self._client, servicemodel.method_name(operation))(**params)
        except (OrchestratorError, Exception):  # a peer's final failure is a botocore error
            return False
        return True


@contextlib.asynccontextmanager
async def contender(name: str, endpoint: str, **overrides: Any) -> AsyncIterator[Contender]:
    """``ours`` with the worker's defaults (``overrides`` change Settings fields), or a peer."""
    if name == "ours":
        settings = Settings(queue_url="unused", **overrides)
        config = AioConfig(retries={"mode": "standard", "total_max_attempts": 1},
                           max_pool_connections=128)  # fmt: skip
    else:
        config = AioConfig(retries={"mode": name}, max_pool_connections=128)
    async with get_session().create_client(
        servicemodel.SERVICE_NAME, endpoint_url=endpoint, config=config
    ) as client:
        api = None
        if name == "ours":
            limiter = AdaptiveRateLimiter(settings.limiter())
            api = AmplifyApi(client, limiter, settings.retry_policy(), Metrics())
        yield Contender(name, client, api)


def storage_params(app: str, env: str, index: int) -> dict[str, Any]:
    return {
        "AppId": app,
        "BackendEnvironmentName": env,
        "ResourceName": f"r{index}",
        "ResourceConfig": {"ServiceName": "S3", "Permissions": {"Authenticated": ["READ"]}},
    }


def since(start: float) -> float:
    return time.perf_counter() - start
