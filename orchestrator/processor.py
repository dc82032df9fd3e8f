"""What happens to one message: parse, dispatch, report; or reject to the dead-letter queue.

The consumer deletes the message once :meth:`RequestProcessor.process` returns, so returning
means "the outcome has been reported"; when it could not be (SQS unreachable) ``process``
raises and the consumer keeps the message for a later delivery. Reporting (outcome event, DLQ
move: :mod:`orchestrator.reporting`) is shielded from cancellation: once a request has an
outcome, shutdown cannot separate it from its report.

With tracing on, each delivery is one CONSUMER span linked to the producer's context (the
request id, outcome and reason are its attributes; orchestrator.spans).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import anyio
import structlog

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
from orchestrator.reporting import Reporter
from orchestrator.spans import NO_TRACER, Tracer
from orchestrator.sqs import Message, Sqs

log = logs.get_logger("orchestrator.request")


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
    :class:`orchestrator.delivery.Delivery`)."""

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
        self._tracer = tracer
        self._senders = senders
        self._dispatcher = dispatcher
        self._ledger = ledger
        self._to = destinations
        self._metrics = metrics
        self._reporter = Reporter(
            sqs,
            destinations.results_queue_url,
            destinations.dlq_url,
            metrics,
            policy,
            tracer,
            clock or MonotonicClock(),
        )

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
            await self._reporter.report(
                outcome, request.reply_to, started, calls, message.message_id
            )

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
            await self._reporter.report(
                stored, request.reply_to, started, message_id=message.message_id
            )
            return
        reason = "delivery_attempts_exhausted"
        error = request.scrub(f"gave up after {message.receive_count} deliveries: {exc}")
        log.error("delivery_attempts_exhausted", message_id=message.message_id, error=error)
        steps = record.steps if record else []
        outcome = RequestOutcome(
            request.request_id, Outcome.FAILED, reason, error, steps, message.message_id
        )
        outcome.warnings = request.warnings()
        await self._reporter.report(outcome, request.reply_to, started)
        await self._reporter.dead_letter(message, reason, error, request.request_id)

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
            await self._reporter.dead_letter(message, exc.reason, str(exc), request_id)
            await self._reporter.report(outcome, best_effort_reply_to(message.body), started)

    async def _record_rejection(self, key: str, outcome: RequestOutcome) -> None:
        """A minimal ledger record, so that ``inspect`` and ``requests --status REJECTED`` find
        the request; never over another record (a request id used before stays as it was)."""
        try:
            if await self._ledger.get(key) is None:
                record = LedgerRecord(key, status=str(outcome.outcome), outcome=outcome.to_json())
                await self._ledger.save(record)
        except OrchestratorError as exc:  # bookkeeping only: the DLQ and the outcome still follow
            log.warning("rejection_not_recorded", error=str(exc))
