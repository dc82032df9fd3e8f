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

from orchestrator import logs, servicemodel
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
from orchestrator.lease import Leases
from orchestrator.ledger import Ledger, LedgerRecord
from orchestrator.messages import ChangeRequest, Step
from orchestrator.outcome import (
    DISPATCHED,
    DISPATCHING,
    DONE,
    Outcome,
    RequestOutcome,
    StepRecord,
    utc_now,
)
from orchestrator.tracker import EnvKey, JobTracker

log = logs.get_logger("orchestrator.dispatcher")


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
        ledger: Ledger,
        leases: Leases,
        policy: RetryPolicy,
        settings: DispatchSettings | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._api = api
        self._tracker = tracker
        self._ledger = ledger
        self._leases = leases
        self._policy = policy
        self._s = settings or DispatchSettings()
        self._clock = clock or MonotonicClock()
        self._locks: dict[EnvKey, _EnvLock] = {}

    async def execute(self, request: ChangeRequest) -> RequestOutcome:
        """Run (or resume) the request's steps and record its outcome in the ledger."""
        # Two deliveries of one request_id run one after the other, here and across replicas.
        async with self._exclusive(
            ("#request", request.request_id), f"request:{request.request_id}"
        ):
            return await self._execute(request)

    async def _execute(self, request: ChangeRequest) -> RequestOutcome:
        operations = [step.operation for step in request.steps]
        record = await self._ledger.begin(request.request_id, operations)
        if record.outcome is not None:
            log.info("request_already_finished", deliveries=record.deliveries)
            return RequestOutcome.from_json(record.outcome)
        if [entry.operation for entry in record.steps] != operations:
            return RequestOutcome(
                request.request_id,
                Outcome.FAILED,
                "request_id_reused",
                "request_id was already used for a different change request",
            )
        outcome = await self._run_steps(request, record)
        record.status = str(outcome.outcome)
        record.outcome = outcome.to_json()
        await self._ledger.save(record)
        return outcome

    async def _run_steps(self, request: ChangeRequest, record: LedgerRecord) -> RequestOutcome:
        """Each step to DONE. A finished step is saved unless it is the last: the caller saves
        the last one together with the request's outcome (one write, not two)."""
        last = len(request.steps) - 1
        for index, (step, entry) in enumerate(zip(request.steps, record.steps, strict=True)):
            if entry.phase == DONE:
                continue
            try:
                await self._run_step(request, step, entry, record)
            except PermanentError as exc:
                error = request.scrub(str(exc))
                entry.error = entry.error or error
                entry.status = _failed_status(entry, exc)
                entry.phase = DONE
                entry.finished_at = utc_now()
                return RequestOutcome(
                    request.request_id, Outcome.FAILED, exc.reason, error, record.steps
                )
            if index < last:
                await self._ledger.save(record)
        return RequestOutcome(request.request_id, Outcome.SUCCEEDED, steps=record.steps)

    async def _run_step(
        self, request: ChangeRequest, step: Step, entry: StepRecord, record: LedgerRecord
    ) -> None:
        context = {"operation": step.operation, "app_id": step.app_id}
        if step.environment:
            context["environment"] = step.environment
        with structlog.contextvars.bound_contextvars(**context):
            async with self._exclusive(step.env_key, f"env:{step.app_id}/{step.environment}"):
                entry.started_at = entry.started_at or utc_now()
                try:
                    await self._ensure_dispatched(step, entry, record, request.secrets)
                except BaseException:
                    await self._mark_let_go(entry, record)
                    raise
                await self._follow(step, entry)

    async def _mark_let_go(self, entry: StepRecord, record: LedgerRecord) -> None:
        """A step left DISPATCHING (its call may or may not have reached the service) is about
        to lose the environment's lease: whatever job its call made exists by now. Recorded so
        that the reconciliation on its next delivery does not adopt a job another request
        makes on the environment later."""
        if entry.phase != DISPATCHING:
            return
        entry.dispatch_until = wall_time()
        with anyio.CancelScope(shield=True):
            try:
                await self._ledger.save(record)
            except Exception as exc:  # the ledger is down: the next delivery reconciles unbounded
                log.warning("dispatch_bound_not_saved", error=str(exc))

    async def _ensure_dispatched(
        self, step: Step, entry: StepRecord, record: LedgerRecord, secrets: frozenset[str]
    ) -> None:
        """Call the API for this step unless the ledger shows it was already called."""
        if entry.phase == DISPATCHED:
            log.info("step_resumed", job_id=entry.job_id)
            return
        response = None
        if entry.phase == DISPATCHING and entry.dispatch_began is not None:
            response = await self._reconcile(step, entry.dispatch_began, entry.dispatch_until)
        if response is None:
            entry.phase, entry.dispatch_began = DISPATCHING, wall_time()
            entry.dispatch_until = None
            await self._ledger.save(record)
            response = await self._dispatch(step, secrets, entry)
        entry.job_id = response.get("JobId")
        entry.environment = response.get("BackendEnvironmentName") or step.environment
        entry.phase = DISPATCHED
        await self._ledger.save(record)

    async def _follow(self, step: Step, entry: StepRecord) -> None:
        if not entry.job_id or not entry.environment:
            entry.status, entry.phase, entry.finished_at = "COMPLETED", DONE, utc_now()
            return
        began = entry.dispatch_began or wall_time()
        limit = max(0.0, self._s.job_timeout - (wall_time() - began))
        with structlog.contextvars.bound_contextvars(job_id=entry.job_id):
            log.info("job_started")
            result = await self._tracker.wait(
                (step.app_id, entry.environment), entry.job_id, step.operation, limit
            )
        entry.status, entry.error = result.status, result.error
        entry.phase, entry.finished_at = DONE, utc_now()
        if result.status != "COMPLETED":
            raise JobFailed(
                f"job {entry.job_id} ended {result.status}: {result.error or 'no error'}"
            )

    async def _dispatch(
        self, step: Step, secrets: frozenset[str], entry: StepRecord
    ) -> dict[str, Any]:
        tracked = servicemodel.creates_job(step.operation) and bool(step.environment)
        while True:
            entry.attempts += 1
            began = wall_time()
            try:
                return await self._api.call(
                    step.operation, step.params, retry_ambiguous=not tracked, secrets=secrets
                )
            except TransientError as exc:
                log.warning("ambiguous_failure", error=servicemodel.scrub(str(exc), secrets))
                adopted = await self._reconcile(step, began)
                if adopted is not None:
                    return adopted
                if not self._policy.should_retry(entry.attempts):
                    raise RetriesExhausted(f"{step.operation}: {exc}") from exc
                await self._clock.sleep(self._policy.delay(entry.attempts))

    async def _reconcile(
        self, step: Step, began: float, until: float | None = None
    ) -> dict[str, Any] | None:
        """Find the job an ambiguous (or interrupted) call created, if it created one: a job of
        the same operation on the environment created from ``began`` (to ``until``, when the
        worker that made the call recorded when it let go of the environment)."""
        if not (servicemodel.creates_job(step.operation) and step.environment):
            return None
        await self._clock.sleep(self._s.reconcile_delay)
        skew = self._s.clock_skew
        latest = None if until is None else until + skew
        pager = self._api.list_jobs(step.app_id, step.environment)
        async with contextlib.aclosing(pager):
            async for page in pager:
                for job in page:
                    if _same_operation(job, step.operation) and _created_between(
                        job, began - skew, latest
                    ):
                        log.info("reconciled", job_id=job.get("JobId"))
                        return {**job, "BackendEnvironmentName": step.environment}
                break
        return None

    @contextlib.asynccontextmanager
    async def _exclusive(self, local: EnvKey, lease: str) -> AsyncIterator[None]:
        """In this process a lock; across processes a lease in the ledger."""
        async with self._serialised(local):
            async with self._leases.hold(lease):
                yield

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
    if record.phase == DONE:
        return record.status
    return "TIMED_OUT" if isinstance(exc, JobTimedOut) else "FAILED"


def _normalise(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def _same_operation(job: dict[str, Any], operation: str) -> bool:
    listed = str(job.get("Operation", ""))
    return _normalise(listed) in {
        _normalise(operation),
        _normalise(servicemodel.method_name(operation)),
    }


def _created_between(job: dict[str, Any], since: float, until: float | None) -> bool:
    created = str(job.get("CreateTime", ""))
    try:
        stamp = datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return False
    return stamp >= since and (until is None or stamp <= until)
