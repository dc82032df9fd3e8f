"""What happens to one message: parse, dispatch, report; or reject to the dead-letter queue.

The consumer deletes the message once :meth:`RequestProcessor.process` returns, so returning
means "the outcome has been reported"; when it could not be (SQS unreachable) ``process``
raises and the consumer keeps the message for a later delivery. Reporting (outcome event, DLQ
move) is shielded from cancellation: once a request has an outcome, shutdown cannot separate it
from its report.

With tracing on, each delivery is one CONSUMER span linked to the producer's context (the
request id, outcome and reason are its attributes), and the outcome event and the DLQ move are
PRODUCER spans whose ``traceparent`` travels in the message attributes (orchestrator.tracing).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import anyio
import structlog
from opentelemetry import trace
from opentelemetry.trace import StatusCode

from orchestrator import logs
from orchestrator.authorization import SenderPolicy
from orchestrator.backoff import RetryPolicy
from orchestrator.clock import Clock, MonotonicClock
from orchestrator.dispatcher import Dispatcher
from orchestrator.errors import (
    DeliveryFailed,
    LeaseLost,
    LedgerConflict,
    OrchestratorError,
    PermanentError,
    RequestRejected,
)
from orchestrator.ledger import Ledger, LedgerRecord
from orchestrator.messages import (
    ChangeRequest,
    best_effort_reply_to,
    best_effort_request_id,
    parse_change_request,
)
from orchestrator.metrics import Metrics
from orchestrator.outcome import Outcome, RequestOutcome
from orchestrator.sqs import Message, Sqs
from orchestrator.tracing import NO_TRACER, Tracer, current_trace_id

log = logs.get_logger("orchestrator.request")
MAX_ATTRIBUTE_CHARS = 1024


@dataclass(frozen=True)
class Destinations:
    results_queue_url: str | None
    dlq_url: str
    allow_destructive: frozenset[str] = frozenset()
    #: The delivery on which a failure that would be retried ends the request instead (the
    #: queue's maxReceiveCount: SQS would move the message to the DLQ on the next receive,
    #: with no outcome for its producer).
    max_receives: int | None = None
    #: ORCHESTRATOR_DEPRECATED=reject: a request using a deprecated member is REJECTED.
    reject_deprecated: bool = False
    #: The change queue the messages come from (names each delivery's CONSUMER span).
    queue_url: str = ""


@dataclass(frozen=True)
class ParsedMessage:
    """A received message read once: its change request, or why it is rejected (a
    :class:`orchestrator.consumer.Delivery`)."""

    processor: RequestProcessor
    message: Message
    parsed: ChangeRequest | RequestRejected

    @property
    def fairness_key(self) -> str:
        """The request's app; "" for a message to be rejected."""
        return self.parsed.app_id if isinstance(self.parsed, ChangeRequest) else ""

    async def run(self) -> None:
        await self.processor.process(self.message, self.parsed)


class RequestProcessor:
    def __init__(
        self,
        sqs: Sqs,
        dispatcher: Dispatcher,
        ledger: Ledger,
        destinations: Destinations,
        metrics: Metrics,
        policy: RetryPolicy,
        senders: SenderPolicy | None = None,
        tracer: Tracer = NO_TRACER,
        clock: Clock | None = None,
    ) -> None:
        self._clock = clock or MonotonicClock()
        self._tracer = tracer
        self._senders = senders
        self._sqs = sqs
        self._dispatcher = dispatcher
        self._ledger = ledger
        self._to = destinations
        self._metrics = metrics
        self._policy = policy

    def prepare(self, message: Message) -> ParsedMessage:
        """Parse the message once, on receipt (the consumer's fairness key is its app)."""
        try:
            parsed: ChangeRequest | RequestRejected = parse_change_request(
                message.body,
                allow_destructive=self._to.allow_destructive,
                reject_deprecated=self._to.reject_deprecated,
            )
        except RequestRejected as exc:
            parsed = exc
        return ParsedMessage(self, message, parsed)

    async def process(
        self, message: Message, parsed: ChangeRequest | RequestRejected | None = None
    ) -> None:
        """Handle one message (``parsed``: what :meth:`prepare` made of it; None parses now)."""
        if parsed is None:
            parsed = self.prepare(message).parsed
        carrier = message.trace_carrier
        with self._tracer.processing(
            self._to.queue_url, message.message_id, message.receive_count, carrier
        ):
            await self._process(message, parsed)

    async def _process(self, message: Message, parsed: ChangeRequest | RequestRejected) -> None:
        started = time.perf_counter()
        if isinstance(parsed, RequestRejected):
            await self._reject(message, parsed, started)
            return
        request = parsed
        rejection = self._authorize(message, request)
        if rejection is not None:
            await self._reject(message, rejection, started)
            return
        self._tracer.set_attributes({"orchestrator.request_id": request.request_id})
        with structlog.contextvars.bound_contextvars(request_id=request.request_id):
            try:
                await self._execute(message, request, started)
            except (LeaseLost, LedgerConflict, DeliveryFailed):
                # Another worker has the request (it reports it; on the last delivery SQS
                # moves this copy to the DLQ), or SQS itself is failing.
                raise
            except Exception as exc:
                if not self._last_delivery(message):
                    raise
                with anyio.CancelScope(shield=True):
                    await self._give_up(message, request, exc, started)

    def _authorize(self, message: Message, request: ChangeRequest) -> RequestRejected | None:
        """The sender policy's decision, before any AmplifyBackend call: None when allowed
        (no policy configured: every sender may send anything the parser accepts)."""
        if self._senders is None:
            return None
        decision = self._senders.decide(message.sender_id, request)
        rule = decision.rule or "none"
        self._metrics.sender_decisions.labels(
            rule, "allowed" if decision.allowed else "denied"
        ).inc()
        if decision.allowed:
            return None
        log.warning(
            "sender_not_allowed",
            request_id=request.request_id,
            sender_id=message.sender_id,
            rules=[r.name for r in self._senders.rules],
            why=decision.why,
        )
        return RequestRejected("sender_not_allowed", decision.why, request.request_id)

    def _last_delivery(self, message: Message) -> bool:
        limit = self._to.max_receives
        return limit is not None and message.receive_count >= limit

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
                outcome = await self._dispatcher.execute(request, message.message_id)
        finally:
            self._metrics.requests_in_progress.dec()
        with anyio.CancelScope(shield=True):
            await self._report(outcome, request.reply_to, started, calls, message.message_id)

    async def _give_up(
        self, message: Message, request: ChangeRequest, exc: Exception, started: float
    ) -> None:
        """The last delivery failed in a way that would be retried: report the request FAILED
        and move its message to the DLQ ourselves. Its ledger record stays in progress, so a
        redrive resumes it where it stopped (never sending a mutation twice). A record that
        has an outcome by now (another delivery finished the request) is reported instead:
        a producer never gets two different outcomes for one request."""
        record = await self._record_so_far(request.request_id)
        if record is not None and record.outcome is not None:
            log.info("request_already_finished", deliveries=record.deliveries)
            stored = RequestOutcome.from_json(record.outcome)
            await self._report(stored, request.reply_to, started, message_id=message.message_id)
            return
        reason = "delivery_attempts_exhausted"
        error = request.scrub(f"gave up after {message.receive_count} deliveries: {exc}")
        log.error("delivery_attempts_exhausted", message_id=message.message_id, error=error)
        steps = record.steps if record else []
        outcome = RequestOutcome(
            request.request_id, Outcome.FAILED, reason, error, steps, message.message_id
        )
        outcome.warnings = request.warnings()
        await self._report(outcome, request.reply_to, started)
        await self._dead_letter(message, reason, error, request.request_id)

    async def _record_so_far(self, request_id: str) -> LedgerRecord | None:
        try:
            return await self._ledger.peek(request_id)
        except OrchestratorError as exc:  # the ledger may be why the request failed
            log.warning("ledger_unreadable", error=str(exc))
            return None

    async def _reject(self, message: Message, exc: RequestRejected, started: float) -> None:
        """Record, dead-letter and report a rejected message (shielded: once decided, shutdown
        cannot separate it from its report)."""
        with anyio.CancelScope(shield=True):
            await self._rejected(message, exc, started)

    async def _rejected(self, message: Message, exc: RequestRejected, started: float) -> None:
        request_id = exc.request_id or best_effort_request_id(message.body)
        with structlog.contextvars.bound_contextvars(request_id=request_id):
            outcome = RequestOutcome(
                request_id, Outcome.REJECTED, exc.reason, str(exc), message_id=message.message_id
            )
            await self._record_rejection(request_id or f"message:{message.message_id}", outcome)
            await self._dead_letter(message, exc.reason, str(exc), request_id)
            await self._report(outcome, best_effort_reply_to(message.body), started)

    async def _record_rejection(self, key: str, outcome: RequestOutcome) -> None:
        """A minimal ledger record, so that ``inspect`` and ``requests --status REJECTED`` find
        the request; never over another record (a request id used before stays as it was)."""
        try:
            if await self._ledger.get(key) is None:
                record = LedgerRecord(key, status=str(outcome.outcome), outcome=outcome.to_json())
                await self._ledger.save(record)
        except Exception as exc:  # only bookkeeping: the DLQ and the outcome event still follow
            log.warning("rejection_not_recorded", error=str(exc))

    async def _dead_letter(
        self, message: Message, reason: str, error: str, request_id: str | None
    ) -> None:
        """Move the message's body to the DLQ. Raises :class:`DeliveryFailed` when the DLQ does
        not take it, so the message is kept on the change queue: never deleted unless moved."""
        attributes = {
            "reason": reason,
            "error": error[:MAX_ATTRIBUTE_CHARS],
            "request_id": request_id or "",
            "source_message_id": message.message_id,
        }
        try:
            await self._deliver(
                self._to.dlq_url,
                message.body,
                attributes,
                what="dlq",
                dedup=message.message_id,
                group=message.group_id,  # a FIFO request keeps its group on the DLQ
            )
        except DeliveryFailed as exc:
            self._metrics.dlq_move_failures.labels(reason).inc()
            log.error(
                "dlq_move_failed", message_id=message.message_id, reason=reason, error=str(exc)
            )
            raise
        self._metrics.dlq_moves.labels(reason).inc()

    async def _report(
        self,
        outcome: RequestOutcome,
        reply_to: str | None,
        started: float,
        calls: Counter[str] | None = None,
        message_id: str | None = None,
    ) -> None:
        """Send the outcome event and write the canonical ``request_finished`` line, which names
        ``message_id``, the message being handled (a finished request's stored event names the
        delivery that ran it)."""
        duration = time.perf_counter() - started
        trace_id = current_trace_id() if self._tracer.enabled else None
        if trace_id:
            self._trace_outcome(outcome, trace_id)
        destination = reply_to or self._to.results_queue_url
        if destination:
            fifo = destination.endswith(".fifo")
            dedup = outcome.dedup_id() if outcome.trace_id and fifo else None
            body = outcome.to_json()
            await self._deliver(destination, body, None, what="outcome", dedup=dedup)
        self._metrics.requests.labels(str(outcome.outcome), outcome.reason).inc()
        exemplar = {"trace_id": trace_id} if trace_id else None
        self._metrics.request_duration.labels(str(outcome.outcome)).observe(duration, exemplar)
        for warning in outcome.warnings:
            self._metrics.deprecated_members.labels(warning["operation"], warning["member"]).inc()
        extra = {"warnings": outcome.warnings} if outcome.warnings else {}
        level = log.info if outcome.outcome is Outcome.SUCCEEDED else log.warning
        level(
            "request_finished",
            outcome=str(outcome.outcome),
            reason=outcome.reason,
            error=outcome.error,
            message_id=message_id or outcome.message_id,
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
            **extra,
        )

    def _trace_outcome(self, outcome: RequestOutcome, trace_id: str) -> None:
        """The outcome on the delivery's span; the event names the trace (a stored outcome
        re-sent keeps the trace of the delivery that ran the request)."""
        outcome.trace_id = outcome.trace_id or trace_id
        attributes = {
            "orchestrator.outcome": str(outcome.outcome),
            "orchestrator.reason": outcome.reason,
        }
        if outcome.request_id:
            attributes["orchestrator.request_id"] = outcome.request_id
        self._tracer.set_attributes(attributes)
        if outcome.outcome is Outcome.FAILED:
            span = trace.get_current_span()
            span.set_status(StatusCode.ERROR, f"FAILED {outcome.reason}")

    async def _deliver(
        self,
        queue_url: str,
        body: str,
        attributes: Mapping[str, str] | None,
        *,
        what: str,
        dedup: str | None = None,
        group: str | None = None,
    ) -> None:
        """One PRODUCER span (tracing on), its ``traceparent`` added to the attributes."""
        with self._tracer.sending(queue_url, what):
            attributes = self._tracer.inject(attributes)
            await self._send(queue_url, body, attributes, what=what, dedup=dedup, group=group)

    async def _send(
        self,
        queue_url: str,
        body: str,
        attributes: Mapping[str, str] | None,
        *,
        what: str,
        dedup: str | None = None,
        group: str | None = None,
    ) -> None:
        """Send with retries. While SQS is unreachable this raises :class:`DeliveryFailed`, so
        the message is kept and comes back (the ledger re-sends the same outcome). An outcome
        queue that refuses for good (a wrong ``reply_to``) gets the event logged whole instead;
        a DLQ that refuses for good raises :class:`DeliveryFailed` at once."""
        for attempt in self._policy.attempts():
            try:
                await self._sqs.send(queue_url, body, attributes, group=group or what, dedup=dedup)
                return
            except PermanentError as exc:
                if what != "outcome":
                    raise DeliveryFailed(f"{what} {queue_url} refused the message: {exc}") from exc
                log.error(
                    "not_delivered", what=what, queue_url=queue_url, error=str(exc), body=body
                )
                return
            except OrchestratorError as exc:
                if attempt.last:
                    raise DeliveryFailed(f"{what} not sent to {queue_url}: {exc}") from exc
                await attempt.backoff(self._clock)


def _seconds_between(started: str | None, finished: str | None) -> float | None:
    """A step's duration from its ISO timestamps (None until it has both)."""
    if not started or not finished:
        return None
    delta = datetime.fromisoformat(finished) - datetime.fromisoformat(started)
    return round(delta.total_seconds(), 3)
