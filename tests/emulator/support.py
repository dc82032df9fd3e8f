"""Test support: the base knobs, client settings, and polling with a deadline (no fixed sleeps)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from orchestrator.emulator import EmulatorConfig
from tests.emulator.world import APP, ENV, OTHER_APP, params_for

BASE: dict[str, Any] = {
    "job_duration": (0.0, 0.0),
    "job_duration_dist": "fixed",
    "apps": {APP: [ENV, "prod"], OTHER_APP: [ENV]},
    "seed": 1234,
}
CREDENTIALS = {
    "region_name": "us-east-1",
    "aws_access_key_id": "testing",
    "aws_secret_access_key": "testing",
}
ONE_ATTEMPT = {"total_max_attempts": 1, "mode": "standard"}  # no retry at all
SIGNED = {
    "Authorization": (
        "AWS4-HMAC-SHA256 Credential=testing/20250101/us-east-1/amplifybackend/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=" + "ab" * 32
    ),
    "X-Amz-Date": "20250101T000000Z",
}


def config(**knobs: Any) -> EmulatorConfig:
    return EmulatorConfig(**{**BASE, **knobs})


def wait_until(predicate: Callable[[], Any], timeout: float = 5.0, step: float = 0.005) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(step)


async def async_wait_until(
    predicate: Callable[[], Awaitable[Any]], within: float = 5.0, step: float = 0.005
) -> Any:
    """``wait_until`` for coroutines (TimeoutError after ``within`` seconds)."""
    async with asyncio.timeout(within):
        while True:
            value = await predicate()
            if value:
                return value
            await asyncio.sleep(step)


TERMINAL = {"COMPLETED", "FAILED"}
CLOCK_SLACK = 0.003  # emulator wall clock = its start wall time + monotonic time since


def stamp(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def auth_params(name: str, env: str = ENV, app: str = APP) -> dict[str, Any]:
    params = params_for("CreateBackendAuth", {})
    params.update(AppId=app, BackendEnvironmentName=env, ResourceName=name)
    return params


def get_job(client: Any, job_id: str, env: str = ENV, app: str = APP) -> dict[str, Any]:
    return dict(client.get_backend_job(AppId=app, BackendEnvironmentName=env, JobId=job_id))


def terminal(client: Any, job_id: str, env: str = ENV, app: str = APP) -> dict[str, Any] | None:
    """The job if it is COMPLETED or FAILED, else None (for ``wait_until``)."""
    job = get_job(client, job_id, env, app)
    return job if job["Status"] in TERMINAL else None
