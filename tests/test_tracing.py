"""OpenTelemetry tracing (orchestrator.tracing, .spans and .propagation; docs/tracing.md): the
span tree of a delivery, the producer's context extracted (W3C and X-Ray) and injected into what
the worker sends, trace ids in logs, outcome events and exemplars, the configuration from
OTEL_*, nothing at all when off, and `orchestrator run` exporting to a real OTLP/HTTP receiver,
flushed on SIGTERM."""

from __future__ import annotations

import json
import os
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest
import structlog
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.openmetrics.parser import text_string_to_metric_families
from structlog.testing import capture_logs

from orchestrator import logs
from orchestrator.amplify import AmplifyApi
from orchestrator.backoff import RetryPolicy
from orchestrator.errors import ConfigurationError, RetriesExhausted
from orchestrator.ledger import SLOW_LOCAL_WRITE
from orchestrator.metrics import Metrics
from orchestrator.outcome import Outcome, RequestOutcome
from orchestrator.producer import send_bodies
from orchestrator.propagation import environ_context, producer_links
from orchestrator.ratelimit import AdaptiveRateLimiter, LimiterSettings
from orchestrator.spans import NO_TRACER, queue_name
from orchestrator.testing import (
    FAST,
    Queues,
    auth_request,
    drain,
    emulated_api,
    processes,
    running_worker,
    storage_request,
)
from orchestrator.testing.otlp import ReceivedSpan, otlp_receiver
from orchestrator.tracing import Tracing, from_environ

XRAY_HEADER = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
XRAY_TRACE, XRAY_SPAN = "5759e988bd862e3fe1be46a994272793", "53995c3f42cd8ad8"


def memory_tracing() -> tuple[Tracing, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create({"service.name": "test"}), shutdown_on_exit=False
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return Tracing(provider), exporter


def producer_context() -> tuple[str, str, str]:
    """(traceparent, trace id, span id) of a made-up producer."""
    trace_id, span_id = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    return f"00-{trace_id}-{span_id}-01", trace_id, span_id


def sampled_ids(traceparent: str) -> tuple[str, str]:
    """(trace id, span id) of a W3C traceparent, which must say "sampled"."""
    version, trace_id, span_id, flags = traceparent.split("-")
    assert version == "00" and int(flags, 16) & 1, traceparent
    return trace_id, span_id


def hex_ids(span: ReadableSpan) -> tuple[str, str, str]:
    """(trace id, span id, parent span id or "") in hex."""
    context = span.get_span_context()
    assert context is not None
    parent = format(span.parent.span_id, "016x") if span.parent else ""
    return format(context.trace_id, "032x"), format(context.span_id, "016x"), parent


def descendants(spans: Sequence[ReadableSpan], root: ReadableSpan) -> list[ReadableSpan]:
    children: dict[str, list[ReadableSpan]] = {}
    for span in spans:
        children.setdefault(hex_ids(span)[2], []).append(span)
    found, todo = [], [hex_ids(root)[1]]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(hex_ids(child)[1])
    return found


def only(spans: Sequence[ReadableSpan], name: str) -> ReadableSpan:
    matching = [span for span in spans if span.name == name]
    assert len(matching) == 1, (name, [span.name for span in spans])
    return matching[0]


def consumer_of(spans: Sequence[ReadableSpan], request_id: str) -> ReadableSpan:
    return next(
        span
        for span in spans
        if span.kind is trace.SpanKind.CONSUMER
        and span.attributes
        and span.attributes.get("orchestrator.request_id") == request_id
    )


def links_of(span: ReadableSpan) -> list[tuple[str, str, str]]:
    return [
        (
            format(link.context.trace_id, "032x"),
            format(link.context.span_id, "016x"),
            str((link.attributes or {}).get("orchestrator.link.source")),
        )
        for link in span.links
    ]


async def test_span_tree_of_deliveries(sqs: Any, queues: Queues, emulator: Any) -> None:
    """1. A worker with an in-memory exporter gets three messages: a storage request whose
       producer sent a W3C traceparent attribute, one whose producer sent an X-Ray
       AWSTraceHeader, and a body without operation (rejected).
    2. Each delivery is one root CONSUMER span `process <queue>` with the messaging
       attributes, linked (not parented) to its producer's context, request id, outcome and
       reason set.
    3. Under the first: the CreateBackendStorage CLIENT span (rpc.*, aws.request_id), the
       `job wait` span (its job id, a COMPLETED job_status event) with the ListBackendJobs
       check inside it, no event for the routine (SQLite) ledger writes, and the PRODUCER span
       `send <results>` whose context is the outcome message's traceparent attribute; the
       event's trace_id is the delivery's trace.
    4. The rejected one's DLQ move is a PRODUCER span whose context the DLQ message carries.
    5. Every log line about the first request carries its trace_id; /metrics in OpenMetrics
       has exemplars with the deliveries' trace ids, the classic text format none.
    6. A request with a sensitive member (CreateBackendAuth's client secret) leaves no trace
       of it in any span."""
    tracing, exporter = memory_tracing()
    traceparent, producer_trace, producer_span = producer_context()
    first = await sqs.send_message(
        QueueUrl=queues.main,
        MessageBody=json.dumps(storage_request("tr-1", "app1", "dev", "s1")),
        MessageAttributes={"traceparent": {"DataType": "String", "StringValue": traceparent}},
    )
    await sqs.send_message(
        QueueUrl=queues.main,
        MessageBody=json.dumps(storage_request("tr-2", "app2", "dev", "s2")),
        MessageSystemAttributes={
            "AWSTraceHeader": {"DataType": "String", "StringValue": XRAY_HEADER}
        },
    )
    await sqs.send_message(QueueUrl=queues.main, MessageBody='{"request_id": "tr-bad"}')
    secret = "s3cr3t-google"  # a sensitive member of CreateBackendAuth (orchestrator.testing)
    auth = auth_request("tr-auth", "app1", "prod", "auth")
    assert secret in json.dumps(auth)
    await sqs.send_message(QueueUrl=queues.main, MessageBody=json.dumps(auth))
    processors = [structlog.contextvars.merge_contextvars, logs.add_trace_ids]
    with capture_logs(processors=processors) as lines:
        async with running_worker(queues.settings(), tracing) as (_, started):
            outcomes = await drain(sqs, queues.results, 4, attributes=True)
            dead = await drain(sqs, queues.dlq, 1, attributes=True)
            async with aiohttp.ClientSession() as http:
                url = f"http://127.0.0.1:{started.metrics_port}/metrics"
                accept = {"Accept": "application/openmetrics-text; version=1.0.0"}
                async with http.get(url, headers=accept) as response:
                    openmetrics = (response.headers["Content-Type"], await response.text())
                async with http.get(url) as response:
                    classic = (response.headers["Content-Type"], await response.text())
    spans = exporter.get_finished_spans()
    by_request = {json.loads(m["Body"])["request_id"]: m for m in outcomes}

    # 2. one root CONSUMER span per delivery, linked to the producer
    consumer = consumer_of(spans, "tr-1")
    trace_id, consumer_id, parent = hex_ids(consumer)
    assert parent == "" and consumer.name == f"process {queue_name(queues.main)}"
    assert dict(consumer.attributes or {}) == {
        "messaging.system": "aws_sqs",
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.destination.name": queue_name(queues.main),
        "messaging.message.id": first["MessageId"],
        "orchestrator.receive_count": 1,
        "orchestrator.request_id": "tr-1",
        "orchestrator.outcome": "SUCCEEDED",
        "orchestrator.reason": "ok",
    }
    assert links_of(consumer) == [(producer_trace, producer_span, "traceparent")]
    assert trace_id != producer_trace  # linked, not parented: a trace of its own
    xray = consumer_of(spans, "tr-2")
    assert links_of(xray) == [(XRAY_TRACE, XRAY_SPAN, "AWSTraceHeader")]

    # 3. the tree under the first delivery
    tree = descendants(spans, consumer)
    call = only(tree, "AmplifyBackend.CreateBackendStorage")
    assert call.kind is trace.SpanKind.CLIENT and hex_ids(call)[2] == consumer_id
    assert {k: (call.attributes or {})[k] for k in ("rpc.system", "rpc.service", "rpc.method")} == {
        "rpc.system": "aws-api",
        "rpc.service": "AmplifyBackend",
        "rpc.method": "CreateBackendStorage",
    }
    assert (call.attributes or {}).get("aws.request_id")
    event = json.loads(by_request["tr-1"]["Body"])
    wait = only(tree, "job wait")
    assert (wait.attributes or {})["orchestrator.job.id"] == event["steps"][0]["job_id"]
    assert (wait.attributes or {})["orchestrator.job.status"] == "COMPLETED"
    assert ("job_status", "COMPLETED") in [
        (e.name, (e.attributes or {}).get("status")) for e in wait.events
    ]
    checks = [s for s in tree if s.name == "AmplifyBackend.ListBackendJobs"]
    assert checks and all(hex_ids(s)[2] == hex_ids(wait)[1] for s in checks)
    # Routine SQLite writes leave nothing; one that a loaded machine made slow is an event.
    slow = [float((e.attributes or {})["duration_s"]) for e in consumer.events]
    assert all(duration >= SLOW_LOCAL_WRITE for duration in slow), consumer.events
    send = only(tree, f"send {queue_name(queues.results)}")
    assert send.kind is trace.SpanKind.PRODUCER and hex_ids(send)[2] == consumer_id
    attributes = by_request["tr-1"]["MessageAttributes"]
    assert sampled_ids(attributes["traceparent"]["StringValue"]) == (trace_id, hex_ids(send)[1])
    assert event["trace_id"] == trace_id

    # 4. the rejected delivery's DLQ move
    rejected = consumer_of(spans, "tr-bad")
    assert (rejected.attributes or {})["orchestrator.outcome"] == "REJECTED"
    move = only(descendants(spans, rejected), f"send {queue_name(queues.dlq)}")
    assert move.kind is trace.SpanKind.PRODUCER
    dlq_attributes = dead[0]["MessageAttributes"]
    assert sampled_ids(dlq_attributes["traceparent"]["StringValue"]) == hex_ids(move)[:2]
    assert (
        dlq_attributes["reason"]["StringValue"]
        == json.loads(by_request["tr-bad"]["Body"])["reason"]
    )

    # 5. logs, exemplars
    about_first = [line for line in lines if line.get("request_id") == "tr-1"]
    assert {"request_started", "job_started", "job_status", "request_finished"} <= {
        line["event"] for line in about_first
    }
    assert {line.get("trace_id") for line in about_first} == {trace_id}, about_first
    assert "application/openmetrics-text" in openmetrics[0]
    exemplars = {
        sample.exemplar.labels["trace_id"]
        for family in text_string_to_metric_families(openmetrics[1])
        if family.name == "orchestrator_request_duration_seconds"
        for sample in family.samples
        if sample.exemplar
    }
    delivered = {hex_ids(consumer_of(spans, r))[0] for r in ("tr-1", "tr-2", "tr-bad", "tr-auth")}
    # A bucket keeps its latest exemplar: some of the four may have been replaced by another.
    assert exemplars and exemplars <= delivered
    assert classic[0].startswith("text/plain") and "trace_id" not in classic[1]

    # 6. no request parameter, let alone a secret, in any span
    assert (consumer_of(spans, "tr-auth").attributes or {})["orchestrator.outcome"] == "SUCCEEDED"
    for span in spans:
        events = [(e.name, dict(e.attributes or {})) for e in span.events]
        text = str((span.name, dict(span.attributes or {}), events, span.status.description))
        assert secret not in text, text


async def test_retries_and_throttles_are_events_of_the_call() -> None:
    """1. Against an emulator allowing 1 call/s (burst 1), two CreateBackendStorage calls back
       to back: the second is throttled, then retried until it succeeds.
    2. Its CLIENT span carries `throttled` and `retry` (reason throttled) events and ends
       without error; the first has none.
    3. A ListBackendJobs the emulator always answers 500 ends RetriesExhausted: its span has a
       retry event per retried attempt, status ERROR and error.type."""
    tracing, exporter = memory_tracing()
    policy = RetryPolicy(30, 0.2, 0.5)
    async with emulated_api(rate=1.0, burst=1) as (emu, client, _):
        limiter = AdaptiveRateLimiter(LimiterSettings(initial_rate=1000.0))
        api = AmplifyApi(client, limiter, policy, Metrics(), tracer=tracing.tracer)
        for name in ("t1", "t2"):
            params = storage_request("x", "app1", "dev", name)["params"]
            await api.call("CreateBackendStorage", params, retry_ambiguous=False)
        emu.configure(rate=None, fault_500_ratio=1.0, fault_operations=["ListBackendJobs"])
        failing = AmplifyApi(
            client, limiter, RetryPolicy(3, 0.01, 0.02), Metrics(), tracer=tracing.tracer
        )
        with pytest.raises(RetriesExhausted):
            await failing.call(
                "ListBackendJobs", {"AppId": "app1", "BackendEnvironmentName": "dev"}
            )
    calls = [
        s for s in exporter.get_finished_spans() if s.name == "AmplifyBackend.CreateBackendStorage"
    ]
    assert len(calls) == 2
    events = [[(e.name, (e.attributes or {}).get("reason")) for e in s.events] for s in calls]
    assert not any(name in {"throttled", "retry"} for name, _ in events[0])
    assert ("throttled", None) in events[1] and ("retry", "throttled") in events[1]
    assert calls[1].status.status_code is trace.StatusCode.UNSET
    listed = only(exporter.get_finished_spans(), "AmplifyBackend.ListBackendJobs")
    retries = [e for e in listed.events if e.name == "retry"]
    assert [(e.attributes or {}).get("reason") for e in retries] == ["server_error", "server_error"]
    assert listed.status.status_code is trace.StatusCode.ERROR
    assert "failed 3 times" in (listed.status.description or "")
    assert (listed.attributes or {}).get("error.type") == "RetriesExhausted"


async def test_off_installs_nothing_and_traces_nothing(
    sqs: Any, queues: Queues, emulator: Any
) -> None:
    """1. No OTEL_* variable (or OTEL_SDK_DISABLED=true, or OTEL_TRACES_EXPORTER=none): off,
       and deciding so imports no SDK module (a fresh interpreter).
    2. A worker run with it: no provider installed (the global one is still the API's proxy),
       spans are non-recording, no log line has a trace_id, the outcome event has neither a
       trace_id nor message attributes."""
    endpoint = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}
    assert not from_environ({}).enabled
    assert not from_environ({**endpoint, "OTEL_SDK_DISABLED": "true"}).enabled
    assert not from_environ({**endpoint, "OTEL_TRACES_EXPORTER": "none"}).enabled
    probe = (
        "import sys, orchestrator.worker, orchestrator.tracing as t;"
        "off = t.from_environ({});"
        "print(off.enabled, any(m.startswith('opentelemetry.sdk') for m in sys.modules))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    result = await anyio.run_process([sys.executable, "-c", probe], env=env, check=True)
    assert result.stdout.decode().split() == ["False", "False"]

    off = from_environ({})
    with off.tracer.processing(queues.main, "m", 1, {"traceparent": producer_context()[0]}) as span:
        assert not span.is_recording()
    await sqs.send_message(
        QueueUrl=queues.main,
        MessageBody=json.dumps(storage_request("off-1", "app1", "dev", "s1")),
        MessageAttributes={
            "traceparent": {"DataType": "String", "StringValue": producer_context()[0]}
        },
    )
    processors = [structlog.contextvars.merge_contextvars, logs.add_trace_ids]
    with capture_logs(processors=processors) as lines:
        async with running_worker(queues.settings(), off):
            (message,) = await drain(sqs, queues.results, 1, attributes=True)
    assert not isinstance(trace.get_tracer_provider(), TracerProvider)
    assert "MessageAttributes" not in message
    assert "trace_id" not in json.loads(message["Body"])
    assert [line for line in lines if "trace_id" in line] == []
    assert any(line["event"] == "request_finished" for line in lines)


def test_configuration_from_the_otel_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """1. A protocol other than http/protobuf, or another exporter, stops the worker with a
       one-line ConfigurationError naming the variable.
    2. On: service.name is `orchestrator` unless OTEL_SERVICE_NAME says otherwise; the SDK's
       own variables apply (OTEL_TRACES_SAMPLER=always_off: nothing recorded).
    3. TRACEPARENT in the environment is a context (for a CI job calling `orchestrator send`)."""
    endpoint = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}
    for name in ("OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"):
        with pytest.raises(ConfigurationError) as refused:
            from_environ({**endpoint, name: "grpc"})
        assert name in str(refused.value) and "http/protobuf" in str(refused.value)
        assert "\n" not in str(refused.value)
    with pytest.raises(ConfigurationError, match="OTEL_TRACES_EXPORTER"):
        from_environ({**endpoint, "OTEL_TRACES_EXPORTER": "zipkin"})
    for variable in ("OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_TRACES_SAMPLER"):
        monkeypatch.delenv(variable, raising=False)

    def service_name(environ: dict[str, str]) -> tuple[bool, Any]:
        exporter = InMemorySpanExporter()
        tracing = from_environ({**endpoint, **environ}, exporter=exporter)
        with tracing.tracer.span("probe") as span:
            recording = span.is_recording()
        tracing.shutdown()
        spans = exporter.get_finished_spans()
        return recording, spans[0].resource.attributes["service.name"] if spans else None

    assert service_name({}) == (True, "orchestrator")
    assert service_name({"OTEL_SERVICE_NAME": "orchestrator-eu"}) == (True, "orchestrator-eu")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    assert service_name({}) == (False, None)

    traceparent, trace_id, span_id = producer_context()
    context = trace.get_current_span(environ_context({"TRACEPARENT": traceparent}))
    assert context.get_span_context().trace_id == int(trace_id, 16)
    assert not trace.get_current_span(environ_context({})).get_span_context().is_valid


def test_producer_links_and_outcome_events() -> None:
    """1. A W3C traceparent and an X-Ray header are each a link; the same context in both is
       linked once; malformed values are none.
    2. The outcome event names its trace only when it has one, and its FIFO deduplication id
       ignores the trace id (a re-sent outcome is dropped whichever delivery re-sends it)."""
    traceparent, trace_id, span_id = producer_context()
    both = producer_links({"traceparent": traceparent, "AWSTraceHeader": XRAY_HEADER})
    sources = [(k.attributes or {})["orchestrator.link.source"] for k in both]
    assert [format(k.context.trace_id, "032x") for k in both] == [trace_id, XRAY_TRACE]
    assert sources == ["traceparent", "AWSTraceHeader"]
    same = f"Root=1-{trace_id[:8]}-{trace_id[8:]};Parent={span_id};Sampled=1"
    assert len(producer_links({"traceparent": traceparent, "AWSTraceHeader": same})) == 1
    assert producer_links({"traceparent": "00-zz-1-01", "AWSTraceHeader": "Root=nonsense"}) == []
    assert producer_links({}) == []

    outcome = RequestOutcome("r-1", Outcome.SUCCEEDED, message_id="m")
    assert "trace_id" not in outcome.to_event()
    plain = outcome.dedup_id()
    outcome.trace_id = trace_id
    assert outcome.to_event()["trace_id"] == trace_id and outcome.dedup_id() == plain
    assert RequestOutcome.from_json(outcome.to_json()).trace_id == trace_id
    assert NO_TRACER.inject({"reason": "x"}) == {"reason": "x"}


async def test_send_injects_the_current_context(sqs: Any, queues: Queues) -> None:
    """1. `orchestrator send`'s sender inside a span: each message carries that span's
    traceparent attribute. 2. With no span current: no message attributes."""
    tracing, _ = memory_tracing()
    bodies = [json.dumps(storage_request(f"p-{i}", "app1", "dev", f"s{i}")) for i in range(2)]
    with tracing.tracer.span("ci deploy") as span:
        await send_bodies(queues.main, bodies)
        expected = f"00-{format(span.get_span_context().trace_id, '032x')}-"
    await send_bodies(queues.main, [json.dumps(storage_request("p-2", "app1", "dev", "s2"))])
    received = await drain(sqs, queues.main, 3, attributes=True)
    by_id = {json.loads(m["Body"])["request_id"]: m for m in received}
    for request_id in ("p-0", "p-1"):
        value = by_id[request_id]["MessageAttributes"]["traceparent"]["StringValue"]
        assert value.startswith(expected)
    assert "MessageAttributes" not in by_id["p-2"]


async def _ledger_writes(
    url: str, slow: float | None = None
) -> tuple[list[ReadableSpan], ReadableSpan]:
    """begin, save, put_tag, then a get, a peek and a lease, inside a request's span
    (``slow``: the SQLite write duration worth an event, else the worker's)."""
    from orchestrator.ledger import TracedLedger, open_ledger, traced

    tracing, exporter = memory_tracing()
    async with open_ledger(url) as inner:
        assert traced(inner, NO_TRACER, url) is inner  # off: the ledger itself, no wrapper
        ledger = traced(inner, tracing.tracer, url)
        if slow is not None:
            ledger = TracedLedger(inner, tracing.tracer, url, slow=slow)
        with tracing.tracer.span("process changes"):
            record = await ledger.begin("l-1", ["CreateBackendStorage"])
            await ledger.save(record)
            await ledger.put_tag("job:j-1", "l-1#0", only_new=True)
            assert await ledger.get("l-1") is not None and await ledger.peek("l-1") is not None
            assert await ledger.acquire_lease("request:l-1", "me", 30)
    spans = list(exporter.get_finished_spans())
    return spans, only(spans, "process changes")


WRITES = ["ledger begin", "ledger save", "ledger put_tag"]


async def test_ledger_writes_are_spans_on_dynamodb(ledger_table: str) -> None:
    """On a DynamoDB ledger (moto), each progress write inside a request's span is a CLIENT
    span `ledger <write>` (db.system.name aws.dynamodb) under it; reads and leases are not."""
    spans, parent = await _ledger_writes(ledger_table)
    children = [s for s in spans if s is not parent]
    assert [s.name for s in children] == WRITES
    assert all(s.kind is trace.SpanKind.CLIENT for s in children)
    assert all(hex_ids(s)[2] == hex_ids(parent)[1] for s in children)
    assert {(s.attributes or {}).get("db.system.name") for s in children} == {"aws.dynamodb"}
    assert not parent.events


async def test_slow_ledger_writes_are_events_on_sqlite() -> None:
    """On SQLite (a local write far cheaper than a span), a progress write slower than the
    threshold is an event of the request's span with its duration (a threshold of 0: every
    write); a routine write, a read or a lease leaves nothing."""
    spans, parent = await _ledger_writes("sqlite:///:memory:", slow=0.0)
    assert [s.name for s in spans] == ["process changes"]
    assert [e.name for e in parent.events] == WRITES
    assert all(float((e.attributes or {})["duration_s"]) >= 0 for e in parent.events)
    spans, parent = await _ledger_writes("sqlite:///:memory:", slow=60.0)
    assert [s.name for s in spans] == ["process changes"] and not parent.events


def _consumers(spans: list[ReceivedSpan], queue: str) -> list[ReceivedSpan]:
    return [s for s in spans if s.kind == "CONSUMER" and s.name == f"process {queue_name(queue)}"]


async def test_orchestrator_run_exports_to_an_otlp_receiver(
    sqs: Any, queues: Queues, emulator: Any, tmp_path: Path
) -> None:
    """1. A real OTLP/HTTP receiver on loopback; `orchestrator run` as a process with
       OTEL_EXPORTER_OTLP_ENDPOINT pointing at it and a batch delay far beyond the test
       (OTEL_BSP_SCHEDULE_DELAY), against moto's SQS and the emulator.
    2. A request sent with a producer's traceparent: its outcome event carries a traceparent
       attribute and the trace_id; no span has been exported yet (batched).
    3. SIGTERM: the worker exits 0 and has flushed its spans on the way out: a CONSUMER span
       of service `orchestrator` linked to the producer's trace, the CreateBackendStorage and
       ListBackendJobs CLIENT spans and the PRODUCER span in its trace, the outcome's
       traceparent naming that PRODUCER span; the worker's log lines carry the trace id."""
    traceparent, producer_trace, producer_span = producer_context()
    await sqs.send_message(
        QueueUrl=queues.main,
        MessageBody=json.dumps(storage_request("e2e-1", "app1", "dev", "s1")),
        MessageAttributes={"traceparent": {"DataType": "String", "StringValue": traceparent}},
    )
    settings = {
        **FAST,
        "queue_url": queues.main,
        "results_queue_url": queues.results,
        "ledger": f"sqlite:///{tmp_path / 'ledger.db'}",
    }
    env = processes.worker_environment(settings, amplify_url=emulator.url, without=["OTEL_"])
    env["OTEL_BSP_SCHEDULE_DELAY"] = "600000"
    async with otlp_receiver() as receiver:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.endpoint
        async with processes.WorkerProcesses(env, tmp_path / "worker.log") as workers:
            process = await workers.start()
            (outcome,) = await drain(sqs, queues.results, 1, deadline=60, attributes=True)
            exported_before_stop = list(receiver.spans)
            code, _ = await workers.terminate(process, deadline=30)
        await receiver.wait_for(lambda spans: bool(_consumers(spans, queues.main)), deadline=5)
    assert code == 0, workers.log()
    assert exported_before_stop == []
    (consumer,) = _consumers(receiver.spans, queues.main)
    assert consumer.resource["service.name"] == "orchestrator"
    assert consumer.parent_span_id == ""
    assert [(k.trace_id, k.span_id) for k in consumer.links] == [(producer_trace, producer_span)]
    in_trace = [s for s in receiver.spans if s.trace_id == consumer.trace_id]
    names = {s.name: s for s in in_trace}
    assert names["AmplifyBackend.CreateBackendStorage"].kind == "CLIENT"
    assert names["AmplifyBackend.ListBackendJobs"].kind == "CLIENT"
    send = names[f"send {queue_name(queues.results)}"]
    assert send.kind == "PRODUCER" and send.parent_span_id == consumer.span_id
    attribute = outcome["MessageAttributes"]["traceparent"]["StringValue"]
    assert sampled_ids(attribute) == (consumer.trace_id, send.span_id)
    assert json.loads(outcome["Body"])["trace_id"] == consumer.trace_id
    lines = [json.loads(line) for line in workers.log().splitlines() if line.startswith("{")]
    started = next(line for line in lines if line["event"] == "worker_started")
    assert started["tracing"] is True
    about = [line for line in lines if line.get("request_id") == "e2e-1"]
    assert about and {line.get("trace_id") for line in about} == {consumer.trace_id}
