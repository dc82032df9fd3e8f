"""Logs for on-call, asserted on captured events (structlog.testing), and secrets never shown.

Secrets go in every member under a shape botocore's model marks ``sensitive`` (the list is
derived from the model, not written here) and travel every path: success, rejection, an API
error, and retries of faults and throttles. None may appear in a log event, the /metrics
exposition, an outcome event, or a DLQ message's attributes.
"""

from __future__ import annotations

import copy
import io
import json
import uuid
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
import structlog
from structlog.testing import capture_logs

from orchestrator import logs, servicemodel
from orchestrator.emulator import EmulatorConfig
from tests.stack import Queues, auth_request, drain, running_worker, send, storage_request


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    return EmulatorConfig(
        apps={"app1": ["dev", "prod"], "app2": ["dev"]},
        job_duration=(0.05, 0.2),
        fail_pattern="doomed",
        seed=8,
    )


@pytest.fixture
def captured() -> Iterator[list[dict[str, Any]]]:
    """Every log event as a dict, with the contextvars bound by the worker merged in."""
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as events:
        yield events


def sensitive_paths(operation: str) -> list[list[str]]:
    """Paths (member names) to every sensitive shape in the operation's input."""
    found: list[list[str]] = []

    def walk(shape: Any, path: list[str]) -> None:
        if shape.metadata.get("sensitive"):
            found.append(path)
        elif shape.type_name == "structure":
            for name, member in shape.members.items():
                walk(member, [*path, name])

    walk(servicemodel.operation_model(operation).input_shape, [])
    return found


def with_secrets(body: dict[str, Any], tag: str) -> tuple[dict[str, Any], set[str]]:
    """The request with every sensitive structure filled with unique secret strings."""
    body = copy.deepcopy(body)
    operation = servicemodel.resolve_operation(body["operation"])
    assert operation is not None
    secrets: set[str] = set()
    shape = servicemodel.operation_model(operation).input_shape
    paths = sensitive_paths(operation)
    assert len(paths) >= 8  # ForgotPassword/VerificationMessage settings, four providers
    for path in paths:
        parent, member_shape = body["params"], shape
        for name in path[:-1]:
            member_shape = member_shape.members[name]
            parent = parent.setdefault(name, {})
            if "DeliveryMethod" in member_shape.members:
                parent.setdefault("DeliveryMethod", "EMAIL")
        leaf = member_shape.members[path[-1]]
        value = {}
        for name in leaf.members:
            secret = f"S3CRET-{tag}-{name}-{uuid.uuid4().hex[:8]}"
            value[name] = secret
            secrets.add(secret)
        parent[path[-1]] = value
    assert not servicemodel.validate_params(operation, body["params"])
    return body, secrets


def leaks(secrets: set[str], *texts: str) -> list[str]:
    return sorted(s for s in secrets if any(s in text for text in texts))


async def test_secrets_never_appear_on_any_path(
    sqs: Any, queues: Queues, emulator: Any, captured: list[dict[str, Any]]
) -> None:
    """1. Four requests carry secrets in every sensitive member: one succeeds; one is rejected
       (a sensitive member of the wrong type, so botocore's message would quote it); one meets
       NotFoundException (unknown app); one goes through 50% 500-after-effect faults and a
       tight rate limit, so it is retried and reconciled.
    2. No secret in the captured log events, /metrics, the outcome events, the DLQ attributes."""
    ok, s1 = with_secrets(auth_request("sec-ok", "app1", "dev", "auth1"), "ok")
    rejected, s2 = with_secrets(auth_request("sec-rej", "app1", "dev", "auth2"), "rej")
    email = rejected["params"]["ResourceConfig"]["UserPoolConfigs"]["ForgotPassword"]
    wrong = f"S3CRET-rej-wrongtype-{uuid.uuid4().hex[:8]}"
    email["EmailSettings"]["EmailMessage"] = [wrong]
    s2.add(wrong)
    api_error, s3 = with_secrets(auth_request("sec-404", "no-such-app", "dev", "auth3"), "404")
    retried, s4 = with_secrets(auth_request("sec-retry", "app1", "prod", "auth4"), "retry")
    secrets = s1 | s2 | s3 | s4
    emulator.configure(fault_500_ratio=0.5, rate=4.0, burst=1)
    await send(sqs, queues.main, [ok, rejected, api_error, retried])
    settings = queues.settings(initial_rate=20.0, log_level="DEBUG")
    async with running_worker(settings) as (_, started):
        events = await drain(sqs, queues.results, 4, deadline=60)
        dead = await drain(sqs, queues.dlq, 1, attributes=True)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{started.metrics_port}/metrics") as response:
                exposition = await response.text()
    outcomes = {e["request_id"]: e["outcome"] for e in events}
    assert outcomes == {
        "sec-ok": "SUCCEEDED",
        "sec-rej": "REJECTED",
        "sec-404": "FAILED",
        "sec-retry": "SUCCEEDED",
    }
    assert emulator.stats()["faults"]["500"] > 0  # the retry path really ran
    assert any(e["event"] in {"call_retry", "ambiguous_failure"} for e in captured)
    rejection = next(e for e in events if e["request_id"] == "sec-rej")
    assert "EmailMessage" in rejection["error"]  # the reason names the member, not its value
    attributes = json.dumps(dead[0]["MessageAttributes"])
    log_text = json.dumps(captured, default=str)
    assert not leaks(secrets, log_text), "in logs"
    assert not leaks(secrets, exposition), "in metrics"
    assert not leaks(secrets, json.dumps(events)), "in outcome events"
    assert not leaks(secrets, attributes), "in DLQ attributes"


async def test_one_canonical_line_per_request_and_one_per_job_change(
    sqs: Any, queues: Queues, emulator: Any, captured: list[dict[str, Any]]
) -> None:
    """1. A two-step request that succeeds and a request whose job FAILS.
    2. Exactly one `request_finished` event each, with the documented fields; `job_status`
       events carry request_id, operation, app_id, environment and job_id."""
    two_steps = {
        "request_id": "log-2",
        "steps": [
            {k: v for k, v in auth_request("x", "app1", "dev", "a1").items() if k != "request_id"},
            {
                k: v
                for k, v in storage_request("x", "app1", "dev", "s1").items()
                if k != "request_id"
            },
        ],
    }
    doomed = storage_request("log-doomed", "app2", "dev", "doomed")
    await send(sqs, queues.main, [two_steps, doomed])
    async with running_worker(queues.settings()):
        await drain(sqs, queues.results, 2)
    finished = [e for e in captured if e["event"] == "request_finished"]
    assert sorted(e["request_id"] for e in finished) == ["log-2", "log-doomed"]
    by_id = {e["request_id"]: e for e in finished}
    for event in finished:
        for field in ("outcome", "reason", "error", "message_id", "job_ids", "steps", "duration_s"):
            assert field in event, field
    assert by_id["log-2"]["outcome"] == "SUCCEEDED" and len(by_id["log-2"]["job_ids"]) == 2
    assert [s["operation"] for s in by_id["log-2"]["steps"]] == [
        "CreateBackendAuth",
        "CreateBackendStorage",
    ]
    assert all(s["attempts"] >= 1 and s["job_id"] for s in by_id["log-2"]["steps"])
    assert by_id["log-doomed"]["outcome"] == "FAILED"
    assert by_id["log-doomed"]["log_level"] == "warning"
    changes = [e for e in captured if e["event"] == "job_status"]
    assert {e["request_id"] for e in changes} == {"log-2", "log-doomed"}
    for event in changes:
        for field in ("operation", "app_id", "environment", "job_id", "status"):
            assert event.get(field), (field, event)
    assert {"COMPLETED", "FAILED"} <= {e["status"] for e in changes}


def test_json_off_a_tty_and_the_level_filter() -> None:
    """JSON lines when the stream is not a TTY; DEBUG hidden at INFO; ISO UTC timestamps."""
    stream = io.StringIO()
    try:
        logs.configure("INFO", stream=stream, cache=False)
        log = structlog.get_logger().bind(logger="test")
        log.debug("hidden")
        log.info("shown", request_id="r-1")
        lines = [json.loads(line) for line in stream.getvalue().splitlines()]
        assert [line["event"] for line in lines] == ["shown"]
        assert lines[0]["level"] == "info" and lines[0]["request_id"] == "r-1"
        assert lines[0]["timestamp"].endswith("Z") and lines[0]["logger"] == "test"
        console = io.StringIO()
        logs.configure("DEBUG", stream=console, json=False, cache=False)
        structlog.get_logger().debug("now_shown")
        assert "now_shown" in console.getvalue() and not console.getvalue().startswith("{")
    finally:
        structlog.reset_defaults()
