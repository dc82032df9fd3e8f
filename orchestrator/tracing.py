"""OpenTelemetry tracing: configured once at the edge from the ``OTEL_*`` environment, passed in.

:func:`from_environ` decides, once, at the edge (``orchestrator run``):

* **on** when ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set,
  unless ``OTEL_SDK_DISABLED=true`` or ``OTEL_TRACES_EXPORTER=none``: an SDK ``TracerProvider``
  of the worker's own (the global provider is left alone), a ``BatchSpanProcessor`` and the
  OTLP/HTTP protobuf exporter. ``OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL`` must be
  ``http/protobuf`` (anything else is a :class:`ConfigurationError`); ``OTEL_SERVICE_NAME``
  defaults to ``orchestrator``. The SDK reads the rest itself: ``OTEL_TRACES_SAMPLER(_ARG)``,
  ``OTEL_BSP_*``, ``OTEL_EXPORTER_OTLP_(TRACES_)HEADERS/TIMEOUT/COMPRESSION/CERTIFICATE``,
  ``OTEL_RESOURCE_ATTRIBUTES``.
* **off** otherwise: the SDK is not even imported, and every component holds
  :data:`NO_TRACER`, whose spans are one shared no-op (a ``None`` check per span).

The span tree of one delivery (docs/tracing.md)::

    process <change queue>            CONSUMER, linked to the producer's context
    ├── ledger begin / save / put_tag CLIENT on DynamoDB (on SQLite: events of the span)
    ├── AmplifyBackend.<Operation>    CLIENT (events: rate_limited, throttled, retry)
    ├── job wait                      INTERNAL (events: job_status)
    │   └── AmplifyBackend.ListBackendJobs
    ├── send <results queue>          PRODUCER (traceparent injected into the outcome event)
    └── send <dead-letter queue>      PRODUCER (rejected or given-up messages)

The producer's context comes from the message attributes ``traceparent``/``tracestate`` (W3C
Trace Context) and from the ``AWSTraceHeader`` system attribute (X-Ray): each valid one becomes
a link of the CONSUMER span (the messaging conventions' default: a new trace per delivery,
linked, not parented). Exceptions set a span's status to ERROR with the error's type only
(their messages may hold request data; spans stay as free of secrets as the logs), except an
AmplifyBackend call's error, whose text is scrubbed of the request's secrets at the boundary.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagators.aws import AwsXRayPropagator
from opentelemetry.propagators.textmap import DefaultGetter
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from orchestrator import __version__
from orchestrator.errors import ConfigurationError

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

DEFAULT_SERVICE_NAME = "orchestrator"
SUPPORTED_PROTOCOL = "http/protobuf"
#: The longest the shutdown waits for the exporter (a collector that does not answer).
FLUSH_SECONDS = 5.0
#: The SQS message attributes a producer's W3C context travels in (what the worker requests).
TRACE_ATTRIBUTES = ("traceparent", "tracestate")
#: The SQS system attribute X-Ray's context travels in.
XRAY_ATTRIBUTE = "AWSTraceHeader"
AWS_SERVICE = "AmplifyBackend"

_W3C = TraceContextTextMapPropagator()
_XRAY = AwsXRayPropagator()
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


class Tracing:
    """The process's tracing: the components' :class:`Tracer` and the provider behind it."""

    def __init__(self, provider: TracerProvider | None = None) -> None:
        self._provider = provider
        self.tracer = (
            Tracer(provider.get_tracer("orchestrator", __version__)) if provider else NO_TRACER
        )

    @classmethod
    def off(cls) -> Tracing:
        return cls()

    @property
    def enabled(self) -> bool:
        return self._provider is not None

    async def flush(self) -> None:
        """Export every span ended so far (the worker's last shutdown step), within
        :data:`FLUSH_SECONDS`; shielded, so a forced stop still sends what it can."""
        provider = self._provider
        if provider is None:
            return
        with anyio.CancelScope(shield=True), anyio.move_on_after(FLUSH_SECONDS):
            # The export blocks (HTTP); abandoned past the bound, the atexit shutdown retries.
            await anyio.to_thread.run_sync(provider.force_flush, abandon_on_cancel=True)

    def shutdown(self) -> None:
        if self._provider is not None:
            self._provider.shutdown()


def from_environ(
    environ: Mapping[str, str] = os.environ, exporter: SpanExporter | None = None
) -> Tracing:
    """The tracing the ``OTEL_*`` variables ask for (see the module docstring). ``exporter``
    replaces the OTLP exporter (tests)."""
    endpoint = _endpoint(environ)
    if endpoint is None or _disabled(environ):
        return Tracing.off()
    _check_protocol(environ)
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    attributes = {"service.version": __version__}
    if environ.get("OTEL_SERVICE_NAME"):
        attributes["service.name"] = environ["OTEL_SERVICE_NAME"]
    resource = Resource.create(attributes)  # + OTEL_RESOURCE_ATTRIBUTES
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": DEFAULT_SERVICE_NAME}))
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=endpoint)
    # The sampler from OTEL_TRACES_SAMPLER. No atexit hook: the worker flushes as the last step
    # of its shutdown (Worker.run), the one place spans leave the process at the end.
    provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    provider.add_span_processor(BatchSpanProcessor(exporter))  # OTEL_BSP_*
    return Tracing(provider)


def _endpoint(environ: Mapping[str, str]) -> str | None:
    """The traces URL: the signal's own endpoint as given, else the base one + /v1/traces."""
    traces = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    if traces:
        return traces
    base = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    return f"{base.rstrip('/')}/v1/traces" if base else None


def _disabled(environ: Mapping[str, str]) -> bool:
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return True
    exporter = environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() or "otlp"
    if exporter == "none":
        return True
    if exporter != "otlp":
        raise ConfigurationError(
            f"OTEL_TRACES_EXPORTER={exporter!r} is not supported: the worker exports OTLP"
            " (set it to otlp or none)"
        )
    return False


def _check_protocol(environ: Mapping[str, str]) -> None:
    for name in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        value = environ.get(name, "").strip()
        if value:
            if value != SUPPORTED_PROTOCOL:
                raise ConfigurationError(
                    f"{name}={value!r} is not supported: the worker exports OTLP over HTTP"
                    f" with protobuf ({SUPPORTED_PROTOCOL}, a collector's port 4318)"
                )
            return


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


def producer_links(carrier: Mapping[str, str]) -> list[Link]:
    """A link to each valid producer context a message carries: W3C ``traceparent`` (with
    ``tracestate``) and X-Ray ``AWSTraceHeader``; the same context twice is linked once."""
    found: list[tuple[str, trace.SpanContext]] = []
    if carrier.get("traceparent"):
        found.append(("traceparent", _span_context(_W3C.extract(carrier))))
    header = carrier.get(XRAY_ATTRIBUTE)
    if header:
        xray = _XRAY.extract({"X-Amzn-Trace-Id": header}, getter=DefaultGetter())
        found.append((XRAY_ATTRIBUTE, _span_context(xray)))
    links: list[Link] = []
    seen: set[tuple[int, int]] = set()
    for source, context in found:
        key = (context.trace_id, context.span_id)
        if context.is_valid and key not in seen:
            seen.add(key)
            links.append(Link(context, {"orchestrator.link.source": source}))
    return links


def _span_context(context: otel_context.Context) -> trace.SpanContext:
    return trace.get_current_span(context).get_span_context()


def current_carrier() -> dict[str, str]:
    """``traceparent`` (and ``tracestate``) of the current span; empty when none is valid."""
    carrier: dict[str, str] = {}
    if trace.get_current_span().get_span_context().is_valid:
        _W3C.inject(carrier)
    return carrier


def current_trace_id() -> str | None:
    """The current span's trace id (32 hex digits), or None when no valid span is current."""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


def environ_context(environ: Mapping[str, str] = os.environ) -> otel_context.Context:
    """The context in ``TRACEPARENT``/``TRACESTATE`` (OpenTelemetry's environment carrier, how a
    CI job passes its trace to a command such as ``orchestrator send``)."""
    carrier = {name: environ[name.upper()] for name in TRACE_ATTRIBUTES if name.upper() in environ}
    return _W3C.extract(carrier)


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
