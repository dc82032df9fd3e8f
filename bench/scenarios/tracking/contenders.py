"""Scenario 4's contenders, each a :data:`Wait`: ours (the worker's JobTracker), the
Amplify CLI's GetBackendJob poll, and a plain ListBackendJobs sweep."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio

from bench.harness.contenders import contender
from bench.scenarios.tracking.config import (
    APP,
    CLI_POLL,
    JOB_LIMIT,
    OPERATION,
    PAGE_SIZE,
    SCALE,
    sweep_max,
    tracker_settings,
)
from orchestrator.errors import OrchestratorError
from orchestrator.metrics import Metrics
from orchestrator.servicemodel import TERMINAL_JOB_STATUSES
from orchestrator.tracker import JobTracker

#: Wait for one job: (environment, JobId) → its terminal UpdateTime, or None if never noticed.
Wait = Callable[[str, str], Awaitable[str | None]]


@contextlib.asynccontextmanager
async def ours(url: str) -> AsyncIterator[Wait]:
    """The worker's AmplifyApi and JobTracker (scaled), running for the life of the context."""
    async with contender("ours", url) as client, anyio.create_task_group() as services:
        assert client.api is not None
        tracker = JobTracker(client.api, Metrics(), tracker_settings())
        await services.start(tracker.run)

        async def wait(env: str, job_id: str) -> str | None:
            try:
                result = await tracker.wait((APP, env), job_id, OPERATION, JOB_LIMIT / SCALE)
            except OrchestratorError:  # JobTimedOut
                return None
            return result.update_time if result.status in TERMINAL_JOB_STATUSES else None

        yield wait
        services.cancel_scope.cancel()


def cli_way(client: Any) -> Wait:
    """GetBackendJob every ``CLI_POLL`` s (scaled) until the job is terminal."""

    async def wait(env: str, job_id: str) -> str | None:
        with anyio.move_on_after(JOB_LIMIT / SCALE):
            while True:
                await anyio.sleep(CLI_POLL / SCALE)
                job = await client.get_backend_job(
                    AppId=APP, BackendEnvironmentName=env, JobId=job_id
                )
                if job.get("Status") in TERMINAL_JOB_STATUSES:
                    return str(job["UpdateTime"])
        return None

    return wait


async def find_job(client: Any, env: str, job_id: str) -> dict[str, Any] | None:
    """Walk ListBackendJobs pages (no filter) until ``job_id`` is listed or the pages end."""
    token: str | None = None
    while True:
        more = {"NextToken": token} if token else {}
        page = await client.list_backend_jobs(
            AppId=APP, BackendEnvironmentName=env, MaxResults=PAGE_SIZE, **more
        )
        for job in page.get("Jobs", []):
            if job.get("JobId") == job_id:
                return dict(job)
        token = page.get("NextToken")
        if not token:
            return None


def list_sweep(client: Any) -> Wait:
    """Every ``sweep_max`` (scaled), one paginated ListBackendJobs walk of the environment."""

    async def wait(env: str, job_id: str) -> str | None:
        with anyio.move_on_after(JOB_LIMIT / SCALE):
            while True:
                await anyio.sleep(sweep_max())
                job = await find_job(client, env, job_id)
                if job and job.get("Status") in TERMINAL_JOB_STATUSES:
                    return str(job["UpdateTime"])
        return None

    return wait


@contextlib.asynccontextmanager
async def waiter(name: str, url: str, client: Any) -> AsyncIterator[Wait]:
    """The contender called ``name``; the peers track with ``client`` (standard retries)."""
    if name == "ours":
        async with ours(url) as wait:
            yield wait
    else:
        yield cli_way(client) if name == "getbackendjob_every_2s" else list_sweep(client)
