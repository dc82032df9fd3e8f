"""Runs a change request's steps: one AmplifyBackend call per step, then its job to the end.

* Mutations on one (AppId, BackendEnvironmentName) are serialised: the environment's lock is
  held from the call until the job is terminal, so this worker never has two jobs in flight on
  one environment; different environments run in parallel.
* A step starts only after the previous step's job COMPLETED; a FAILED or timed-out job, or a
  permanent API error, ends the request FAILED.
* Before a job-creating call, the environment's fence (:mod:`orchestrator.fence`) makes sure
  that no earlier step's job (of a worker that died or shut down) still runs there; CloneBackend
  holds its target environment too, the two in a fixed (sorted) order.
* A mutation that failed ambiguously (5xx, lost connection: it may have taken effect), or was
  interrupted, is reconciled (:mod:`orchestrator.mutation`, :mod:`orchestrator.reconcile`)
  before anything is sent again: the job it made is adopted; it is sent again only when the
  listing proves it made none; when neither can be established the step ends FAILED
  ``effect_unknown``. Every job id is claimed
  in the ledger by the step whose call made it, so a step's job id is always its own.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import anyio
import structlog

from orchestrator import defaults, logs
from orchestrator.amplify import AmplifyApi
from orchestrator.backoff import RetryPolicy
from orchestrator.clock import Clock, MonotonicClock, wall_time
from orchestrator.errors import (
    JobFailed,
    JobTimedOut,
    LedgerConflict,
    OrchestratorError,
    PermanentError,
)
from orchestrator.fence import EnvFence, step_owner
from orchestrator.keyed import KeyedTurns
from orchestrator.ledger import Ledger, LedgerRecord
from orchestrator.ledger.lease import Leases
from orchestrator.messages import ChangeRequest, EnvKey, Step
from orchestrator.metrics import Metrics
from orchestrator.mutation import MutationSender, is_tracked
from orchestrator.outcome import (
    DISPATCHED,
    DISPATCHING,
    DONE,
    Outcome,
    RequestOutcome,
    StepRecord,
    utc_now,
)
from orchestrator.propagation import current_trace_id
from orchestrator.reconcile import Reconciler, ReconcileSettings
from orchestrator.tracker import JobTracker

log = logs.get_logger("orchestrator.dispatcher")


@dataclass(frozen=True)
class DispatchSettings:
    job_timeout: float = defaults.JOB_TIMEOUT
    reconcile: ReconcileSettings = ReconcileSettings()


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
        metrics: Metrics | None = None,
    ) -> None:
        self._api = api
        self._tracker = tracker
        self._ledger = ledger
        self._leases = leases
        self._policy = policy
        self._s = settings or DispatchSettings()
        self._clock = clock or MonotonicClock()
        self._metrics = metrics or Metrics()
        self._reconciler = Reconciler(api, ledger, self._s.reconcile, self._clock)
        self._fence = EnvFence(
            ledger, self._reconciler, tracker, self._metrics, self._s.job_timeout
        )
        self._sender = MutationSender(
            api, leases, self._reconciler, policy, self._clock, self._metrics
        )
        #: In-process turns by lease name: the tasks of this process queue here, so only one
        #: of them at a time polls the ledger for the lease of the same name.
        self._turns: KeyedTurns[str] = KeyedTurns()

    async def execute(self, request: ChangeRequest, message_id: str | None) -> RequestOutcome:
        """Run (or resume) the request's steps and record its outcome in the ledger, exactly
        as it is to be sent (``message_id``: the delivery that ran it); a request already
        finished returns its stored outcome unchanged."""
        # Two deliveries of one request_id run one after the other, here and across replicas.
        # A conflict means another worker wrote the record since this one read it (a holder
        # whose lease expired under it): begin again from what it wrote (its outcome, if it
        # finished the request), never from this worker's stale copy.
        for attempt in self._policy.attempts():
            try:
                async with self._exclusive(_request_lease(request.request_id)):
                    return await self._execute(request, message_id)
            except LedgerConflict as exc:
                self._metrics.ledger_conflicts.inc()
                log.warning("ledger_conflict", attempt=attempt.number, error=str(exc))
                if attempt.last:
                    raise
                await attempt.backoff(self._clock)
        raise AssertionError("unreachable: attempts() never ends")

    async def _execute(self, request: ChangeRequest, message_id: str | None) -> RequestOutcome:
        operations = [step.operation for step in request.steps]
        record = await self._ledger.begin(request.request_id, operations)
        if record.outcome is not None:
            log.info("request_already_finished", deliveries=record.deliveries)
            return RequestOutcome.from_json(record.outcome)
        if [entry.operation for entry in record.steps] != operations:
            outcome = RequestOutcome(
                request.request_id,
                Outcome.FAILED,
                "request_id_reused",
                "request_id was already used for a different change request",
                message_id=message_id,
            )
            outcome.warnings = request.warnings()
            return outcome
        outcome = await self._run_steps(request, record)
        outcome.message_id, outcome.warnings = message_id, request.warnings()
        # Stored with the outcome: a duplicate delivery re-sends it, pointing at this run's trace.
        outcome.trace_id = current_trace_id()
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
                owner = step_owner(request.request_id, index)
                await self._run_step(request, step, entry, record, owner)
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
        self,
        request: ChangeRequest,
        step: Step,
        entry: StepRecord,
        record: LedgerRecord,
        owner: str,
    ) -> None:
        context = {"operation": step.operation, "app_id": step.app_id}
        if step.environment:
            context["environment"] = step.environment
        with structlog.contextvars.bound_contextvars(**context):
            async with self._holding(_environments(step)):
                entry.started_at = entry.started_at or utc_now()
                try:
                    for key in _environments(step) if is_tracked(step) else []:
                        await self._fence.clear(key, owner)
                    await self._ensure_dispatched(step, entry, record, request.secrets, owner)
                except BaseException:
                    await self._mark_let_go(entry, record)
                    raise
                await self._follow(step, entry)

    @contextlib.asynccontextmanager
    async def _holding(self, keys: list[EnvKey]) -> AsyncIterator[None]:
        """Every environment the step mutates, taken in sorted order (no deadlock)."""
        async with contextlib.AsyncExitStack() as stack:
            for key in keys:
                await stack.enter_async_context(self._exclusive(_env_lease(key)))
            yield

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
            except OrchestratorError as exc:  # the ledger is down: reconciled unbounded
                log.warning("dispatch_bound_not_saved", error=str(exc))

    async def _ensure_dispatched(
        self,
        step: Step,
        entry: StepRecord,
        record: LedgerRecord,
        secrets: frozenset[str],
        owner: str,
    ) -> None:
        """Call the API for this step unless the ledger shows it was already called."""
        if entry.phase == DISPATCHED:
            log.info("step_resumed", job_id=entry.job_id)
            return
        response = None
        if entry.phase == DISPATCHING and entry.dispatch_began is not None:
            attempt = self._sender.attempt(step, owner, entry.dispatch_began, entry.dispatch_until)
            response = await self._sender.reconcile(attempt, step)
        if response is None:
            for key in _environments(step) if is_tracked(step) else []:
                await self._fence.enter(key, owner)
            entry.phase, entry.dispatch_began = DISPATCHING, wall_time()
            entry.dispatch_until, entry.environment = None, step.environment or None
            await self._ledger.save(record)
            leases = [_request_lease(record.request_id), *map(_env_lease, _environments(step))]
            response = await self._sender.send(step, secrets, entry, owner, leases)
        entry.job_id = response.get("JobId")
        entry.environment = response.get("BackendEnvironmentName") or step.environment
        entry.phase = DISPATCHED
        if entry.job_id:
            await self._ledger.put_tag(f"job:{entry.job_id}", owner, only_new=True)
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
                (step.app_id, entry.environment),
                entry.job_id,
                step.operation,
                limit,
                age=wall_time() - began,
            )
        entry.status, entry.error = result.status, result.error
        entry.phase, entry.finished_at = DONE, utc_now()
        if result.status != "COMPLETED":
            raise JobFailed(
                f"job {entry.job_id} ended {result.status}: {result.error or 'no error'}"
            )

    @contextlib.asynccontextmanager
    async def _exclusive(self, lease: str) -> AsyncIterator[None]:
        """In this process a turn, across processes the lease of the same name."""
        async with self._turns.turn(lease), self._leases.hold(lease):
            yield


def _failed_status(record: StepRecord, exc: PermanentError) -> str:
    if record.phase == DONE:
        return record.status
    return "TIMED_OUT" if isinstance(exc, JobTimedOut) else "FAILED"


def _environments(step: Step) -> list[EnvKey]:
    """The environments a step mutates, sorted: its own, and CloneBackend's target."""
    keys = {step.env_key}
    target = step.params.get("TargetEnvironmentName")
    if step.operation == "CloneBackend" and target:
        keys.add((step.app_id, str(target)))
    return sorted(keys)


def _env_lease(key: EnvKey) -> str:
    return f"env:{key[0]}/{key[1]}"


def _request_lease(request_id: str) -> str:
    return f"request:{request_id}"
