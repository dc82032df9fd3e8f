"""Scenario 4, tracking cost: jobs in flight across environments, durations 30–120 s scaled
down by ``SCALE`` for every contender alike (sweep bounds and poll period scaled the same).

Ours: the worker's JobTracker (one paginated ListBackendJobs sweep per environment per
interval). Peer: the Amplify CLI's way, GetBackendJob every 2 s per job. Reported: API calls
spent on tracking per job, detection delay (terminal UpdateTime → noticed), p50/p99.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import anyio
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

from bench.harness import EmulatorProcess, percentile, storage_params
from orchestrator.amplify import AmplifyApi
from orchestrator.metrics import Metrics
from orchestrator.ratelimit import AdaptiveRateLimiter
from orchestrator.settings import Settings
from orchestrator.tracker import JobTracker

SCALE = 10.0
CLI_POLL = 2.0


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


async def _create_jobs(client: Any, environments: list[str], count: int) -> list[tuple[str, str]]:
    jobs = []
    for index in range(count):
        env = environments[index % len(environments)]
        response = await client.create_backend_storage(**storage_params("track", env, index))
        jobs.append((env, response["JobId"]))
    return jobs


async def ours(client: Any, jobs: list[tuple[str, str]]) -> list[float]:
    defaults = Settings(queue_url="unused")
    settings = Settings(
        queue_url="unused",
        sweep_min=defaults.sweep_min / SCALE,
        sweep_max=defaults.sweep_max / SCALE,
        list_grace=defaults.list_grace / SCALE,
    )
    limiter = AdaptiveRateLimiter(settings.limiter())
    api = AmplifyApi(client, limiter, settings.retry_policy(), Metrics())
    tracker = JobTracker(api, Metrics(), settings.tracker())
    delays: list[float] = []

    async def follow(env: str, job_id: str) -> None:
        result = await tracker.wait(("track", env), job_id, "CreateBackendStorage", 600)
        if result.update_time:
            delays.append(time.time() - _epoch(result.update_time))

    async with anyio.create_task_group() as services:
        await services.start(tracker.run)
        async with anyio.create_task_group() as group:
            for env, job_id in jobs:
                group.start_soon(follow, env, job_id)
        services.cancel_scope.cancel()
    return delays


async def cli_way(client: Any, jobs: list[tuple[str, str]]) -> list[float]:
    delays: list[float] = []

    async def poll(env: str, job_id: str) -> None:
        while True:
            await anyio.sleep(CLI_POLL / SCALE)
            job = await client.get_backend_job(
                AppId="track", BackendEnvironmentName=env, JobId=job_id
            )
            if job.get("Status") in {"COMPLETED", "FAILED"}:
                delays.append(time.time() - _epoch(job["UpdateTime"]))
                return

    async with anyio.create_task_group() as group:
        for env, job_id in jobs:
            group.start_soon(poll, env, job_id)
    return delays


async def run(emulator: EmulatorProcess, quick: bool) -> dict[str, Any]:
    count, env_count = (200, 10) if quick else (1000, 20)
    environments = [f"env{i}" for i in range(env_count)]
    results: dict[str, Any] = {"jobs": count, "environments": env_count, "time_scale": SCALE}
    config = AioConfig(retries={"mode": "standard"}, max_pool_connections=128)
    for name, follow in (("ours", ours), ("getbackendjob_every_2s", cli_way)):
        emulator.reset()
        emulator.configure(
            rate=None,
            apps={"track": environments},
            job_duration=(30 / SCALE, 120 / SCALE),
            conflict_mode="accept",
        )
        async with get_session().create_client(
            "amplifybackend", endpoint_url=emulator.url, config=config
        ) as client:
            jobs = await _create_jobs(client, environments, count)
            delays = await follow(client, jobs)
        calls = emulator.stats()["calls"]
        tracking = calls.get("ListBackendJobs", 0) + calls.get("GetBackendJob", 0)
        results[name] = {
            "tracking_calls": tracking,
            "calls_per_job": round(tracking / count, 3),
            "detection_p50_s": round(percentile(delays, 0.5), 3),
            "detection_p99_s": round(percentile(delays, 0.99), 3),
            "noticed": len(delays),
        }
    ratio = results["getbackendjob_every_2s"]["tracking_calls"] / max(
        1, results["ours"]["tracking_calls"]
    )
    results["fewer_calls_ratio"] = round(ratio, 1)
    results["sweep_max_scaled_s"] = Settings(queue_url="unused").sweep_max / SCALE
    results["detection_target_s"] = round((Settings(queue_url="unused").sweep_max + 1) / SCALE, 2)
    return results
