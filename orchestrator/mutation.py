"""Sending one step's mutation at most once per proof that the last send made nothing.

A mutation that failed ambiguously (5xx, lost connection: it may have taken effect) is
reconciled (:mod:`orchestrator.reconcile`) before it is sent again: the job it made is adopted;
it is sent again only when the listing proves it made none, within the step's budget of sends
(counted in the ledger across deliveries); when neither can be established the step ends
FAILED ``effect_unknown``. Each send goes out just after the leases it is sent under are
renewed.
"""

from __future__ import annotations

from typing import Any

from orchestrator import logs, servicemodel
from orchestrator.amplify import AmplifyApi
from orchestrator.backoff import RetryPolicy
from orchestrator.clock import Clock, wall_time
from orchestrator.errors import EffectUnknown, RetriesExhausted, TransientError
from orchestrator.ledger.lease import Leases
from orchestrator.messages import Step
from orchestrator.metrics import Metrics
from orchestrator.outcome import StepRecord
from orchestrator.reconcile import Attempt, Finding, Reconciler, Verdict

log = logs.get_logger("orchestrator.dispatcher")


def is_tracked(step: Step) -> bool:
    """Whether the step's call makes a job on an environment (tracked, fenced, reconciled)."""
    return servicemodel.creates_job(step.operation) and bool(step.environment)


class MutationSender:
    def __init__(
        self,
        api: AmplifyApi,
        leases: Leases,
        reconciler: Reconciler,
        policy: RetryPolicy,
        clock: Clock,
        metrics: Metrics,
    ) -> None:
        self._api = api
        self._leases = leases
        self._reconciler = reconciler
        self._policy = policy
        self._clock = clock
        self._metrics = metrics

    async def send(
        self,
        step: Step,
        secrets: frozenset[str],
        entry: StepRecord,
        owner: str,
        leases: list[str],
    ) -> dict[str, Any]:
        """Send the mutation (again only after the listing proved the last send made no job),
        each time just after renewing the leases it is sent under."""
        tracked = is_tracked(step)
        # The budget counts every send of this step, over all its deliveries (in the ledger).
        for attempt in self._policy.attempts(first=entry.attempts + 1):
            await self._leases.confirm(leases)
            entry.attempts = attempt.number
            began = wall_time()
            try:
                return await self._api.call(
                    step.operation, step.params, retry_ambiguous=not tracked, secrets=secrets
                )
            except TransientError as exc:
                log.warning("ambiguous_failure", error=servicemodel.scrub(str(exc), secrets))
                adopted = await self.reconcile(self.attempt(step, owner, began, wall_time()), step)
                if adopted is not None:
                    return adopted
                if attempt.last:
                    raise RetriesExhausted(f"{step.operation}: {exc}") from exc
                await attempt.backoff(self._clock)
        raise AssertionError("unreachable: attempts() never ends")

    def attempt(self, step: Step, owner: str, began: float, until: float | None) -> Attempt:
        return Attempt(step.app_id, step.environment, step.operation, owner, began, until)

    async def reconcile(self, attempt: Attempt, step: Step) -> dict[str, Any] | None:
        """The job the call made (adopted), None when it provably made none, or EffectUnknown."""
        if not is_tracked(step):
            return None
        finding = await self._reconciler.find(attempt)
        self._metrics.reconciliations.labels(str(finding.verdict)).inc()
        if finding.verdict is Verdict.FOUND and finding.job is not None:
            log.info("reconciled", job_id=finding.job.get("JobId"))
            return {**finding.job, "BackendEnvironmentName": step.environment}
        if finding.verdict is Verdict.UNKNOWN:
            raise self._effect_unknown(step, finding)
        log.info("reconciled_absent")
        return None

    def _effect_unknown(self, step: Step, finding: Finding) -> EffectUnknown:
        self._metrics.effect_unknown.labels(step.operation).inc()
        candidates = ", ".join(finding.candidates) or "none listed"
        log.error("effect_unknown", why=finding.why, candidates=list(finding.candidates))
        return EffectUnknown(
            f"{step.operation}: the answer was lost and whether it took effect cannot be"
            f" established ({finding.why}); not sent again. Candidate jobs: {candidates}",
            finding.candidates,
        )
