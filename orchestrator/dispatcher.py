"""Runs a change request's steps: one AmplifyBackend call per step, then its job to the end.

* Mutations on one (AppId, BackendEnvironmentName) are serialised: the environment's lock is
  held from the call until the job is terminal, so this worker never has two jobs in flight on
  one environment; different environments run in parallel.
* A step starts only after the previous step's job COMPLETED; a FAILED or timed-out job, or a
  permanent API error, ends the request FAILED.
* A mutation that failed ambiguously (5xx, lost connection: it may have taken effect) is
  reconciled before it is sent again: ListBackendJobs is searched for a job of the same
  operation on the environment created since the call began; if there is one it is adopted.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import anyio
import structlog

from orchestrator import servicemodel
from orchestrator.amplify import AmplifyApi
from orchestrator.backoff import RetryPolicy
from orchestrator.clock import Clock, MonotonicClock, wall_time
from orchestrator.errors import (
    JobFailed,
    JobTimedOut,
    PermanentError,
    RetriesExhausted,
    TransientError,
)
from orchestrator.messages import ChangeRequest, Step
from orchestrator.outcome import Outcome, RequestOutcome, StepRecord, utc_now
from orchestrator.tracker import EnvKey, JobTracker

log = structlog.get_logger().bind(logger="orchestrator.dispatcher")


@dataclass(frozen=True)
class DispatchSettings:
    job_timeout: float = 3600.0
    reconcile_delay: float = 1.0
    clock_skew: float = 2.0


class _EnvLock:
    def __init__(self) -> None:
        self.lock = anyio.Lock()
        self.users = 0


class Dispatcher:
    def __init__(
        self,
        api: AmplifyApi,
        tracker: JobTracker,
        policy: RetryPolicy,
        settings: DispatchSettings | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._api = api
        self._tracker = tracker
        self._policy = policy
        self._s = settings or DispatchSettings()
        self._clock = clock or MonotonicClock()
        self._locks: dict[EnvKey, _EnvLock] = {}

    async def execute(self, request: ChangeRequest) -> RequestOutcome:
        records = [StepRecord(step.operation) for step in request.steps]
        for step, record in zip(request.steps, records, strict=True):
            try:
                await self._run_step(request, step, record)
            except PermanentError as exc:
                error = request.scrub(str(exc))
                record.error = record.error or error
                record.status = _failed_status(record, exc)
                record.finished_at = utc_now()
                return RequestOutcome(
                    request.request_id, Outcome.FAILED, exc.reason, error, records
                )
        return RequestOutcome(request.request_id, Outcome.SUCCEEDED, steps=records)

    async def _run_step(self, request: ChangeRequest, step: Step, record: StepRecord) -> None:
        context = {"operation": step.operation, "app_id": step.app_id}
        if step.environment:
            context["environment"] = step.environment
        with structlog.contextvars.bound_contextvars(**context):
            async with self._serialised(step.env_key):
                record.started_at = utc_now()
                response = await self._dispatch(step, request.secrets, record)
                await self._follow(step, response, record)

    async def _follow(self, step: Step, response: dict[str, Any], record: StepRecord) -> None:
        job_id = response.get("JobId")
        environment = response.get("BackendEnvironmentName") or step.environment
        record.job_id = job_id
        if not job_id or not environment:
            record.status = "COMPLETED" if not job_id else str(response.get("Status", "COMPLETED"))
            record.finished_at = utc_now()
            return
        with structlog.contextvars.bound_contextvars(job_id=job_id):
            log.info("job_started", status=response.get("Status"))
            result = await self._tracker.wait(
                (step.app_id, environment), job_id, step.operation, self._s.job_timeout
            )
        record.status = result.status
        record.error = result.error
        record.finished_at = utc_now()
        if result.status != "COMPLETED":
            raise JobFailed(f"job {job_id} ended {result.status}: {result.error or 'no error'}")

    async def _dispatch(
        self, step: Step, secrets: frozenset[str], record: StepRecord
    ) -> dict[str, Any]:
        tracked = servicemodel.creates_job(step.operation) and bool(step.environment)
        while True:
            record.attempts += 1
            began = wall_time()
            try:
                return await self._api.call(
                    step.operation, step.params, retry_ambiguous=not tracked, secrets=secrets
                )
            except TransientError as exc:
                log.warning("ambiguous_failure", error=servicemodel.scrub(str(exc), secrets))
                adopted = await self._reconcile(step, began)
                if adopted is not None:
                    log.info("reconciled", job_id=adopted.get("JobId"))
                    return adopted
                if not self._policy.should_retry(record.attempts):
                    raise RetriesExhausted(f"{step.operation}: {exc}") from exc
                await self._clock.sleep(self._policy.delay(record.attempts))

    async def _reconcile(self, step: Step, began: float) -> dict[str, Any] | None:
        """Find the job an ambiguous call created, if it created one."""
        await self._clock.sleep(self._s.reconcile_delay)
        pager = self._api.list_jobs(step.app_id, step.environment)
        async with contextlib.aclosing(pager):
            async for page in pager:
                for job in page:
                    if _same_operation(job, step.operation) and _created_since(
                        job, began - self._s.clock_skew
                    ):
                        return {**job, "BackendEnvironmentName": step.environment}
                break
        return None

    @contextlib.asynccontextmanager
    async def _serialised(self, key: EnvKey) -> AsyncIterator[None]:
        entry = self._locks.setdefault(key, _EnvLock())
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if entry.users == 0:
                del self._locks[key]


def _failed_status(record: StepRecord, exc: PermanentError) -> str:
    if isinstance(exc, JobTimedOut):
        return "TIMED_OUT"
    if record.status in servicemodel.TERMINAL_JOB_STATUSES:
        return record.status
    return "FAILED"


def _normalise(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def _same_operation(job: dict[str, Any], operation: str) -> bool:
    listed = str(job.get("Operation", ""))
    return _normalise(listed) in {
        _normalise(operation),
        _normalise(servicemodel.method_name(operation)),
    }


def _created_since(job: dict[str, Any], since: float) -> bool:
    created = str(job.get("CreateTime", ""))
    try:
        stamp = datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return False
    return stamp >= since
