"""The spans components make: :class:`Tracer`, with one method per span of the conventions' shape.

The span tree of one delivery (docs/tracing.md)::

    process <change queue>            CONSUMER, linked to the producer's context
    ├── ledger begin / save / put_tag CLIENT on DynamoDB (on SQLite: events of the span)
    ├── AmplifyBackend.<Operation>    CLIENT (events: rate_limited, throttled, retry)
    ├── job wait                      INTERNAL (events: job_status)
    │   └── AmplifyBackend.ListBackendJobs
    ├── send <results queue>          PRODUCER (traceparent injected into the outcome event)
    └── send <dead-letter queue>      PRODUCER (rejected or given-up messages)

Off, every component holds :data:`NO_TRACER`, whose spans are one shared no-op (a ``None``
check per span). Exceptions set a span's status to ERROR with the error's type only (their
messages may hold request data; spans stay as free of secrets as the logs), except an
AmplifyBackend call's error, whose text is scrubbed of the request's secrets at the boundary.
The producer links and the injected context come from :mod:`orchestrator.propagation`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode

from orchestrator.propagation import current_carrier, producer_links

AWS_SERVICE = "AmplifyBackend"

_NO_SPAN: AbstractContextManager[Span] = contextlib.nullcontext(trace.INVALID_SPAN)


class Tracer:
    """What components hold: spans of the conventions' shape while tracing is on; with
    :data:`NO_TRACER` every method returns at its first line (one shared no-op span)."""

    __slots__ = ("_otel",)

    def __init__(self, otel: trace.Tracer | None = None) -> None:
        self._otel = otel

    @property
    def enabled(self) -> bool:
        return self._otel is not None

    def span(
        self,
        name: str,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Mapping[str, Any] | None = None,
        links: Sequence[Link] | None = None,
    ) -> AbstractContextManager[Span]:
        """A span, current until the block ends."""
        if self._otel is None:
            return _NO_SPAN
        return _Scope(self._otel.start_span(name, kind=kind, attributes=attributes, links=links))

    def processing(
        self, queue_url: str, message_id: str, receive_count: int, carrier: Mapping[str, str]
    ) -> AbstractContextManager[Span]:
        """The CONSUMER span of one delivery, linked to the producer's context(s)."""
        if self._otel is None:
            return _NO_SPAN
        name = queue_name(queue_url)
        attributes = {
            **_messaging(name, "process"),
            "messaging.message.id": message_id,
            "orchestrator.receive_count": receive_count,
        }
        return self.span(f"process {name}", SpanKind.CONSUMER, attributes, producer_links(carrier))

    def sending(self, queue_url: str, what: str) -> AbstractContextManager[Span]:
        """The PRODUCER span of an outcome event or a dead-letter move."""
        if self._otel is None:
            return _NO_SPAN
        name = queue_name(queue_url)
        attributes = {**_messaging(name, "send"), "orchestrator.message.kind": what}
        return self.span(f"send {name}", SpanKind.PRODUCER, attributes)

    def api_call(self, operation: str) -> AbstractContextManager[Span]:
        """The CLIENT span of one AmplifyBackend call, retries included (AWS SDK conventions)."""
        if self._otel is None:
            return _NO_SPAN
        attributes = {"rpc.system": "aws-api", "rpc.service": AWS_SERVICE, "rpc.method": operation}
        return self.span(f"{AWS_SERVICE}.{operation}", SpanKind.CLIENT, attributes)

    def job_wait(
        self, app_id: str, environment: str, job_id: str, operation: str
    ) -> AbstractContextManager[Span]:
        """The INTERNAL span of the wait for one job to become terminal."""
        if self._otel is None:
            return _NO_SPAN
        attributes = {
            "orchestrator.job.id": job_id,
            "orchestrator.job.operation": operation,
            "orchestrator.app_id": app_id,
            "orchestrator.environment": environment,
        }
        return self.span("job wait", SpanKind.INTERNAL, attributes)

    def sweep(
        self, app_id: str, environment: str, waits: Sequence[Span]
    ) -> AbstractContextManager[Span]:
        """A tracker sweep of an environment's pages: its own trace, linked to every job wait it
        serves (one call answers many requests)."""
        if self._otel is None:
            return _NO_SPAN
        links = [Link(s.get_span_context()) for s in waits if s.get_span_context().is_valid]
        attributes = {"orchestrator.app_id": app_id, "orchestrator.environment": environment}
        return self.span("job sweep", SpanKind.INTERNAL, attributes, links)

    def ledger(self, operation: str, system: str) -> AbstractContextManager[Span]:
        if self._otel is None:
            return _NO_SPAN
        return self.span(f"ledger {operation}", SpanKind.CLIENT, {"db.system.name": system})

    def within(self, span: Span) -> AbstractContextManager[Any]:
        """Make ``span`` (started elsewhere) current for a block, without ending it."""
        if self._otel is None or not span.is_recording():
            return _NO_SPAN
        return trace.use_span(span, record_exception=False, set_status_on_exception=False)

    def detached(self) -> AbstractContextManager[Any]:
        """No span current for a block: for a task that serves many requests but was started
        from one of them (it inherited that request's context)."""
        if self._otel is None:
            return _NO_SPAN
        return _Attached(otel_context.Context())

    def event(self, name: str, attributes: Mapping[str, Any]) -> None:
        """An event of the current span."""
        if self._otel is not None:
            trace.get_current_span().add_event(name, attributes)

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        """Attributes on the current span (the request id, its outcome...)."""
        if self._otel is not None:
            trace.get_current_span().set_attributes(attributes)

    def inject(self, attributes: Mapping[str, str] | None) -> Mapping[str, str] | None:
        """``attributes`` plus the current span's ``traceparent``/``tracestate`` (unchanged off)."""
        if self._otel is None:
            return attributes
        carrier = current_carrier()
        return {**(attributes or {}), **carrier} if carrier else attributes


NO_TRACER = Tracer()


def queue_name(queue_url: str) -> str:
    """The queue's name: the last part of its URL."""
    return queue_url.rstrip("/").rpartition("/")[2] or queue_url


def _messaging(name: str, operation: str) -> dict[str, Any]:
    return {
        "messaging.system": "aws_sqs",
        "messaging.operation.type": operation,
        "messaging.operation.name": operation,
        "messaging.destination.name": name,
    }


def record_error(span: Span, exc: BaseException, description: str | None = None) -> None:
    """Status ERROR and ``error.type`` (the AWS error code, else the exception's type).
    ``description`` only when it is known to be free of request data (scrubbed)."""
    if not span.is_recording():
        return
    kind = getattr(exc, "code", "") or type(exc).__name__
    span.set_attribute("error.type", kind)
    span.set_status(Status(StatusCode.ERROR, description or type(exc).__name__))


class _Scope:
    """A started span made current for a block, then ended; an exception marks it ERROR
    unless the code inside already set a status."""

    __slots__ = ("_span", "_token")

    def __init__(self, span: Span) -> None:
        self._span = span

    def __enter__(self) -> Span:
        self._token = otel_context.attach(trace.set_span_in_context(self._span))
        return self._span

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            status = getattr(self._span, "status", None)
            unset = status is None or status.status_code is StatusCode.UNSET
            if isinstance(exc, Exception) and unset:
                record_error(self._span, exc)
        finally:
            otel_context.detach(self._token)
            self._span.end()


class _Attached:
    __slots__ = ("_context", "_token")

    def __init__(self, context: otel_context.Context) -> None:
        self._context = context

    def __enter__(self) -> None:
        self._token = otel_context.attach(self._context)

    def __exit__(self, *_: object) -> None:
        otel_context.detach(self._token)
