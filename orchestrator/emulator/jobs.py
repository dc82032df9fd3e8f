"""Backend jobs: a schedule evaluated lazily from the monotonic clock, never by timers.

A job is created ``REQUESTED`` with a duration drawn by the caller; it turns ``IN_PROGRESS``
after a quarter of that duration and ``COMPLETED`` (or ``FAILED``, decided at creation) at the
end. Both transitions go on one heap of due times; :meth:`JobBoard.advance` pops what is due
before every request is served, so state is always as if each transition had happened at its
exact time, with no task per job. A transition's UpdateTime is its due time, not the time it
was noticed. On COMPLETED the board calls ``on_complete`` (the mutation's effect on state).

``UpdateBackendJob`` with a different status takes the job off the schedule (e.g. CANCELLED):
it never advances or takes effect afterwards. A job is *active* (counts for the conflict rule)
while it is scheduled and not terminal. Jobs are listed newest first per (app, environment);
``NextToken`` is an opaque cursor (the sequence number to continue below), so pages stay
stable while new jobs arrive.

Time: every deadline is a ``time.monotonic()`` value, so wall-clock steps cannot reorder
anything; CreateTime/UpdateTime are ISO 8601 UTC with microseconds, computed by
:class:`Timebase` as the wall time at start plus the monotonic time elapsed since, so a job's
terminal UpdateTime is exactly its CreateTime plus its duration.
"""

from __future__ import annotations

import base64
import binascii
import heapq
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from orchestrator import servicemodel
from orchestrator.emulator.errors import bad_request, not_found


class Timebase:
    """Monotonic instants for scheduling, shown as wall-clock ISO 8601 timestamps."""

    def __init__(self) -> None:
        self._mono0 = time.monotonic()
        self._wall0 = time.time()

    @staticmethod
    def now() -> float:
        return time.monotonic()

    def wall(self, mono: float) -> float:
        """Epoch seconds of a monotonic instant."""
        return self._wall0 + (mono - self._mono0)

    def iso(self, mono: float) -> str:
        """ISO 8601 UTC (``2025-01-31T12:00:00.123456Z``) of a monotonic instant."""
        stamp = datetime.fromtimestamp(self.wall(mono), tz=UTC)
        return stamp.isoformat(timespec="microseconds").replace("+00:00", "Z")


REQUESTED, IN_PROGRESS, COMPLETED, FAILED = "REQUESTED", "IN_PROGRESS", "COMPLETED", "FAILED"
EnvKey = tuple[str, str]


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
    create_time: str
    update_time: str
    status: str = REQUESTED
    error: str | None = None
    failure: str | None = None  # the Error a FAILED outcome will carry (decided at creation)
    scheduled: bool = True

    def api_view(self) -> dict[str, Any]:
        """The job as the model's job shapes name it (GetBackendJob, ListBackendJobs)."""
        return {
            "AppId": self.app_id,
            "BackendEnvironmentName": self.env,
            "JobId": self.job_id,
            "Operation": self.operation,
            "Status": self.status,
            "CreateTime": self.create_time,
            "UpdateTime": self.update_time,
            "Error": self.error,
        }

    def admin_view(self, now: float) -> dict[str, Any]:
        """The job as ``GET /_emulator/jobs`` shows it (parameters redacted)."""
        return {
            "jobId": self.job_id,
            "operation": self.operation,
            "appId": self.app_id,
            "backendEnvironmentName": self.env,
            "status": self.status,
            "createTime": self.create_time,
            "updateTime": self.update_time,
            "error": self.error,
            "resourceName": self.params.get("ResourceName"),
            "visible": self.visible_at <= now,
            "params": servicemodel.redact_params(self.origin, self.params),
        }


class JobBoard:
    def __init__(self, timebase: Timebase, on_complete: Callable[[Job], None]) -> None:
        self._time = timebase
        self._on_complete = on_complete
        self._by_id: dict[str, Job] = {}
        self._by_env: dict[EnvKey, list[Job]] = {}
        self._active: Counter[EnvKey] = Counter()
        self._apps: set[str] = set()
        self._heap: list[tuple[float, int, Job, str]] = []
        self._seq = 0

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
        self._seq += 1
        stamp = self._time.iso(now)
        job = Job(
            self._seq,
            job_id,
            operation,
            operation,
            key[0],
            key[1],
            params,
            now + visibility,
            stamp,
            stamp,
        )
        job.failure = failure
        self._by_id[job_id] = job
        self._apps.add(key[0])
        self._by_env.setdefault(key, []).append(job)
        self._active[key] += 1
        terminal = FAILED if failure is not None else COMPLETED
        heapq.heappush(self._heap, (now + duration / 4, 2 * job.seq, job, IN_PROGRESS))
        heapq.heappush(self._heap, (now + duration, 2 * job.seq + 1, job, terminal))
        return job

    def advance(self, now: float) -> None:
        """Apply every transition due by ``now``, in due order."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            due, _, job, status = heapq.heappop(heap)
            if job.scheduled:
                self._transition(job, status, due)

    def _transition(self, job: Job, status: str, due: float) -> None:
        job.status = status
        job.update_time = self._time.iso(due)
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
        job.update_time = self._time.iso(now)

    def page(
        self, key: EnvKey, now: float, filters: dict[str, str], limit: int, token: str | None
    ) -> tuple[list[Job], str | None]:
        """One ListBackendJobs page (newest first) and the token of the next one."""
        before = _decode(token) if token else None
        found: list[Job] = []
        for job in reversed(self._by_env.get(key, ())):
            if (before is not None and job.seq >= before) or job.visible_at > now:
                continue
            if all(getattr(job, _FILTERS[name]) == value for name, value in filters.items()):
                found.append(job)
                if len(found) > limit:
                    return found[:limit], _encode(found[limit - 1].seq)
        return found, None

    def __iter__(self) -> Iterator[Job]:
        return iter(self._by_id.values())

    def counts(self) -> dict[str, int]:
        counts = Counter(job.status for job in self._by_id.values())
        return {"created": len(self._by_id), "active": sum(self._active.values()), **counts}


_FILTERS = {"JobId": "job_id", "Operation": "operation", "Status": "status"}
_TOKEN_PREFIX = "jobs-v1:"


def _encode(seq: int) -> str:
    return base64.urlsafe_b64encode(f"{_TOKEN_PREFIX}{seq}".encode()).decode()


def _decode(token: str) -> int:
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
        if text.startswith(_TOKEN_PREFIX):
            return int(text[len(_TOKEN_PREFIX) :])
    except (ValueError, binascii.Error, UnicodeDecodeError):
        pass
    raise bad_request(f"invalid NextToken {token!r}")
