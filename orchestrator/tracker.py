"""Follows every JobId to COMPLETED or FAILED through ListBackendJobs, at a cost per job that
depends neither on the environment's history nor on the order the service lists jobs in.

One task per (AppId, BackendEnvironmentName) with jobs in flight. Each job has its own next
check, planned by :class:`orchestrator.schedule.Durations` from the durations of the
operation's earlier jobs (geometric in the job's age until enough are known). When checks fall
due, the environment's jobs are looked at in whichever way costs fewer calls:

* one ListBackendJobs call per due job with the ``JobId`` filter (one page, whatever the
  history: the worker has one job in flight per environment, so this is the usual way);
* or one sweep of the environment's pages, when more jobs are due than the last sweep took
  pages (it stops once every tracked job has been seen, never on a belief about the order).

Due times are coalesced (:func:`orchestrator.schedule.coalesce`): environments falling due
together are looked at together. A job not listed yet is tolerated for ``list_grace`` seconds
(the service is eventually consistent). Checks share every call's rate limiter and retries.

Tracing: each :meth:`JobTracker.wait` is a ``job wait`` span of the waiting request (each status
change an event on it); a check by JobId runs inside that span, so its ListBackendJobs call is
in the request's trace; a sweep is a trace of its own, linked to the waits it serves.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

import anyio
import structlog
from anyio.abc import TaskGroup, TaskStatus
from opentelemetry.trace import INVALID_SPAN, Span, StatusCode

from orchestrator import defaults, logs, servicemodel
from orchestrator.amplify import AmplifyApi
from orchestrator.clock import Clock, MonotonicClock
from orchestrator.errors import JobTimedOut, OrchestratorError
from orchestrator.messages import EnvKey
from orchestrator.metrics import Metrics
from orchestrator.schedule import Durations, ScheduleSettings, coalesce
from orchestrator.spans import NO_TRACER, Tracer
from orchestrator.timestamps import detection_delay, parse_timestamp

log = logs.get_logger("orchestrator.tracker")


@dataclass(frozen=True)
class TrackerSettings:
    sweep_min: float = defaults.SWEEP_MIN
    sweep_max: float = defaults.SWEEP_MAX
    age_factor: float = 0.25
    list_grace: float = defaults.LIST_GRACE
    page_size: int = defaults.LIST_PAGE_SIZE

    def schedule(self) -> ScheduleSettings:
        return ScheduleSettings(self.sweep_min, self.sweep_max, self.age_factor)


@dataclass(frozen=True)
class JobResult:
    job_id: str
    status: str
    error: str | None = None
    update_time: str | None = None
    #: ListBackendJobs walks that looked for the job (what tracking it cost).
    checks: int = 0


@dataclass(eq=False)
class _Tracked:
    job_id: str
    operation: str
    registered_at: float
    due: float
    done: anyio.Event = field(default_factory=anyio.Event)
    result: JobResult | None = None
    last_status: str = ""
    checks: int = 0
    #: The registering task's log context (request_id, operation, app_id, environment, job_id).
    context: dict[str, Any] = field(default_factory=structlog.contextvars.get_contextvars)
    #: The waiting request's ``job wait`` span (a no-op one with tracing off).
    span: Span = INVALID_SPAN


class JobTracker:
    def __init__(
        self,
        api: AmplifyApi,
        metrics: Metrics,
        settings: TrackerSettings | None = None,
        clock: Clock | None = None,
        tracer: Tracer = NO_TRACER,
    ) -> None:
        self._api = api
        self._metrics = metrics
        self._s = settings or TrackerSettings()
        self._clock = clock or MonotonicClock()
        self._tracer = tracer
        self._durations = Durations(self._s.schedule())
        self._envs: dict[EnvKey, dict[str, _Tracked]] = {}
        self._wake: dict[EnvKey, anyio.Event] = {}
        #: Environments whose task is running.
        self._followers: set[EnvKey] = set()
        #: Pages the environment's last sweep walked: what the next one is expected to cost.
        self._sweep_pages: dict[EnvKey, int] = {}
        self._tg: TaskGroup | None = None

    @property
    def in_flight(self) -> int:
        return sum(len(jobs) for jobs in self._envs.values())

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Own the per-environment tasks until cancelled."""
        async with anyio.create_task_group() as tg:
            self._tg = tg
            task_status.started()
            await anyio.sleep_forever()

    async def wait(
        self, key: EnvKey, job_id: str, operation: str, limit: float, *, age: float = 0.0
    ) -> JobResult:
        """Block until the job is terminal; raise JobTimedOut after ``limit`` seconds.
        ``age``: seconds since the job's call was made (a resumed job is not new)."""
        with self._tracer.job_wait(*key, job_id, operation) as span:
            tracked = self._register(key, job_id, operation, max(0.0, age), span)
            try:
                with anyio.move_on_after(limit):
                    await tracked.done.wait()
            finally:
                self._forget(key, tracked)
            if tracked.result is None:
                self._metrics.jobs_finished.labels(operation, "TIMED_OUT").inc()
                span.set_attribute("orchestrator.job.status", "TIMED_OUT")
                raise JobTimedOut(f"job {job_id} not terminal after {limit:g}s")
            if span.is_recording():
                _job_result(span, tracked.result)
            return tracked.result

    def _register(
        self, key: EnvKey, job_id: str, operation: str, age: float, span: Span
    ) -> _Tracked:
        assert self._tg is not None, "JobTracker.run() is not running"
        now = self._clock.now()
        due = now + self._durations.next_check(operation, age)
        tracked = _Tracked(job_id, operation, now - age, due, span=span)
        self._envs.setdefault(key, {})[job_id] = tracked
        if key not in self._followers:  # exactly one task per environment, ever at once
            self._followers.add(key)
            self._wake[key] = anyio.Event()
            self._tg.start_soon(self._follow_env, key, name=f"track {key[0]}/{key[1]}")
        self._wake[key].set()
        self._metrics.jobs_in_flight.labels(operation).inc()
        return tracked

    def _forget(self, key: EnvKey, tracked: _Tracked) -> None:
        jobs = self._envs.get(key, {})
        if jobs.get(tracked.job_id) is tracked:
            del jobs[tracked.job_id]
            self._metrics.jobs_in_flight.labels(tracked.operation).dec()

    async def _follow_env(self, key: EnvKey) -> None:
        # Spawned from the first registering request's task: drop its inherited log context
        # and trace context (its checks serve every request's job).
        structlog.contextvars.clear_contextvars()
        try:
            with self._tracer.detached():
                await self._follow_due(key)
        finally:
            # No await since the loop saw no job: a job registered from here on starts a new
            # task, and this one is gone (two tasks on one environment would check twice).
            self._followers.discard(key)
            if not self._envs.get(key):
                self._envs.pop(key, None)
                self._wake.pop(key, None)
                self._sweep_pages.pop(key, None)

    async def _follow_due(self, key: EnvKey) -> None:
        while self._envs.get(key):
            gap = max(0.0, min(t.due for t in self._envs[key].values()) - self._clock.now())
            deadline = coalesce(anyio.current_time() + gap, gap)
            with anyio.CancelScope(deadline=deadline):
                await self._wake[key].wait()
            self._wake[key] = anyio.Event()
            due = self._due(key, slack=0.05 * gap)
            if due:
                await self._check_safely(key, due)

    def _due(self, key: EnvKey, slack: float) -> list[_Tracked]:
        horizon = self._clock.now() + slack
        return [t for t in self._envs.get(key, {}).values() if t.due <= horizon]

    async def _check_safely(self, key: EnvKey, due: list[_Tracked]) -> None:
        started = self._clock.now()
        try:
            if len(due) > self._sweep_pages.get(key, 1 + len(due) // self._s.page_size):
                seen = await self._sweep(key)
            else:
                seen = await self._look_up(key, due)
        except OrchestratorError as exc:
            log.warning("sweep_failed", app_id=key[0], environment=key[1], error=str(exc))
            seen = set()
        self._metrics.tracker_sweep_duration.observe(self._clock.now() - started)
        self._replan(key, due, seen)

    async def _look_up(self, key: EnvKey, due: list[_Tracked]) -> set[str]:
        """One ListBackendJobs call with the JobId filter per job (pages followed only if the
        service did not apply the filter)."""
        seen: set[str] = set()
        for tracked in due:
            tracked.checks += 1
            with self._tracer.within(tracked.span):  # in the waiting request's trace
                seen |= await self._walk(key, {tracked.job_id}, job_id=tracked.job_id)
        return seen

    async def _sweep(self, key: EnvKey) -> set[str]:
        tracked = list(self._envs.get(key, {}).values())
        for job in tracked:
            job.checks += 1
        with self._tracer.sweep(*key, [job.span for job in tracked]):
            return await self._walk(key, {job.job_id for job in tracked})

    async def _walk(self, key: EnvKey, wanted: set[str], job_id: str | None = None) -> set[str]:
        """Walk pages until every job in ``wanted`` has been seen (or the pages end)."""
        remaining, seen = set(wanted), set()
        pages = 0
        pager = self._api.list_jobs(*key, page_size=self._s.page_size, job_id=job_id)
        async with contextlib.aclosing(pager):
            async for page in pager:
                pages += 1
                for job in page:
                    found = job.get("JobId")
                    if found in self._envs.get(key, {}):
                        seen.add(found)
                        remaining.discard(found)
                        self._observe(key, job)
                if not remaining:
                    break
        self._metrics.tracker_sweeps.inc()
        self._metrics.tracker_pages.observe(pages)
        if job_id is None:
            self._sweep_pages[key] = pages
        return seen

    def _replan(self, key: EnvKey, due: list[_Tracked], seen: set[str]) -> None:
        now = self._clock.now()
        for tracked in self._envs.get(key, {}).values():
            if tracked.result is not None or (tracked not in due and tracked.job_id not in seen):
                continue
            if tracked.job_id not in seen and now - tracked.registered_at > self._s.list_grace:
                error = f"job {tracked.job_id} was never listed by ListBackendJobs"
                self._settle(tracked, JobResult(tracked.job_id, "FAILED", error))
                continue
            age = now - tracked.registered_at
            tracked.due = now + self._durations.next_check(tracked.operation, age)

    def _observe(self, key: EnvKey, job: dict[str, Any]) -> None:
        tracked = self._envs.get(key, {}).get(job["JobId"])
        if tracked is None or tracked.result is not None:
            return
        status = str(job.get("Status", ""))
        if status != tracked.last_status:
            tracked.last_status = status
            tracked.span.add_event("job_status", {"status": status})
            with self._tracer.within(tracked.span):  # the line carries the request's trace id
                log.info(
                    "job_status", **{**tracked.context, "job_id": tracked.job_id}, status=status
                )
        if status in servicemodel.TERMINAL_JOB_STATUSES:
            result = JobResult(
                tracked.job_id, status, job.get("Error"), job.get("UpdateTime"), tracked.checks
            )
            self._learn(tracked, job)
            self._settle(tracked, result)

    def _learn(self, tracked: _Tracked, job: dict[str, Any]) -> None:
        """The job's duration, from its own timestamps when readable, else as seen from here."""
        created = parse_timestamp(job.get("CreateTime"))
        updated = parse_timestamp(job.get("UpdateTime"))
        if created is not None and updated is not None and updated >= created:
            self._durations.observe(tracked.operation, updated - created)
        else:
            self._durations.observe(tracked.operation, self._clock.now() - tracked.registered_at)

    def _settle(self, tracked: _Tracked, result: JobResult) -> None:
        tracked.result = result
        tracked.done.set()
        self._metrics.jobs_finished.labels(tracked.operation, result.status).inc()
        elapsed = self._clock.now() - tracked.registered_at
        self._metrics.job_duration.labels(tracked.operation, result.status).observe(elapsed)
        delay = detection_delay(result.update_time)
        if delay is not None:
            self._metrics.detection_delay.observe(delay)


def _job_result(span: Span, result: JobResult) -> None:
    span.set_attributes(
        {"orchestrator.job.status": result.status, "orchestrator.job.checks": result.checks}
    )
    if result.status != "COMPLETED":
        span.set_status(StatusCode.ERROR, f"job ended {result.status}")
