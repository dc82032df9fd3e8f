"""The wire: signatures, validation, unknown apps/environments, error and response shapes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import botocore
import pytest

from orchestrator import servicemodel
from orchestrator.emulator import EmulatorHandle, EmulatorThread, run_emulator
from tests.emulator.support import SIGNED, auth_params, config
from tests.emulator.world import APP, ENV, params_for

APP_OPERATIONS = sorted(
    op
    for op in servicemodel.service_model().operation_names
    if "{appId}" in servicemodel.operation_model(op).http["requestUri"]
)


@pytest.fixture
async def http(aemu: EmulatorHandle) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=aemu.url) as session:
        yield session


async def fetch(
    http: aiohttp.ClientSession, method: str, path: str, **kwargs: Any
) -> tuple[int, dict[str, str], Any]:
    async with http.request(method, path, **kwargs) as response:
        body = await response.read()
        return response.status, dict(response.headers), json.loads(body) if body else None


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "MissingAuthenticationTokenException"),
        ({**SIGNED, "Authorization": "Bearer abc"}, "IncompleteSignatureException"),
        (
            {**SIGNED, "Authorization": SIGNED["Authorization"][:-10]},
            "IncompleteSignatureException",
        ),
        ({"Authorization": SIGNED["Authorization"]}, "IncompleteSignatureException"),
    ],
)
async def test_unsigned_requests_are_refused(
    aemu: EmulatorHandle, http: aiohttp.ClientSession, headers: dict[str, str], code: str
) -> None:
    body = json.dumps({"backendEnvironmentName": ENV, "resourceName": "r", "resourceConfig": {}})
    status, got, document = await fetch(
        http, "POST", f"/backend/{APP}/auth", data=body, headers=headers
    )
    assert status == 403
    assert got["x-amzn-ErrorType"] == code
    assert document["message"]
    assert aemu.stats()["unsigned"] == 1
    assert aemu.jobs() == []


def test_boto3_unsigned_client_is_refused(emu: EmulatorThread, make_client: Any) -> None:
    client = make_client(emu, signature_version=botocore.UNSIGNED)
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        client.get_backend(AppId=APP)
    assert caught.value.response["Error"]["Code"] == "MissingAuthenticationTokenException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


async def test_signature_can_be_optional() -> None:
    async with run_emulator(config(require_signature=False)) as emu:
        async with aiohttp.ClientSession(base_url=emu.url) as http:
            status, _, document = await fetch(http, "POST", f"/backend/{APP}/details")
    assert status == 200 and document["appId"] == APP


async def test_wire_names_in_responses_and_errors(
    aemu: EmulatorHandle, http: aiohttp.ClientSession
) -> None:
    body = {
        "backendEnvironmentName": ENV,
        "resourceName": "r1",
        "resourceConfig": {
            "authResources": "USER_POOL_ONLY",
            "service": "COGNITO",
            "userPoolConfigs": {
                "signInMethod": "EMAIL",
                "userPoolName": "pool",
                "requiredSignUpAttributes": ["EMAIL"],
            },
        },
    }
    status, _, created = await fetch(
        http, "POST", f"/backend/{APP}/auth", json=body, headers=SIGNED
    )
    assert status == 200
    assert set(created) == {"appId", "backendEnvironmentName", "jobId", "operation", "status"}
    path = f"/backend/{APP}/job/{ENV}/{created['jobId']}"
    status, _, job = await fetch(http, "GET", path, headers=SIGNED)
    assert {"jobId", "createTime", "updateTime", "status"} <= set(job)
    status, _, auth = await fetch(
        http,
        "POST",
        f"/backend/{APP}/auth/{ENV}/details",
        json={"resourceName": "r1"},
        headers=SIGNED,
    )
    assert auth["resourceConfig"] == body["resourceConfig"]  # nested wire names round-trip
    status, headers, missing = await fetch(http, "POST", "/backend/nope/details", headers=SIGNED)
    assert (status, headers["x-amzn-ErrorType"]) == (404, "NotFoundException")
    assert missing == {"message": "app 'nope' not found", "resourceType": "app"}
    aemu.configure(rate=0.5, burst=1)
    await fetch(http, "POST", f"/backend/{APP}/details", headers=SIGNED)
    status, headers, limited = await fetch(http, "POST", f"/backend/{APP}/details", headers=SIGNED)
    assert (status, headers["x-amzn-ErrorType"]) == (429, "TooManyRequestsException")
    assert limited["limitType"] == "global" and limited["message"]


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]"])
async def test_unreadable_bodies_are_bad_requests(
    aemu: EmulatorHandle, http: aiohttp.ClientSession, body: bytes
) -> None:
    status, headers, document = await fetch(
        http, "POST", f"/backend/{APP}/auth", data=body, headers=SIGNED
    )
    assert (status, headers["x-amzn-ErrorType"]) == (400, "BadRequestException")
    assert document["message"]
    assert aemu.stats()["bad_requests"] == 1


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        pytest.param(lambda p: p.pop("ResourceConfig"), "ResourceConfig", id="missing"),
        pytest.param(lambda p: p.update(ResourceName=123), "ResourceName", id="wrong-type"),
        pytest.param(
            lambda p: p["ResourceConfig"].update(AuthResources=["not", "a", "string"]),
            "AuthResources",
            id="wrong-nested-type",
        ),
    ],
)
def test_invalid_parameters_are_bad_requests(
    emu: EmulatorThread, make_client: Any, change: Any, problem: str
) -> None:
    client = make_client(emu, parameter_validation=False)
    params = auth_params("r")
    change(params)
    with pytest.raises(client.exceptions.BadRequestException, match=problem):
        client.create_backend_auth(**params)
    assert emu.jobs() == []


@pytest.mark.parametrize("operation", [op for op in APP_OPERATIONS if op != "CreateBackend"])
def test_unknown_app_is_not_found(operation: str, emu: EmulatorThread, client: Any) -> None:
    params = params_for(operation, {"JobId": "job", "SessionId": "session"})
    params["AppId"] = "no-such-app"
    with pytest.raises(client.exceptions.NotFoundException) as caught:
        getattr(client, servicemodel.method_name(operation))(**params)
    assert caught.value.response["ResourceType"] == "app"
    assert emu.stats()["not_found"] == 1


def test_unknown_environment_is_not_found_unless_auto_create(
    emu: EmulatorThread, client: Any
) -> None:
    with pytest.raises(client.exceptions.NotFoundException) as caught:
        client.create_backend_auth(**auth_params("r", env="qa"))
    assert caught.value.response["ResourceType"] == "environment"
    with pytest.raises(client.exceptions.NotFoundException):
        client.create_backend_auth(**auth_params("r", app="new-app"))
    emu.configure(auto_create=True)
    client.create_backend_auth(**auth_params("r", env="qa"))
    client.create_backend_auth(**auth_params("r", app="new-app"))
    assert "qa" in client.get_backend(AppId=APP)["BackendEnvironmentList"]
    assert client.get_backend(AppId="new-app")["BackendEnvironmentList"] == [ENV]


def test_labels_are_percent_decoded(client: Any) -> None:
    created = client.create_backend(AppId=APP, AppName=APP, BackendEnvironmentName="feature x")
    job = client.get_backend_job(
        AppId=APP, BackendEnvironmentName="feature x", JobId=created["JobId"]
    )
    assert job["BackendEnvironmentName"] == "feature x"
    assert "feature x" in client.get_backend(AppId=APP)["BackendEnvironmentList"]
