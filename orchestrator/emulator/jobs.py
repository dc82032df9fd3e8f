"""Backend jobs: a schedule evaluated lazily from the monotonic clock, never by timers.

A job is created ``REQUESTED`` with a duration drawn by the caller; it turns ``IN_PROGRESS``
after a quarter of that duration and ``COMPLETED`` (or ``FAILED``, decided at creation) at the
end. Both transitions go on one heap of due times; :meth:`JobBoard.advance` pops what is due
before every request is served, so state is always as if each transition had happened at its
exact time, with no task per job. A transition's UpdateTime is its due time, not the time it
was noticed. On COMPLETED the board calls ``on_complete`` (the mutation's effect on state).

``UpdateBackendJob`` with a different status takes the job off the schedule (e.g. CANCELLED):
it never advances or takes effect afterwards. A job is *active* (counts for the conflict rule)
while it is scheduled and not terminal. *History* jobs (:mod:`.history`) are filed already
terminal, in the past: never scheduled, never active, no effect, not counted as created.
Listing (orders, NextToken) is :mod:`.listing`.

Time: CreateTime/UpdateTime are kept as monotonic instants (:mod:`.timestamps`) and written
in the configured format only when an answer is built, so a format change applies to every
job, and a job's terminal UpdateTime is exactly its CreateTime plus its duration.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

from orchestrator import servicemodel
from orchestrator.emulator.errors import not_found
from orchestrator.emulator.listing import EnvJobs, page, shuffle_key
from orchestrator.emulator.timestamps import Timebase

REQUESTED, IN_PROGRESS, COMPLETED, FAILED = "REQUESTED", "IN_PROGRESS", "COMPLETED", "FAILED"
EnvKey = tuple[str, str]
Show = Callable[[float], str]


@dataclass(slots=True, eq=False)
class Job:
    seq: int
    job_id: str
    origin: str  # the operation that created the job (its effect), whatever UpdateBackendJob says
    operation: str
    app_id: str
    env: str
    params: dict[str, Any]
    visible_at: float
    created: float  # monotonic instants
    updated: float
    shuffle: int  # rank in the "unordered" listing order
    status: str = REQUESTED
    error: str | None = None
    failure: str | None = None  # the Error a FAILED outcome will carry (decided at creation)
    scheduled: bool = True
    history: bool = False

    def api_view(self, show: Show) -> dict[str, Any]:
        """The job as the model's job shapes name it, timestamps written by ``show``."""
        return {
            "AppId": self.app_id,
            "BackendEnvironmentName": self.env,
            "JobId": self.job_id,
            "Operation": self.operation,
            "Status": self.status,
            "CreateTime": show(self.created),
            "UpdateTime": show(self.updated),
            "Error": self.error,
        }

    def admin_view(self, now: float, timebase: Timebase) -> dict[str, Any]:
        """The job as ``GET /_emulator/jobs`` shows it (ISO times, epochs, params redacted)."""
        return {
            "jobId": self.job_id,
            "operation": self.operation,
            "appId": self.app_id,
            "backendEnvironmentName": self.env,
            "status": self.status,
            "createTime": timebase.iso(self.created),
            "updateTime": timebase.iso(self.updated),
            "createEpoch": timebase.wall(self.created),
            "updateEpoch": timebase.wall(self.updated),
            "error": self.error,
            "resourceName": self.params.get("ResourceName"),
            "visible": self.visible_at <= now,
            "history": self.history,
            "params": servicemodel.redact_params(self.origin, self.params),
        }


class Finished(NamedTuple):
    """A terminal job to file as history."""

    job_id: str
    operation: str
    params: dict[str, Any]
    created: float
    updated: float
    status: str
    error: str | None


class JobBoard:
    def __init__(self, on_complete: Callable[[Job], None], salt: str = "") -> None:
        self._on_complete = on_complete
        self.salt = salt  # of the "unordered" rank of jobs created from now on
        self._by_id: dict[str, Job] = {}
        self._by_env: dict[EnvKey, EnvJobs[Job]] = {}
        self._active: Counter[EnvKey] = Counter()
        self._apps: set[str] = set()
        self._heap: list[tuple[float, int, Job, str]] = []
        self._seq = 0
        self._history = 0

    def _new(self, job_id: str, operation: str, key: EnvKey, params: dict[str, Any]) -> Job:
        self._seq += 1
        rank = shuffle_key(self.salt, job_id)
        job = Job(self._seq, job_id, operation, operation, *key, params, 0.0, 0.0, 0.0, rank)
        self._by_id[job_id] = job
        self._apps.add(key[0])
        return job

    def _env_jobs(self, key: EnvKey) -> EnvJobs[Job]:
        found = self._by_env.get(key)
        if found is None:
            found = self._by_env[key] = EnvJobs[Job]()
        return found

    def create(
        self,
        job_id: str,
        operation: str,
        key: EnvKey,
        params: dict[str, Any],
        now: float,
        duration: float,
        visibility: float,
        failure: str | None,
    ) -> Job:
        job = self._new(job_id, operation, key, params)
        job.created = job.updated = now
        job.visible_at = now + visibility
        job.failure = failure
        self._env_jobs(key).add(job)
        self._active[key] += 1
        terminal = FAILED if failure is not None else COMPLETED
        heapq.heappush(self._heap, (now + duration / 4, 2 * job.seq, job, IN_PROGRESS))
        heapq.heappush(self._heap, (now + duration, 2 * job.seq + 1, job, terminal))
        return job

    def add_history(self, key: EnvKey, finished: Iterable[Finished]) -> None:
        """File terminal jobs of the past: listable, never scheduled, no effect."""
        jobs = []
        for item in finished:
            job = self._new(item.job_id, item.operation, key, item.params)
            job.created, job.updated, job.visible_at = item.created, item.updated, item.created
            job.status, job.error = item.status, item.error
            job.scheduled, job.history = False, True
            jobs.append(job)
        self._env_jobs(key).add_many(jobs)
        self._history += len(jobs)

    def advance(self, now: float) -> None:
        """Apply every transition due by ``now``, in due order."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            due, _, job, status = heapq.heappop(heap)
            if job.scheduled:
                self._transition(job, status, due)

    def _transition(self, job: Job, status: str, due: float) -> None:
        job.status = status
        job.updated = due
        if status == FAILED:
            job.error = job.failure
        if status in servicemodel.TERMINAL_JOB_STATUSES:
            self._unschedule(job)
            if status == COMPLETED:
                self._on_complete(job)

    def _unschedule(self, job: Job) -> None:
        job.scheduled = False
        self._active[(job.app_id, job.env)] -= 1

    def active(self, key: EnvKey) -> int:
        return self._active[key]

    def knows_app(self, app_id: str) -> bool:
        return app_id in self._apps

    def knows_env(self, key: EnvKey) -> bool:
        return key in self._by_env

    def find(self, key: EnvKey, job_id: str, now: float) -> Job:
        job = self._by_id.get(job_id)
        if job is None or (job.app_id, job.env) != key or job.visible_at > now:
            raise not_found("job", f"job {job_id!r} not found in {key[0]}/{key[1]}")
        return job

    def update(self, job: Job, status: str | None, operation: str | None, now: float) -> None:
        """UpdateBackendJob: a new status takes the job off the schedule."""
        if operation:
            job.operation = operation
        if status and status != job.status:
            if job.scheduled:
                self._unschedule(job)
            job.status = status
        job.updated = now

    def page(
        self,
        key: EnvKey,
        order: str,
        now: float,
        filters: dict[str, str],
        limit: int,
        token: str | None,
    ) -> tuple[list[Job], str | None]:
        """One ListBackendJobs page in ``order`` and the token of the next one."""
        return page(self._by_env.get(key) or EnvJobs[Job](), order, now, filters, limit, token)

    def __iter__(self) -> Iterator[Job]:
        return iter(self._by_id.values())

    def counts(self) -> dict[str, int]:
        """Jobs created through the API (by status, active) and history jobs."""
        counts = Counter(job.status for job in self._by_id.values() if not job.history)
        return {
            "created": len(self._by_id) - self._history,
            "active": sum(self._active.values()),
            "history": self._history,
            **counts,
        }
