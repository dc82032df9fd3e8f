"""Follows every JobId to COMPLETED or FAILED with ListBackendJobs sweeps.

One sweeper task per (AppId, BackendEnvironmentName) with jobs in flight: each sweep walks
ListBackendJobs pages (newest first on the service, so it stops as soon as every tracked job of
the environment has been seen) and settles the jobs that reached a terminal status. The cost is
one paginated sweep per environment per interval, whatever the number of jobs, never one
GetBackendJob per job per poll.

The interval adapts: ``clamp(age of the youngest job * 0.25, min, max)``, so a fresh job is
looked at quickly and a long one is not polled hard; each sweep's due time is then coalesced
(moved by at most 5% of the interval onto a shared grid) so that environments falling due
together sweep together. A new job wakes its environment's sweeper.
A job not listed yet is tolerated for ``list_grace`` seconds (the service is eventually
consistent). Sweeps go through the same rate limiter and retries as every other call.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import anyio
import structlog
from anyio.abc import TaskGroup, TaskStatus

from orchestrator import logs, servicemodel
from orchestrator.amplify import AmplifyApi
from orchestrator.clock import Clock, MonotonicClock, wall_time
from orchestrator.errors import JobTimedOut, OrchestratorError
from orchestrator.metrics import Metrics

log = logs.get_logger("orchestrator.tracker")
EnvKey = tuple[str, str]


@dataclass(frozen=True)
class TrackerSettings:
    sweep_min: float = 1.0
    sweep_max: float = 30.0
    age_factor: float = 0.25
    list_grace: float = 60.0
    page_size: int = 25


@dataclass(frozen=True)
class JobResult:
    job_id: str
    status: str
    error: str | None = None
    update_time: str | None = None


@dataclass(eq=False)
class _Tracked:
    job_id: str
    operation: str
    registered_at: float
    done: anyio.Event = field(default_factory=anyio.Event)
    result: JobResult | None = None
    last_status: str = ""
    #: The registering task's log context (request_id, operation, app_id, environment, job_id).
    context: dict[str, Any] = field(default_factory=structlog.contextvars.get_contextvars)


class JobTracker:
    def __init__(
        self,
        api: AmplifyApi,
        metrics: Metrics,
        settings: TrackerSettings | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._api = api
        self._metrics = metrics
        self._s = settings or TrackerSettings()
        self._clock = clock or MonotonicClock()
        self._envs: dict[EnvKey, dict[str, _Tracked]] = {}
        self._wake: dict[EnvKey, anyio.Event] = {}
        self._tg: TaskGroup | None = None

    @property
    def in_flight(self) -> int:
        return sum(len(jobs) for jobs in self._envs.values())

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Own the sweeper tasks until cancelled."""
        async with anyio.create_task_group() as tg:
            self._tg = tg
            task_status.started()
            await anyio.sleep_forever()

    async def wait(self, key: EnvKey, job_id: str, operation: str, limit: float) -> JobResult:
        """Block until the job is terminal; raise JobTimedOut after ``limit`` seconds."""
        tracked = self._register(key, job_id, operation)
        try:
            with anyio.move_on_after(limit):
                await tracked.done.wait()
        finally:
            self._forget(key, tracked)
        if tracked.result is None:
            self._metrics.jobs_finished.labels(operation, "TIMED_OUT").inc()
            raise JobTimedOut(f"job {job_id} not terminal after {limit:g}s")
        return tracked.result

    def _register(self, key: EnvKey, job_id: str, operation: str) -> _Tracked:
        assert self._tg is not None, "JobTracker.run() is not running"
        tracked = _Tracked(job_id, operation, self._clock.now())
        jobs = self._envs.setdefault(key, {})
        if not jobs:
            self._wake[key] = anyio.Event()
            self._tg.start_soon(self._sweep_env, key, name=f"sweep {key[0]}/{key[1]}")
        jobs[job_id] = tracked
        self._wake[key].set()
        self._metrics.jobs_in_flight.labels(operation).inc()
        return tracked

    def _forget(self, key: EnvKey, tracked: _Tracked) -> None:
        jobs = self._envs.get(key, {})
        if jobs.pop(tracked.job_id, None) is not None:
            self._metrics.jobs_in_flight.labels(tracked.operation).dec()

    async def _sweep_env(self, key: EnvKey) -> None:
        # Spawned from the first registering request's task: drop its inherited log context.
        structlog.contextvars.clear_contextvars()
        while self._envs.get(key):
            interval = self._interval(key)
            with anyio.CancelScope(deadline=coalesce(anyio.current_time() + interval, interval)):
                await self._wake[key].wait()
                await self._clock.sleep(self._s.sweep_min)
            self._wake[key] = anyio.Event()
            if self._envs.get(key):
                await self._sweep_safely(key)
        self._envs.pop(key, None)
        self._wake.pop(key, None)

    def _interval(self, key: EnvKey) -> float:
        now = self._clock.now()
        youngest = min((now - t.registered_at for t in self._envs[key].values()), default=0.0)
        return min(self._s.sweep_max, max(self._s.sweep_min, youngest * self._s.age_factor))

    async def _sweep_safely(self, key: EnvKey) -> None:
        started = self._clock.now()
        try:
            await self._sweep(key)
        except OrchestratorError as exc:
            log.warning("sweep_failed", app_id=key[0], environment=key[1], error=str(exc))
        self._metrics.tracker_sweep_duration.observe(self._clock.now() - started)

    async def _sweep(self, key: EnvKey) -> None:
        remaining = set(self._envs.get(key, {}))
        pages = 0
        pager = self._api.list_jobs(*key, page_size=self._s.page_size)
        async with contextlib.aclosing(pager):
            async for page in pager:
                pages += 1
                for job in page:
                    if job.get("JobId") in remaining:
                        remaining.discard(job["JobId"])
                        self._observe(key, job)
                if not remaining:
                    break
        self._metrics.tracker_sweeps.inc()
        self._metrics.tracker_pages.observe(pages)
        self._expire_unlisted(key, remaining)

    def _observe(self, key: EnvKey, job: dict[str, Any]) -> None:
        tracked = self._envs.get(key, {}).get(job["JobId"])
        if tracked is None:
            return
        status = str(job.get("Status", ""))
        if status != tracked.last_status:
            tracked.last_status = status
            log.info("job_status", **{**tracked.context, "job_id": tracked.job_id}, status=status)
        if status in servicemodel.TERMINAL_JOB_STATUSES:
            self._settle(
                tracked, JobResult(tracked.job_id, status, job.get("Error"), job.get("UpdateTime"))
            )

    def _settle(self, tracked: _Tracked, result: JobResult) -> None:
        tracked.result = result
        tracked.done.set()
        self._metrics.jobs_finished.labels(tracked.operation, result.status).inc()
        elapsed = self._clock.now() - tracked.registered_at
        self._metrics.job_duration.labels(tracked.operation, result.status).observe(elapsed)
        delay = detection_delay(result.update_time)
        if delay is not None:
            self._metrics.detection_delay.observe(delay)

    def _expire_unlisted(self, key: EnvKey, unlisted: set[str]) -> None:
        now = self._clock.now()
        for job_id in unlisted:
            tracked = self._envs.get(key, {}).get(job_id)
            if tracked and now - tracked.registered_at > self._s.list_grace:
                error = f"job {job_id} was never listed by ListBackendJobs"
                self._settle(tracked, JobResult(job_id, "FAILED", error))


def coalesce(deadline: float, interval: float, slack: float = 0.1) -> float:
    """Timer coalescing: ``deadline`` moved to the nearest multiple of a step (the power of two
    nearest below ``slack * interval``), at most half a step away. Environments whose sweeps
    fall due within one step then sweep together, and calls made together cost a fraction of
    the CPU of the same calls made one at a time (``python -m bench.call_shape``)."""
    if slack * interval <= 0:
        return deadline
    step = 2.0 ** math.floor(math.log2(slack * interval))
    return round(deadline / step) * step


def detection_delay(update_time: str | None) -> float | None:
    """Seconds from a job's terminal UpdateTime to now (None when it cannot be parsed)."""
    if not update_time:
        return None
    try:
        stamp = datetime.fromisoformat(update_time.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
    return max(0.0, wall_time() - stamp)
