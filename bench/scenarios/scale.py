"""Scenario 6, scale: 10,000 jobs in flight tracked by one process.

The jobs (durations 300–600 s, so all of them stay in flight through the measurement) are
created by the benchmark process over 200 environments (50 per environment, the density of
scenario 4), then handed to a child process that tracks them the worker's way: the worker's
AmplifyApi, AdaptiveRateLimiter and JobTracker with the worker's default settings (sweeps
1–30 s), one task waiting on ``tracker.wait`` per job as the dispatcher does. After a warm-up
the child measures, over a steady window: its RSS (peak), CPU share of one core, event-loop lag
(a 50 ms sleep, how late it wakes; p99) and the tracking calls it made per second.

The child: ``python -m bench.scenarios.scale JOBS_FILE WARMUP WINDOW``.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from typing import Any

import anyio
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

from bench.harness.contenders import storage_params
from bench.harness.measure import cpu_seconds, percentile, rss_bytes
from bench.harness.processes import EmulatorProcess, child_env

APP, JOBS, ENVIRONMENTS = "scale", 10_000, 200


async def child(jobs_file: str, warmup: float, window: float) -> dict[str, Any]:
    import os

    from orchestrator.amplify import AmplifyApi
    from orchestrator.aws import open_clients
    from orchestrator.metrics import Metrics
    from orchestrator.ratelimit import AdaptiveRateLimiter
    from orchestrator.settings import Settings
    from orchestrator.tracker import JobTracker
    from orchestrator.worker import limiter_settings, retry_policy, tracker_settings

    jobs: list[list[str]] = json.loads(await anyio.Path(jobs_file).read_text())
    settings = Settings(queue_url="unused")
    pid = os.getpid()
    lags: list[float] = []
    peak_rss = 0
    async with open_clients(max_connections=64) as (_sqs, amplify):
        metrics = Metrics()
        api = AmplifyApi(
            amplify,
            AdaptiveRateLimiter(limiter_settings(settings)),
            retry_policy(settings),
            metrics,
        )
        tracker = JobTracker(api, metrics, tracker_settings(settings))

        async def follow(env: str, job_id: str) -> None:
            await tracker.wait((APP, env), job_id, "CreateBackendStorage", 3600)

        async with anyio.create_task_group() as group:
            await group.start(tracker.run)
            for env, job_id in jobs:
                group.start_soon(follow, env, job_id)
            await anyio.sleep(warmup)
            calls0 = _list_calls(metrics)
            cpu0, wall0 = cpu_seconds(pid), time.perf_counter()
            while time.perf_counter() - wall0 < window:
                began = time.perf_counter()
                await anyio.sleep(0.05)
                lags.append(max(0.0, time.perf_counter() - began - 0.05))
                peak_rss = max(peak_rss, rss_bytes(pid))
            elapsed = time.perf_counter() - wall0
            cpu = cpu_seconds(pid) - cpu0
            calls = _list_calls(metrics) - calls0
            in_flight = tracker.in_flight
            group.cancel_scope.cancel()
    return {
        "in_flight": in_flight,
        "rss_mb": round(peak_rss / 2**20, 1),
        "cpu_share": round(cpu / elapsed, 4),
        "loop_lag_p50_ms": round(1000 * percentile(lags, 0.5), 2),
        "loop_lag_p99_ms": round(1000 * percentile(lags, 0.99), 2),
        "loop_lag_max_ms": round(1000 * max(lags), 2),
        "tracking_calls_per_s": round(calls / elapsed, 2),
        "window_s": round(elapsed, 1),
        "warmup_s": warmup,
    }


def _list_calls(metrics: Any) -> float:
    total = 0.0
    for family in metrics.api_calls.collect():
        for sample in family.samples:
            listing = sample.labels.get("operation") == "ListBackendJobs"
            if listing and sample.name.endswith("_total"):
                total += sample.value
    return total


async def run(emulator: EmulatorProcess, quick: bool) -> dict[str, Any]:
    warmup, window = (15.0, 20.0) if quick else (30.0, 60.0)
    environments = [f"s{i}" for i in range(ENVIRONMENTS)]
    emulator.reset()
    emulator.configure(
        rate=None, apps={APP: environments}, job_duration=[300.0, 600.0], conflict_mode="accept"
    )
    config = AioConfig(retries={"mode": "standard"}, max_pool_connections=64)
    jobs: list[tuple[str, str]] = []
    async with get_session().create_client(
        "amplifybackend", endpoint_url=emulator.url, config=config
    ) as client:
        counter = iter(range(JOBS))

        async def create() -> None:
            for index in counter:
                env = environments[index % ENVIRONMENTS]
                response = await client.create_backend_storage(**storage_params(APP, env, index))
                jobs.append((env, response["JobId"]))

        async with anyio.create_task_group() as group:
            for _ in range(32):
                group.start_soon(create)
    with tempfile.NamedTemporaryFile("w", suffix=".json") as jobs_file:
        json.dump(jobs, jobs_file)
        jobs_file.flush()
        command = [
            sys.executable, "-m", "bench.scenarios.scale", jobs_file.name, str(warmup), str(window)
        ]  # fmt: skip
        result = await anyio.run_process(command, env=child_env(), check=True, stderr=None)
    measured: dict[str, Any] = json.loads(result.stdout.decode().strip().splitlines()[-1])
    return {"jobs": JOBS, "environments": ENVIRONMENTS, **measured}


if __name__ == "__main__":
    jobs_path, warmup_s, window_s = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    print(json.dumps(anyio.run(child, jobs_path, warmup_s, window_s)))
