"""Reporting a request's outcome: the outcome event, the ``request_finished`` line, the
request metrics, and a message's move to the dead-letter queue.

Every send goes out with retries under the worker's retry policy. While SQS is unreachable a
send raises :class:`~orchestrator.errors.DeliveryFailed`, so the message is kept and comes back
(the ledger re-sends the same outcome). With tracing on, each send is a PRODUCER span whose
``traceparent`` travels in the message attributes, and the outcome is set on the delivery's
CONSUMER span.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from datetime import datetime

from opentelemetry import trace
from opentelemetry.trace import StatusCode

from orchestrator import logs
from orchestrator.backoff import RetryPolicy
from orchestrator.clock import Clock
from orchestrator.errors import DeliveryFailed, OrchestratorError, PermanentError
from orchestrator.metrics import Metrics
from orchestrator.outcome import Outcome, RequestOutcome
from orchestrator.propagation import current_trace_id
from orchestrator.spans import Tracer
from orchestrator.sqs import Message, Sqs

log = logs.get_logger("orchestrator.request")
#: The longest value of a DLQ message attribute (an error text is cut there).
MAX_ATTRIBUTE_CHARS = 1024


class Reporter:
    """Sends outcome events (to ``reply_to`` or the results queue) and DLQ moves."""

    def __init__(
        self,
        sqs: Sqs,
        results_queue_url: str | None,
        dlq_url: str,
        metrics: Metrics,
        policy: RetryPolicy,
        tracer: Tracer,
        clock: Clock,
    ) -> None:
        self._sqs = sqs
        self._results_queue_url = results_queue_url
        self._dlq_url = dlq_url
        self._metrics = metrics
        self._policy = policy
        self._tracer = tracer
        self._clock = clock

    async def dead_letter(
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
                self._dlq_url,
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

    async def report(
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
        destination = reply_to or self._results_queue_url
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
        """Send with retries, in one PRODUCER span (tracing on) whose ``traceparent`` is added
        to the attributes. While SQS is unreachable this raises :class:`DeliveryFailed`, so the
        message is kept and comes back (the ledger re-sends the same outcome). An outcome queue
        that refuses for good (a wrong ``reply_to``) gets the event logged whole instead; a DLQ
        that refuses for good raises :class:`DeliveryFailed` at once."""
        with self._tracer.sending(queue_url, what):
            attributes = self._tracer.inject(attributes)
            for attempt in self._policy.attempts():
                try:
                    await self._sqs.send(
                        queue_url, body, attributes, group=group or what, dedup=dedup
                    )
                    return
                except PermanentError as exc:
                    if what != "outcome":
                        raise DeliveryFailed(
                            f"{what} {queue_url} refused the message: {exc}"
                        ) from exc
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
