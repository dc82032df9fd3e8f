"""A real OTLP/HTTP trace receiver on loopback, for tests and benchmarks.

``POST /v1/traces`` with a protobuf ``ExportTraceServiceRequest`` (gzip/deflate or plain), as
the SDK's ``OTLPSpanExporter`` sends it, decoded with opentelemetry-proto into
:class:`ReceivedSpan` values; answered with an ``ExportTraceServiceResponse``. Waiting for spans
is event-driven (:meth:`OtlpReceiver.wait_for`), with a deadline.
"""

from __future__ import annotations

import contextlib
import gzip
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

KINDS = {
    Span.SPAN_KIND_INTERNAL: "INTERNAL",
    Span.SPAN_KIND_SERVER: "SERVER",
    Span.SPAN_KIND_CLIENT: "CLIENT",
    Span.SPAN_KIND_PRODUCER: "PRODUCER",
    Span.SPAN_KIND_CONSUMER: "CONSUMER",
}
STATUSES = {
    Status.STATUS_CODE_UNSET: "UNSET",
    Status.STATUS_CODE_OK: "OK",
    Status.STATUS_CODE_ERROR: "ERROR",
}


@dataclass(frozen=True)
class ReceivedLink:
    trace_id: str
    span_id: str
    attributes: dict[str, Any]


@dataclass(frozen=True)
class ReceivedSpan:
    name: str
    kind: str
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, Any]
    resource: dict[str, Any]
    status: str
    links: list[ReceivedLink] = field(default_factory=list)
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(item) for item in value.array_value.values]
    return getattr(value, kind) if kind else None


def _attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs if isinstance(pair, KeyValue)}


def _span(span: Span, resource: dict[str, Any]) -> ReceivedSpan:
    return ReceivedSpan(
        name=span.name,
        kind=KINDS.get(span.kind, str(span.kind)),
        trace_id=span.trace_id.hex(),
        span_id=span.span_id.hex(),
        parent_span_id=span.parent_span_id.hex(),
        attributes=_attributes(span.attributes),
        resource=resource,
        status=STATUSES.get(span.status.code, str(span.status.code)),
        links=[
            ReceivedLink(link.trace_id.hex(), link.span_id.hex(), _attributes(link.attributes))
            for link in span.links
        ],
        events=[(event.name, _attributes(event.attributes)) for event in span.events],
    )


class OtlpReceiver:
    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self.requests = 0
        self.endpoint = ""
        self._arrived = anyio.Event()

    async def _traces(self, request: web.Request) -> web.Response:
        body = await request.read()
        encoding = request.headers.get("Content-Encoding", "")
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        message = ExportTraceServiceRequest()
        message.ParseFromString(body)
        for resource_spans in message.resource_spans:
            resource = _attributes(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                self.spans.extend(_span(span, resource) for span in scope_spans.spans)
        self.requests += 1
        self._arrived.set()
        self._arrived = anyio.Event()
        reply = ExportTraceServiceResponse().SerializeToString()
        return web.Response(body=reply, content_type="application/x-protobuf")

    async def wait_for(
        self, predicate: Callable[[list[ReceivedSpan]], bool], deadline: float = 30.0
    ) -> None:
        """Until ``predicate(spans)`` holds, re-checked on each export; fails after deadline."""
        with anyio.fail_after(deadline):
            while not predicate(self.spans):
                await self._arrived.wait()


@contextlib.asynccontextmanager
async def otlp_receiver(host: str = "127.0.0.1") -> AsyncIterator[OtlpReceiver]:
    """A receiver on a free port; ``endpoint`` is the base URL (OTEL_EXPORTER_OTLP_ENDPOINT)."""
    receiver = OtlpReceiver()
    app = web.Application(client_max_size=64 * 2**20)
    app.router.add_post("/v1/traces", receiver._traces)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, 0)
    await site.start()
    try:
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        receiver.endpoint = f"http://{host}:{port}"
        yield receiver
    finally:
        await runner.cleanup()
