"""The environment fence: a mutation starts only once the previous one's job there is over.

Within a worker the environment's lease is held from the call until its job is terminal. But a
worker can let go while its job still runs (SIGTERM, a crash that lets the lease expire), and
the next request on that environment must not overlap that job. So every mutation first
leaves its mark in the ledger, tag ``env:<AppId>/<env>`` = ``<request_id>#<step index>``, and
every mutation, once it holds the environment, reads the mark and settles what it names:

* the same step (its own redelivery): nothing to do here, the step resumes or reconciles;
* a step that is DONE or never called (PENDING), or a record that is gone: the way is clear;
* DISPATCHED: wait for its job (the tracker) to be terminal;
* DISPATCHING (its answer never recorded): find its job (:mod:`orchestrator.reconcile`, claimed
  for that step so its own redelivery adopts it) and wait for it; none → the way is clear;
* anything that cannot be established → :class:`EnvironmentBusy`: this request is retried later
  rather than risk two jobs at once.
"""

from __future__ import annotations

import structlog

from orchestrator import logs, servicemodel
from orchestrator.clock import wall_time
from orchestrator.errors import EnvironmentBusy, JobTimedOut
from orchestrator.ledger import Ledger
from orchestrator.messages import EnvKey
from orchestrator.metrics import Metrics
from orchestrator.outcome import DISPATCHED, DISPATCHING, StepRecord
from orchestrator.reconcile import Attempt, Reconciler, Verdict
from orchestrator.tracker import JobTracker

log = logs.get_logger("orchestrator.fence")


def env_tag(key: EnvKey) -> str:
    return f"env:{key[0]}/{key[1]}"


def step_owner(request_id: str, index: int) -> str:
    return f"{request_id}#{index}"


class EnvFence:
    def __init__(
        self,
        ledger: Ledger,
        reconciler: Reconciler,
        tracker: JobTracker,
        metrics: Metrics,
        job_timeout: float,
    ) -> None:
        self._ledger = ledger
        self._reconciler = reconciler
        self._tracker = tracker
        self._metrics = metrics
        self._job_timeout = job_timeout

    async def clear(self, key: EnvKey, owner: str) -> None:
        """Return once no earlier step's job can be running on ``key``."""
        previous = await self._ledger.get_tag(env_tag(key))
        if previous is None or previous == owner:
            return
        request_id, _, index = previous.rpartition("#")
        record = await self._ledger.peek(request_id)
        if record is None or not index.isdigit() or int(index) >= len(record.steps):
            return
        step = record.steps[int(index)]
        job_id = await self._job_of(key, step, previous)
        if job_id is not None:
            await self._wait(key, step, job_id, previous)

    async def enter(self, key: EnvKey, owner: str) -> None:
        """Mark ``key`` as mutated by ``owner`` (before its call is made)."""
        await self._ledger.put_tag(env_tag(key), owner)

    async def _job_of(self, key: EnvKey, step: StepRecord, previous: str) -> str | None:
        if step.phase == DISPATCHED:
            return step.job_id
        if step.phase != DISPATCHING or step.dispatch_began is None:
            return None
        if not servicemodel.creates_job(step.operation):
            return None
        environment = step.environment or key[1]  # where its job is filed
        attempt = Attempt(
            key[0], environment, step.operation, previous, step.dispatch_began, step.dispatch_until
        )
        finding = await self._reconciler.find(attempt)
        if finding.verdict is Verdict.UNKNOWN:
            raise EnvironmentBusy(
                f"{key[0]}/{key[1]}: the job of {previous} ({step.operation}) cannot be"
                f" established ({finding.why}; candidates {', '.join(finding.candidates)})"
            )
        return None if finding.job is None else str(finding.job.get("JobId"))

    async def _wait(self, key: EnvKey, step: StepRecord, job_id: str, previous: str) -> None:
        environment = step.environment or key[1]
        age = wall_time() - (step.dispatch_began or wall_time())
        limit = max(1.0, self._job_timeout - age)
        self._metrics.fence_waits.inc()
        log.info("environment_fence_wait", previous=previous, previous_job_id=job_id)
        with structlog.contextvars.bound_contextvars(job_id=job_id):
            try:
                await self._tracker.wait((key[0], environment), job_id, step.operation, limit)
            except JobTimedOut as exc:
                raise EnvironmentBusy(f"{key[0]}/{key[1]}: {exc} (job of {previous})") from exc
