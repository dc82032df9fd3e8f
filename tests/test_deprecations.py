"""Deprecated members, derived from botocore's model: found, named with their replacement,
warned about in the outcome event and the metric, or rejected on request."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from orchestrator import deprecations, servicemodel
from orchestrator.errors import RequestRejected
from orchestrator.messages import parse_change_request
from orchestrator.testing import Queues, auth_request, drain, running_worker, send

OLD = "ResourceConfig.UserPoolConfigs.ForgotPassword"
NEW = "ResourceConfig.UserPoolConfigs.VerificationMessage"
MESSAGE = {
    "DeliveryMethod": "EMAIL",
    "EmailSettings": {"EmailMessage": "Your code is {####}", "EmailSubject": "Code"},
}


def request(request_id: str, *members: str, operation: str = "CreateBackendAuth") -> Any:
    body = auth_request(request_id, "app1", "dev", f"auth-{request_id}")
    body["operation"] = operation
    pool = body["params"]["ResourceConfig"]["UserPoolConfigs"]
    for member in members:
        pool[member] = copy.deepcopy(MESSAGE)
    if operation == "UpdateBackendAuth":
        pool.pop("RequiredSignUpAttributes"), pool.pop("SignInMethod"), pool.pop("UserPoolName")
        body["params"]["ResourceConfig"].pop("Service")
        body["params"]["ResourceConfig"]["Service"] = "COGNITO"
    return body


def test_the_model_marks_forgot_password_deprecated_and_names_its_replacement() -> None:
    """Derived from the model's documentation and shapes, not a hand list: every mutation is
    scanned, and ForgotPassword of Create/UpdateBackendAuth is all it finds."""
    found = {
        (d.operation, d.member, d.replacement)
        for op in servicemodel.mutations()
        for d in deprecations.catalogue(op)
    }
    assert found == {
        ("CreateBackendAuth", OLD, NEW),
        ("UpdateBackendAuth", OLD, NEW),
    }


@pytest.mark.parametrize("operation", ["CreateBackendAuth", "UpdateBackendAuth"])
@pytest.mark.parametrize(
    ("members", "warned"),
    [
        (("ForgotPassword",), True),
        (("VerificationMessage",), False),
        (("ForgotPassword", "VerificationMessage"), True),
    ],
    ids=["old-only", "new-only", "both"],
)
def test_a_request_using_the_old_member_is_accepted_with_a_warning(
    operation: str, members: tuple[str, ...], warned: bool
) -> None:
    parsed = parse_change_request(json.dumps(request("r1", *members, operation=operation)))
    expected = [
        {
            "step": 0,
            "operation": operation,
            "member": OLD,
            "replacement": NEW,
            "message": f"{operation}: {OLD} is deprecated; use {NEW}",
        }
    ]
    assert parsed.warnings() == (expected if warned else [])


def test_reject_mode_rejects_the_old_member_only() -> None:
    with pytest.raises(RequestRejected) as caught:
        parse_change_request(json.dumps(request("r2", "ForgotPassword")), reject_deprecated=True)
    assert caught.value.reason == "deprecated_member"
    assert NEW in str(caught.value) and caught.value.request_id == "r2"
    parsed = parse_change_request(
        json.dumps(request("r3", "VerificationMessage")), reject_deprecated=True
    )
    assert parsed.warnings() == []


async def test_the_outcome_event_and_the_metric_carry_the_warning(
    sqs: Any, queues: Queues, emulator: Any
) -> None:
    await send(
        sqs, queues.main, [request("old", "ForgotPassword"), request("new", "VerificationMessage")]
    )
    async with running_worker(queues.settings()) as (worker, _):
        events = {e["request_id"]: e for e in await drain(sqs, queues.results, 2)}
    assert events["old"]["outcome"] == "SUCCEEDED"
    [warning] = events["old"]["warnings"]
    assert (warning["member"], warning["replacement"]) == (OLD, NEW)
    assert events["new"]["warnings"] == []
    labels = {"operation": "CreateBackendAuth", "member": OLD}
    value = worker.metrics.registry.get_sample_value
    assert value("orchestrator_deprecated_members_total", labels) == 1


def test_a_camel_case_member_is_rejected_naming_the_pascal_case_one() -> None:
    """A producer copying the REST reference's camelCase gets told the boto3 spelling."""
    body = auth_request("camel", "app1", "dev", "auth-c")
    config = body["params"].pop("ResourceConfig")
    config["authResources"] = config.pop("AuthResources")
    body["params"]["resourceConfig"] = config
    with pytest.raises(RequestRejected) as caught:
        parse_change_request(json.dumps(body))
    assert caught.value.reason == "invalid_params"
    message = str(caught.value)
    assert "resourceConfig: did you mean ResourceConfig?" in message
    # Inside an unknown member nothing is checked further; fixed, the next level is named.
    body["params"]["ResourceConfig"] = body["params"].pop("resourceConfig")
    with pytest.raises(RequestRejected) as again:
        parse_change_request(json.dumps(body))
    assert "ResourceConfig.authResources: did you mean AuthResources?" in str(again.value)
