"""Reads return what completed mutations produced (job durations are 0: due at the next call)."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.emulator import EmulatorThread
from tests.emulator.support import auth_params, get_job, terminal, wait_until
from tests.emulator.world import APP, BUCKET, ENV, RESOURCE, params_for

HERE = {"AppId": APP, "BackendEnvironmentName": ENV}


def test_resources_are_created_updated_and_deleted(client: Any, world: dict[str, str]) -> None:
    created = auth_params(RESOURCE["Auth"])
    auth = client.get_backend_auth(**HERE, ResourceName=RESOURCE["Auth"])
    assert auth["ResourceConfig"] == created["ResourceConfig"]
    assert (auth["AppId"], auth["BackendEnvironmentName"]) == (APP, ENV)
    update = {
        "AuthResources": "USER_POOL_ONLY",
        "Service": "COGNITO",
        "UserPoolConfigs": {"Mfa": {"MFAMode": "ON"}},
    }
    client.update_backend_auth(**HERE, ResourceName=RESOURCE["Auth"], ResourceConfig=update)
    updated = client.get_backend_auth(**HERE, ResourceName=RESOURCE["Auth"])["ResourceConfig"]
    assert updated["UserPoolConfigs"]["Mfa"] == {"MFAMode": "ON"}
    assert updated["UserPoolConfigs"]["UserPoolName"] == "x"  # merged, not replaced
    client.delete_backend_auth(**HERE, ResourceName=RESOURCE["Auth"])
    with pytest.raises(client.exceptions.NotFoundException):
        client.get_backend_auth(**HERE, ResourceName=RESOURCE["Auth"])


def test_storage_and_buckets(client: Any, world: dict[str, str]) -> None:
    storage = client.get_backend_storage(**HERE, ResourceName=RESOURCE["Storage"])
    assert storage["ResourceConfig"]["BucketName"] == BUCKET
    assert storage["ResourceConfig"]["Imported"] is False
    client.import_backend_storage(**HERE, ServiceName="S3", BucketName="imported-bucket")
    client.get_backend(AppId=APP)  # the import's job completes
    names = [b["Name"] for b in client.list_s3_buckets()["Buckets"]]
    assert names == sorted([BUCKET, "imported-bucket"])
    imported = client.get_backend_storage(**HERE, ResourceName="imported-bucket")
    assert imported["ResourceConfig"]["Imported"] is True


def test_api_models_follow_the_api(client: Any, world: dict[str, str]) -> None:
    where = {**HERE, "ResourceName": RESOURCE["API"]}
    assert client.get_backend_api(**where)["ResourceName"] == RESOURCE["API"]
    before = client.get_backend_api_models(**where)
    assert before["Status"] == "STALE" and "Models" not in before
    client.generate_backend_api_models(**where)
    generated = client.get_backend_api_models(**where)
    assert generated["Status"] == "LATEST" and "@model" in generated["Models"]
    client.update_backend_api(**where, ResourceConfig={"ApiName": "renamed"})
    assert client.get_backend_api_models(**where)["Status"] == "STALE"
    assert client.get_backend_api(**where)["ResourceConfig"]["ApiName"] == "renamed"


def test_environments_clone_and_delete(client: Any, world: dict[str, str]) -> None:
    client.clone_backend(**HERE, TargetEnvironmentName="copy")
    envs = client.get_backend(AppId=APP)["BackendEnvironmentList"]
    assert "copy" in envs
    copy = {"AppId": APP, "BackendEnvironmentName": "copy"}
    assert client.get_backend_auth(**copy, ResourceName=RESOURCE["Auth"])["ResourceName"]
    deleted = client.delete_backend(**copy)["JobId"]
    assert "copy" not in client.get_backend(AppId=APP)["BackendEnvironmentList"]
    assert get_job(client, deleted, env="copy")["Status"] == "COMPLETED"  # still listable
    with pytest.raises(client.exceptions.NotFoundException):
        client.get_backend(AppId=APP, BackendEnvironmentName="copy")


def test_create_backend_creates_the_app_when_its_job_completes(
    emu: EmulatorThread, client: Any
) -> None:
    emu.configure(job_duration=(0.05, 0.05))
    job_id = client.create_backend(AppId="fresh", AppName="Fresh", BackendEnvironmentName="main")[
        "JobId"
    ]
    with pytest.raises(client.exceptions.NotFoundException):
        client.get_backend(AppId="fresh")
    wait_until(lambda: terminal(client, job_id, env="main", app="fresh"))
    backend = client.get_backend(AppId="fresh", BackendEnvironmentName="main")
    assert backend["AppName"] == "Fresh"
    assert backend["BackendEnvironmentList"] == ["main"]


def test_tokens(client: Any) -> None:
    token = client.create_token(AppId=APP)
    assert len(token["ChallengeCode"]) == 6 and token["Ttl"]
    fetched = client.get_token(AppId=APP, SessionId=token["SessionId"])
    assert fetched["ChallengeCode"] == token["ChallengeCode"]
    assert client.delete_token(AppId=APP, SessionId=token["SessionId"])["IsSuccess"] is True
    assert client.delete_token(AppId=APP, SessionId=token["SessionId"])["IsSuccess"] is False
    with pytest.raises(client.exceptions.NotFoundException):
        client.get_token(AppId=APP, SessionId=token["SessionId"])


def test_backend_config(emu: EmulatorThread, client: Any) -> None:
    login = {"AwsCognitoRegion": "us-east-1", "AwsUserPoolsId": "pool-1"}
    updated = client.update_backend_config(AppId=APP, LoginAuthConfig=login)
    assert updated["LoginAuthConfig"] == login and updated["BackendManagerAppId"] == APP
    job = client.create_backend_config(AppId=APP, BackendManagerAppId="manager")
    wait_until(lambda: terminal(client, job["JobId"], env=job["BackendEnvironmentName"]))
    assert client.remove_backend_config(AppId=APP)["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert emu.stats()["mutations"] == {
        "UpdateBackendConfig": 1,
        "CreateBackendConfig": 1,
        "RemoveBackendConfig": 1,
    }


def test_remove_all_backends(client: Any, world: dict[str, str]) -> None:
    removed = client.remove_all_backends(AppId=APP, CleanAmplifyApp=True)
    assert "BackendEnvironmentName" not in removed  # not in the output shape: filed under _app
    job = wait_until(lambda: terminal(client, removed["JobId"], env="_app"))
    assert job["Operation"] == "RemoveAllBackends"
    with pytest.raises(client.exceptions.NotFoundException):
        client.get_backend(AppId=APP)
    client.create_backend(**params_for("CreateBackend", {}))  # the app can come back
    assert client.get_backend(AppId=APP)["BackendEnvironmentList"] == [ENV]
