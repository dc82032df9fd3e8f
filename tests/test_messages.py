"""The change-request contract: parsing, validation by botocore's model, secrets masked."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from hypothesis import find, given, settings

from orchestrator import servicemodel
from orchestrator.errors import RequestRejected
from orchestrator.messages import best_effort_request_id, parse_change_request
from orchestrator.testing import auth_request, storage_request
from tests.strategies import MUTATIONS, any_body, model_bodies


def reason_of(body: Any, **kwargs: Any) -> str:
    with pytest.raises(RequestRejected) as caught:
        parse_change_request(body if isinstance(body, str) else json.dumps(body), **kwargs)
    return caught.value.reason


def test_accepts_api_and_boto3_spellings() -> None:
    request = parse_change_request(json.dumps(storage_request("r1", "a", "dev", "s")))
    [step] = request.steps
    assert step.operation == "CreateBackendStorage" and step.env_key == ("a", "dev")
    again = parse_change_request(
        json.dumps({**storage_request("r1", "a", "dev", "s"), "operation": "CreateBackendStorage"})
    )
    assert again.steps == request.steps


def test_multi_step_and_reply_to() -> None:
    first = storage_request("x", "a", "dev", "s")
    body = {
        "request_id": "m.1:x-y",
        "reply_to": "https://sqs.us-east-1.amazonaws.com/1/r",
        "steps": [{"operation": first["operation"], "params": first["params"]}] * 2,
    }
    request = parse_change_request(json.dumps(body))
    assert len(request.steps) == 2 and request.reply_to.endswith("/r")  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("[1, 2]", "invalid_request"),
        ("{", "invalid_json"),
        (
            {"request_id": "has space", "operation": "CreateBackend", "params": {}},
            "invalid_request_id",
        ),
        (
            {"request_id": "x" * 129, "operation": "CreateBackend", "params": {}},
            "invalid_request_id",
        ),
        (
            {"request_id": "r", "operation": "CreateBackend", "params": {}, "extra": 1},
            "invalid_request",
        ),
        (
            {"request_id": "r", "operation": "CreateBackend", "params": {}, "steps": []},
            "invalid_request",
        ),
        ({"request_id": "r", "steps": []}, "invalid_request"),
        ({"request_id": "r", "operation": "list_backend_jobs", "params": {}}, "not_a_mutation"),
        ({"request_id": "r", "operation": "UpdateBackendJob", "params": {}}, "not_a_mutation"),
        ({"request_id": "r", "operation": 5, "params": {}}, "unknown_operation"),
        ({"request_id": "r", "operation": "CreateBackend", "params": []}, "invalid_params"),
        (
            {"request_id": "r", "operation": "CreateBackend", "params": {"AppId": "a"}},
            "invalid_params",
        ),
        (
            {"request_id": "r", "operation": "remove_all_backends", "params": {"AppId": "a"}},
            "destructive_not_allowed",
        ),
        (
            {
                "request_id": "r",
                "operation": "CreateBackendConfig",
                "params": {"AppId": "a"},
                "reply_to": "x",
            },
            "invalid_request",
        ),
    ],
)
def test_rejections_have_stable_reasons(body: Any, reason: str) -> None:
    assert reason_of(body) == reason


def test_destructive_operations_need_the_allow_list() -> None:
    body = {
        "request_id": "r",
        "operation": "DeleteBackend",
        "params": {"AppId": "a", "BackendEnvironmentName": "dev"},
    }
    with pytest.raises(RequestRejected, match="ORCHESTRATOR_ALLOW_DESTRUCTIVE"):
        parse_change_request(json.dumps(body))
    assert parse_change_request(json.dumps(body), allow_destructive=frozenset({"DeleteBackend"}))


def test_size_and_depth_are_bounded_before_validation() -> None:
    assert reason_of("x" * (256 * 1024 + 1)) == "too_large"
    deep: Any = "leaf"
    for _ in range(40):
        deep = {"k": deep}
    assert (
        reason_of({"request_id": "r", "operation": "CreateBackend", "params": deep})
        == "invalid_request"
    )


def test_sensitive_members_are_redacted_and_scrubbed() -> None:
    request = parse_change_request(json.dumps(auth_request("r", "a", "dev", "auth")))
    [step] = request.steps
    safe = json.dumps(servicemodel.redact_params(step.operation, step.params))
    assert "s3cr3t-google" not in safe and "google-client" not in safe
    assert servicemodel.REDACTED in safe
    assert "s3cr3t-google" in request.secrets
    assert request.scrub("boom: s3cr3t-google") == "boom: ***"


def test_best_effort_request_id() -> None:
    assert best_effort_request_id('{"request_id": "ok-1", "operation": 1}') == "ok-1"
    assert best_effort_request_id('{"request_id": "no spaces allowed"}') is None
    assert best_effort_request_id("not json") is None


#: `make fuzz` raises this to 10,000 (ORCHESTRATOR_FUZZ_EXAMPLES); `make test` runs fewer.
FUZZ_EXAMPLES = int(os.environ.get("ORCHESTRATOR_FUZZ_EXAMPLES", "1500"))


@settings(max_examples=FUZZ_EXAMPLES, deadline=None)
@given(body=model_bodies())
def test_model_shaped_params_are_accepted_or_rejected_as_invalid_params(body: str) -> None:
    """Params built from botocore's input shapes, sometimes corrupted: botocore's validator
    decides, and a rejection is always `invalid_params` (or a bad request_id), never a crash."""
    try:
        request = parse_change_request(body, allow_destructive=frozenset(MUTATIONS))
    except RequestRejected as exc:
        assert exc.reason in {"invalid_params", "invalid_request_id", "invalid_request"}, exc
        assert str(exc)
    else:
        for step in request.steps:
            assert not servicemodel.validate_params(step.operation, step.params)


@settings(max_examples=FUZZ_EXAMPLES, deadline=None)
@given(body=any_body)
def test_any_body_parses_or_is_rejected_with_a_reason(body: str | bytes) -> None:
    """Whatever arrives, the parser returns a request or raises RequestRejected, never crashes."""
    try:
        parse_change_request(body)
    except RequestRejected as exc:
        assert exc.reason and str(exc)


def test_the_model_strategy_reaches_the_accepting_path() -> None:
    """Guards the fuzz test above: generated bodies are not all rejected."""

    def accepted(body: str) -> bool:
        try:
            parse_change_request(body, allow_destructive=frozenset(MUTATIONS))
        except RequestRejected:
            return False
        return True

    body = find(model_bodies(), accepted, settings=settings(max_examples=2000, database=None))
    assert parse_change_request(body, allow_destructive=frozenset(MUTATIONS)).steps
