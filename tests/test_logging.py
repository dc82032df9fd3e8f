"""Logs for on-call, asserted on captured events (structlog.testing), and secrets never shown.

Secrets go in every member under a shape botocore's model marks ``sensitive`` (the list is
derived from the model, not written here) and travel every path: success, rejection, an API
error, and retries of faults and throttles. None may appear in a log event, the /metrics
exposition, an outcome event, or a DLQ message's attributes.
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator
from typing import Any

import aiohttp
import anyio
import pytest
import structlog
from structlog.testing import capture_logs

from orchestrator import consumer, logs, servicemodel
from orchestrator.emulator import EmulatorConfig
from orchestrator.settings import load as load_settings
from orchestrator.testing import (
    Queues,
    amplify_client,
    auth_request,
    drain,
    running_worker,
    send,
    storage_request,
)


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    return EmulatorConfig(
        apps={"app1": ["dev", "prod"], "app2": ["dev"], "busy": ["dev"]},
        job_duration=(0.05, 0.2),
        fail_pattern="doomed",
        seed=8,
    )


@pytest.fixture
def captured() -> Iterator[list[dict[str, Any]]]:
    """Every log event as a dict, with the contextvars bound by the worker merged in."""
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as events:
        yield events


# --- secrets, derived from botocore's model ---------------------------------------------------


def sensitive_members() -> dict[str, list[list[str]]]:
    """For every mutation, the member paths (from its input) to each ``sensitive`` shape,
    walking structures, lists ("[]") and maps ("{}")."""
    found: dict[str, list[list[str]]] = {}

    def walk(shape: Any, path: list[str], into: list[list[str]]) -> None:
        if shape.metadata.get("sensitive"):
            into.append(path)
        elif shape.type_name == "structure":
            for name, member in shape.members.items():
                walk(member, [*path, name], into)
        elif shape.type_name == "list":
            walk(shape.member, [*path, "[]"], into)
        elif shape.type_name == "map":
            walk(shape.value, [*path, "{}"], into)

    for operation in servicemodel.mutations():
        paths: list[list[str]] = []
        shape = servicemodel.operation_model(operation).input_shape
        if shape is not None:
            walk(shape, [], paths)
        if paths:
            found[operation] = paths
    return found


SENSITIVE = sensitive_members()


def test_the_model_marks_secrets_in_both_auth_operations() -> None:
    """The derivation finds what the model marks (so the tests below cover something), and
    every path runs through structures only (so ``with_secrets`` can build it)."""
    assert set(SENSITIVE) == {"CreateBackendAuth", "UpdateBackendAuth"}
    for operation, paths in SENSITIVE.items():
        assert len(paths) == 8, operation  # 2 email, 2 SMS settings, four OAuth providers
        assert not any(part in {"[]", "{}"} for path in paths for part in path), operation


def placeholder(shape: Any) -> Any:
    """A valid value for a shape: its required members, first enum value, and so on."""
    if shape.type_name == "structure":
        return {name: placeholder(shape.members[name]) for name in shape.required_members}
    if shape.type_name == "list":
        return [placeholder(shape.member)]
    if shape.type_name == "map":
        return {}
    if shape.type_name == "boolean":
        return True
    if shape.type_name in {"integer", "long", "double", "float"}:
        return 1
    return shape.enum[0] if shape.enum else "placeholder-value"


def step_with_secrets(
    operation: str, app: str, env: str, resource: str, tag: str
) -> tuple[dict[str, Any], set[str]]:
    """A valid step of ``operation`` (required members from the model) with a unique secret
    string in every member of every sensitive shape of its input."""
    shape = servicemodel.operation_model(operation).input_shape
    params = placeholder(shape)
    params.update(AppId=app, BackendEnvironmentName=env, ResourceName=resource)
    secrets: set[str] = set()
    for path in SENSITIVE[operation]:
        parent, parent_shape = params, shape
        for name in path[:-1]:
            parent_shape = parent_shape.members[name]
            parent = parent.setdefault(name, placeholder(parent_shape))
        leaf = parent_shape.members[path[-1]]
        names = list(leaf.members) if leaf.type_name == "structure" else [None]
        value: dict[str, str] = {}
        for name in names:
            secret = f"S3CRET-{tag}-{operation}-{name}-{uuid.uuid4().hex[:8]}"
            secrets.add(secret)
            value[str(name)] = secret
        parent[path[-1]] = value if leaf.type_name == "structure" else value["None"]
    assert not servicemodel.validate_params(operation, params)
    return {"operation": operation, "params": params}, secrets


def auth_steps(
    request_id: str, app: str, env: str, resource: str, *operations: str
) -> tuple[dict[str, Any], set[str]]:
    """A change request of the given auth operations on one resource, secrets everywhere."""
    steps, secrets = [], set()
    for operation in operations:
        step, found = step_with_secrets(operation, app, env, resource, request_id)
        steps.append(step)
        secrets |= found
    return {"request_id": request_id, "steps": steps}, secrets


def leaks(secrets: set[str], *texts: str) -> list[str]:
    return sorted(s for s in secrets if any(s in text for text in texts))


CREATE, UPDATE = "CreateBackendAuth", "UpdateBackendAuth"


def requests_on_every_path() -> tuple[list[dict[str, Any]], set[str], dict[str, str]]:
    """(bodies, their secrets, expected outcome by request id) for every path but retries."""
    bodies: list[dict[str, Any]] = []
    secrets: set[str] = set()

    def add(body: dict[str, Any], found: set[str]) -> dict[str, Any]:
        bodies.append(body)
        secrets.update(found)
        return body

    # Success: create the resource, then update it; both steps carry every secret.
    add(*auth_steps("sec-ok", "app1", "dev", "auth1", CREATE, UPDATE))
    # Rejected for an invalid member elsewhere (a non-sensitive one) in the same request.
    elsewhere = add(*auth_steps("sec-rej-other", "app1", "dev", "auth2", CREATE, UPDATE))
    elsewhere["steps"][1]["params"]["ResourceConfig"]["Service"] = 12345
    # Rejected for wrongly typed sensitive members: botocore's report quotes their values.
    wrong, found = auth_steps("sec-rej-type", "app1", "dev", "auth3", CREATE, UPDATE)
    wrongly_typed = (("EmailSettings", "EmailMessage"), ("SmsSettings", "SmsMessage"))
    for step, (settings, member) in zip(wrong["steps"], wrongly_typed, strict=True):
        forgot = step["params"]["ResourceConfig"]["UserPoolConfigs"]["ForgotPassword"]
        secret = f"S3CRET-wrongtype-{member}-{uuid.uuid4().hex[:8]}"
        forgot[settings][member] = [secret]
        found.add(secret)
    add(wrong, found)
    # NotFoundException: an unknown app; an update of an auth resource that does not exist.
    add(*auth_steps("sec-404-app", "no-such-app", "dev", "auth4", CREATE))
    add(*auth_steps("sec-404-auth", "app1", "prod", "never-created", UPDATE))
    # BadRequestException: another client's job is still running on the environment.
    add(*auth_steps("sec-400", "busy", "dev", "auth5", CREATE))
    # The job itself FAILS (the emulator fails jobs whose request mentions "doomed").
    add(*auth_steps("sec-job-failed", "app2", "dev", "doomed", CREATE))
    expected = {
        "sec-ok": "SUCCEEDED",
        "sec-rej-other": "REJECTED",
        "sec-rej-type": "REJECTED",
        "sec-404-app": "FAILED",
        "sec-404-auth": "FAILED",
        "sec-400": "FAILED",
        "sec-job-failed": "FAILED",
    }
    return bodies, secrets, expected


async def occupy(emulator: Any, app: str, env: str) -> None:
    """Start a long job on app/env from another client, so mutations there get a 400."""
    emulator.configure(job_duration=(120.0, 120.0))
    try:
        async with amplify_client() as client:
            await client.create_backend_storage(
                AppId=app,
                BackendEnvironmentName=env,
                ResourceName="other-client",
                ResourceConfig={"ServiceName": "S3", "Permissions": {"Authenticated": ["READ"]}},
            )
    finally:
        emulator.configure(job_duration=(0.05, 0.2))


async def test_secrets_never_appear_on_any_path(
    sqs: Any, queues: Queues, emulator: Any, captured: list[dict[str, Any]]
) -> None:
    """1. Requests carry a unique secret in every member of every sensitive shape of every
       mutation that has one (CreateBackendAuth, UpdateBackendAuth; derived from the model) and
       travel every path: success; rejection for an invalid member elsewhere, and for wrongly
       typed sensitive members (which botocore's report would quote); NotFoundException (app,
       resource); BadRequestException (a conflicting job); a FAILED job; then, with 50% of
       mutations answered 500 after taking effect, 20% 504 and a 4 calls/s limit, a request
       that is throttled, retried and reconciled.
    2. No secret in any captured log event (DEBUG included), the /metrics exposition, the
       outcome events, or the DLQ messages' attributes. The DLQ body is the original message,
       unchanged (README: rejected messages keep their body), so it does hold the secrets."""
    bodies, secrets, expected = requests_on_every_path()
    await occupy(emulator, "busy", "dev")
    await send(sqs, queues.main, bodies)
    settings = queues.settings(initial_rate=20.0, log_level="DEBUG")
    async with running_worker(settings) as (_, started):
        events = await drain(sqs, queues.results, len(bodies), deadline=60)
        dead = await drain(sqs, queues.dlq, 2, attributes=True)
        retried, found = auth_steps("sec-retry", "app1", "prod", "auth6", CREATE, UPDATE)
        secrets |= found
        expected["sec-retry"] = "SUCCEEDED"
        emulator.configure(
            fault_500_ratio=0.5,
            fault_504_ratio=0.2,
            fault_operations=frozenset({CREATE, UPDATE}),
            rate=4.0,
            burst=1,
        )
        await send(sqs, queues.main, [retried])
        events += await drain(sqs, queues.results, 1, deadline=60)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{started.metrics_port}/metrics") as response:
                exposition = await response.text()
    assert {e["request_id"]: e["outcome"] for e in events} == expected
    reasons = {e["request_id"]: e["reason"] for e in events}
    assert reasons["sec-404-app"] == reasons["sec-404-auth"] == reasons["sec-400"] == "client_error"
    assert reasons["sec-job-failed"] == "job_failed"
    stats = emulator.stats()
    assert stats["bad_requests"] >= 1 and stats["not_found"] >= 2
    assert stats["faults"].get("500", 0) + stats["faults"].get("504", 0) > 0
    assert sum(stats["throttled"].values()) > 0 and 'result="throttled"' in exposition
    retry_lines = {"call_retry", "ambiguous_failure", "reconciled"}
    assert any(
        e["event"] in retry_lines and e.get("request_id") == "sec-retry" for e in captured
    ), "the retry path did not run"
    rejection = next(e for e in events if e["request_id"] == "sec-rej-type")
    assert "EmailMessage" in rejection["error"]  # the reason names the member, not its value
    assert {m["MessageAttributes"]["request_id"]["StringValue"] for m in dead} == {
        "sec-rej-other",
        "sec-rej-type",
    }
    sent = {b["request_id"]: json.dumps(b) for b in bodies}
    for message in dead:
        request_id = message["MessageAttributes"]["request_id"]["StringValue"]
        assert message["Body"] == sent[request_id]  # unchanged: secrets included, by design
    attributes = json.dumps([m["MessageAttributes"] for m in dead])
    log_text = json.dumps(captured, default=str)
    assert len(secrets) > 100
    assert not leaks(secrets, log_text), "in logs"
    assert not leaks(secrets, exposition), "in metrics"
    assert not leaks(secrets, json.dumps(events)), "in outcome events"
    assert not leaks(secrets, attributes), "in DLQ attributes"


# --- the canonical lines ----------------------------------------------------------------------


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
        for field in (
            "outcome",
            "reason",
            "error",
            "message_id",
            "job_ids",
            "steps",
            "api_calls",
            "throttles",
            "duration_s",
        ):
            assert field in event, field
        assert event["log_level"] == ("info" if event["outcome"] == "SUCCEEDED" else "warning")
        # One mutation per step, at least: the tally is this request's own calls.
        assert event["api_calls"] >= len(event["steps"]) and event["throttles"] >= 0
        for step in event["steps"]:
            assert 0 <= step["duration_s"] <= event["duration_s"], step
    assert by_id["log-2"]["outcome"] == "SUCCEEDED" and len(by_id["log-2"]["job_ids"]) == 2
    # Exactly the request's own calls: the tracker's sweeps (other tasks) are not counted.
    assert (by_id["log-2"]["api_calls"], by_id["log-2"]["throttles"]) == (2, 0)
    assert by_id["log-doomed"]["api_calls"] == 1
    assert [s["operation"] for s in by_id["log-2"]["steps"]] == [
        "CreateBackendAuth",
        "CreateBackendStorage",
    ]
    assert all(s["attempts"] >= 1 and s["job_id"] for s in by_id["log-2"]["steps"])
    assert by_id["log-doomed"]["outcome"] == "FAILED"
    changes = [e for e in captured if e["event"] == "job_status"]
    assert {e["request_id"] for e in changes} == {"log-2", "log-doomed"}
    for event in changes:
        for field in ("operation", "app_id", "environment", "job_id", "status"):
            assert event.get(field), (field, event)
    assert {"COMPLETED", "FAILED"} <= {e["status"] for e in changes}


async def test_call_tally_counts_the_request_task_only() -> None:
    """``count_call`` counts into the tally of the task that opened it, not its children's
    (a tracker sweep spawned from a request inherits its context) nor outside any tally."""
    logs.count_call("ok")  # no tally open: ignored
    with logs.counting_calls() as calls:
        logs.count_call("ok")
        logs.count_call("throttled")
        async with anyio.create_task_group() as tg:
            tg.start_soon(_count, "throttled")
        logs.count_call("throttled")
    logs.count_call("ok")
    assert calls == {"ok": 1, "throttled": 2}


async def _count(result: str) -> None:
    logs.count_call(result)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def restore_structlog() -> Iterator[None]:
    yield
    structlog.reset_defaults()


@pytest.mark.usefixtures("restore_structlog")
def test_json_off_a_tty_and_the_level_filter() -> None:
    """JSON lines when the stream is not a TTY; DEBUG hidden at INFO; ISO UTC timestamps; and
    so for module loggers, which exist (imported) before the edge configures logging."""
    log = logs.get_logger("test")
    stream = io.StringIO()
    logs.configure("INFO", stream=stream, cache=True)
    log.debug("hidden")
    log.info("shown", request_id="r-1")
    log.warning("warned")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["event"] for line in lines] == ["shown", "warned"]
    assert lines[0]["level"] == "info" and lines[0]["request_id"] == "r-1"
    assert lines[1]["level"] == "warning"
    assert lines[0]["timestamp"].endswith("Z") and lines[0]["logger"] == "test"
    quiet = io.StringIO()
    logs.configure("warning", stream=quiet, cache=True)
    consumer.log.info("hidden")
    consumer.log.error("failed")
    structlog.get_logger().info("hidden")
    lines = [json.loads(line) for line in quiet.getvalue().splitlines()]
    assert [(line["event"], line["logger"]) for line in lines] == [
        ("failed", "orchestrator.consumer")
    ]


@pytest.mark.usefixtures("restore_structlog")
@pytest.mark.parametrize(
    ("log_format", "terminal", "as_json"),
    [
        ("auto", False, True),
        ("auto", True, False),
        ("json", True, True),
        ("console", False, False),
    ],
)
def test_log_format(log_format: str, terminal: bool, as_json: bool) -> None:
    """ORCHESTRATOR_LOG_FORMAT: auto (JSON unless a terminal), json, console."""
    stream = Terminal() if terminal else io.StringIO()
    logs.configure("DEBUG", stream=stream, cache=False, log_format=log_format)
    structlog.get_logger().debug("now_shown", request_id="r-2")
    text = stream.getvalue()
    assert "now_shown" in text and "r-2" in text
    assert text.startswith("{") is as_json
    if as_json:
        assert json.loads(text)["level"] == "debug"


def test_log_format_setting_and_bad_values() -> None:
    environ = {"ORCHESTRATOR_QUEUE_URL": "q", "ORCHESTRATOR_LOG_FORMAT": "json"}
    assert load_settings(environ=environ).log_format == "json"
    assert load_settings(environ={"ORCHESTRATOR_QUEUE_URL": "q"}).log_format == "auto"
    with pytest.raises(ValueError, match="log format"):
        logs.configure(log_format="xml", cache=False)
