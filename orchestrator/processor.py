"""What happens to one message: parse, dispatch, report; or reject to the dead-letter queue.

The consumer deletes the message once :meth:`RequestProcessor.process` returns, so returning
means "the outcome has been reported"; when it could not be (SQS unreachable) ``process``
raises and the consumer keeps the message for a later delivery. Reporting (outcome event, DLQ
move) is shielded from cancellation: once a request has an outcome, shutdown cannot separate it
from its report.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

import anyio
import structlog

from orchestrator import logs
from orchestrator.backoff import RetryPolicy
from orchestrator.dispatcher import Dispatcher
from orchestrator.errors import (
    DeliveryFailed,
    OrchestratorError,
    PermanentError,
    RequestRejected,
)
from orchestrator.messages import ChangeRequest, best_effort_request_id, parse_change_request
from orchestrator.metrics import Metrics
from orchestrator.outcome import Outcome, RequestOutcome
from orchestrator.sqs import Message, Sqs

log = logs.get_logger("orchestrator.request")
MAX_ATTRIBUTE_CHARS = 1024


@dataclass(frozen=True)
class Destinations:
    results_queue_url: str | None
    dlq_url: str
    allow_destructive: frozenset[str] = frozenset()


class RequestProcessor:
    def __init__(
        self,
        sqs: Sqs,
        dispatcher: Dispatcher,
        destinations: Destinations,
        metrics: Metrics,
        policy: RetryPolicy,
    ) -> None:
        self._sqs = sqs
        self._dispatcher = dispatcher
        self._to = destinations
        self._metrics = metrics
        self._policy = policy

    async def process(self, message: Message) -> None:
        started = time.perf_counter()
        try:
            request = parse_change_request(
                message.body, allow_destructive=self._to.allow_destructive
            )
        except RequestRejected as exc:
            with anyio.CancelScope(shield=True):
                await self._reject(message, exc, started)
            return
        with structlog.contextvars.bound_contextvars(request_id=request.request_id):
            await self._execute(message, request, started)

    async def _execute(self, message: Message, request: ChangeRequest, started: float) -> None:
        self._metrics.requests_in_progress.inc()
        try:
            log.info(
                "request_started",
                message_id=message.message_id,
                steps=len(request.steps),
                receive_count=message.receive_count,
            )
            with logs.counting_calls() as calls:
                outcome = await self._dispatcher.execute(request)
        finally:
            self._metrics.requests_in_progress.dec()
        outcome.message_id = message.message_id
        with anyio.CancelScope(shield=True):
            await self._report(outcome, request.reply_to, started, calls)

    async def _reject(self, message: Message, exc: RequestRejected, started: float) -> None:
        request_id = exc.request_id or best_effort_request_id(message.body)
        with structlog.contextvars.bound_contextvars(request_id=request_id):
            outcome = RequestOutcome(
                request_id, Outcome.REJECTED, exc.reason, str(exc), message_id=message.message_id
            )
            attributes = {
                "reason": exc.reason,
                "error": str(exc)[:MAX_ATTRIBUTE_CHARS],
                "request_id": request_id or "",
                "source_message_id": message.message_id,
            }
            await self._deliver(self._to.dlq_url, message.body, attributes, what="dlq")
            self._metrics.dlq_moves.labels(exc.reason).inc()
            await self._report(outcome, None, started)

    async def _report(
        self,
        outcome: RequestOutcome,
        reply_to: str | None,
        started: float,
        calls: Counter[str] | None = None,
    ) -> None:
        duration = time.perf_counter() - started
        destination = reply_to or self._to.results_queue_url
        if destination:
            await self._deliver(destination, outcome.to_json(), None, what="outcome")
        self._metrics.requests.labels(str(outcome.outcome), outcome.reason).inc()
        self._metrics.request_duration.labels(str(outcome.outcome)).observe(duration)
        level = log.info if outcome.outcome is Outcome.SUCCEEDED else log.warning
        level(
            "request_finished",
            outcome=str(outcome.outcome),
            reason=outcome.reason,
            error=outcome.error,
            message_id=outcome.message_id,
            job_ids=[step.job_id for step in outcome.steps if step.job_id],
            steps=[
                {
                    "operation": s.operation,
                    "job_id": s.job_id,
                    "status": s.status,
                    "attempts": s.attempts,
                    "duration_s": _seconds_between(s.started_at, s.finished_at),
                }
                for s in outcome.steps
            ],
            api_calls=sum(calls.values()) if calls else 0,
            throttles=calls["throttled"] if calls else 0,
            duration_s=round(duration, 3),
        )

    async def _deliver(
        self, queue_url: str, body: str, attributes: dict[str, str] | None, *, what: str
    ) -> None:
        """Send with retries. While SQS is unreachable this raises :class:`DeliveryFailed`, so
        the message is kept and comes back (the ledger re-sends the same outcome); a queue that
        refuses for good (a wrong ``reply_to``) gets the event logged whole instead."""
        attempt = 0
        while True:
            attempt += 1
            try:
                await self._sqs.send(queue_url, body, attributes, group=what)
                return
            except PermanentError as exc:
                shown = body if what == "outcome" else f"<{len(body)} bytes, not logged>"
                log.error(
                    "not_delivered", what=what, queue_url=queue_url, error=str(exc), body=shown
                )
                return
            except OrchestratorError as exc:
                if not self._policy.should_retry(attempt):
                    raise DeliveryFailed(f"{what} not sent to {queue_url}: {exc}") from exc
                await anyio.sleep(self._policy.delay(attempt))


def _seconds_between(started: str | None, finished: str | None) -> float | None:
    """A step's duration from its ISO timestamps (None until it has both)."""
    if not started or not finished:
        return None
    delta = datetime.fromisoformat(finished) - datetime.fromisoformat(started)
    return round(delta.total_seconds(), 3)
