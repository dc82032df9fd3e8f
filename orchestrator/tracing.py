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
  :data:`orchestrator.spans.NO_TRACER`, whose spans are one shared no-op.

The spans themselves are :mod:`orchestrator.spans`; the context carried in SQS message
attributes and the environment, :mod:`orchestrator.propagation`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

import anyio

from orchestrator import __version__
from orchestrator.errors import ConfigurationError
from orchestrator.spans import NO_TRACER, Tracer

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

DEFAULT_SERVICE_NAME = "orchestrator"
SUPPORTED_PROTOCOL = "http/protobuf"
#: The longest the shutdown waits for the exporter (a collector that does not answer).
FLUSH_SECONDS = 5.0


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
