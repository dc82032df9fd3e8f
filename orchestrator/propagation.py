"""Trace context across process boundaries: SQS message attributes and the environment.

The producer's context comes from the message attributes ``traceparent``/``tracestate`` (W3C
Trace Context) and from the ``AWSTraceHeader`` system attribute (X-Ray): each valid one becomes
a link of the CONSUMER span (the messaging conventions' default: a new trace per delivery,
linked, not parented). The worker's own context leaves in ``traceparent``/``tracestate``
(outcome events, ``orchestrator send``); a CI job's comes in through ``TRACEPARENT``/
``TRACESTATE`` in the environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagators.aws import AwsXRayPropagator
from opentelemetry.propagators.textmap import DefaultGetter
from opentelemetry.trace import Link
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

#: The SQS message attributes a producer's W3C context travels in (what the worker requests).
TRACE_ATTRIBUTES = ("traceparent", "tracestate")
#: The SQS system attribute X-Ray's context travels in.
XRAY_ATTRIBUTE = "AWSTraceHeader"

_W3C = TraceContextTextMapPropagator()
_XRAY = AwsXRayPropagator()


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
