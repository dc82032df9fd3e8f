"""ListBackendJobs: the model's paginator across many pages, filters, tokens, page sizes."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.emulator import EmulatorHandle, EmulatorThread
from tests.emulator.support import auth_params, get_job
from tests.emulator.world import APP, ENV, params_for

WHERE = {"AppId": APP, "BackendEnvironmentName": ENV}


def storage_params(name: str) -> dict[str, Any]:
    params = params_for("CreateBackendStorage", {})
    params.update(ResourceName=name)
    return params


def walk(client: Any, **options: Any) -> list[dict[str, Any]]:
    return list(client.get_paginator("list_backend_jobs").paginate(**WHERE, **options))


def test_paginator_walks_120_jobs_across_pages(emu: EmulatorThread, client: Any) -> None:
    created = [client.create_backend_auth(**auth_params(f"r{i}"))["JobId"] for i in range(120)]
    pages = walk(client)
    listed = [job["JobId"] for page in pages for job in page["Jobs"]]
    assert len(pages) == 12  # default page size 10
    assert all(len(page["Jobs"]) == 10 for page in pages)
    assert len(listed) == len(set(listed)) == 120
    assert set(listed) == set(created)
    assert listed == created[::-1]  # newest first, stable across pages
    bigger = walk(client, PaginationConfig={"PageSize": 25})
    assert [len(p["Jobs"]) for p in bigger] == [25, 25, 25, 25, 20]
    assert emu.stats()["calls"]["ListBackendJobs"] == 12 + 5


def test_pages_stay_stable_while_jobs_arrive(client: Any) -> None:
    before = {client.create_backend_auth(**auth_params(f"r{i}"))["JobId"] for i in range(15)}
    first = client.list_backend_jobs(**WHERE, MaxResults=5)
    arrived = client.create_backend_auth(**auth_params("late"))["JobId"]
    seen = [j["JobId"] for j in first["Jobs"]]
    token = first["NextToken"]
    while token:
        page = client.list_backend_jobs(**WHERE, MaxResults=5, NextToken=token)
        seen += [j["JobId"] for j in page["Jobs"]]
        token = page.get("NextToken")
    assert len(seen) == len(set(seen)) == 15
    assert set(seen) == before and arrived not in seen


def test_filters(emu: EmulatorThread, client: Any) -> None:
    emu.configure(fail_pattern="doomed")
    ok = {client.create_backend_auth(**auth_params(f"ok{i}"))["JobId"] for i in range(4)}
    bad = {client.create_backend_auth(**auth_params(f"doomed{i}"))["JobId"] for i in range(3)}
    stored = {client.create_backend_storage(**storage_params(f"s{i}"))["JobId"] for i in range(2)}
    get_job(client, next(iter(ok)))  # one more call: every job is now due

    def ids(**filters: Any) -> set[str]:
        pages = walk(client, PaginationConfig={"PageSize": 2}, **filters)
        return {job["JobId"] for page in pages for job in page["Jobs"]}

    assert ids(Status="FAILED") == bad
    assert ids(Status="COMPLETED") == ok | stored
    assert ids(Operation="CreateBackendStorage") == stored
    assert ids(Operation="create_backend_storage") == stored  # boto3 spelling accepted
    assert ids(Operation="CreateBackendAuth", Status="COMPLETED") == ok
    one = next(iter(bad))
    assert ids(JobId=one) == {one}
    assert ids(Status="IN_PROGRESS") == set()


def test_invalid_tokens_and_page_sizes_are_bad_requests(
    emu: EmulatorThread, make_client: Any
) -> None:
    raw = make_client(emu, parameter_validation=False)
    for options in ({"NextToken": "not-a-token"}, {"MaxResults": 26}, {"MaxResults": 0}):
        with pytest.raises(raw.exceptions.BadRequestException):
            raw.list_backend_jobs(**WHERE, **options)
    assert emu.stats()["bad_requests"] == 3


def test_unknown_environment_and_app_scope(client: Any) -> None:
    with pytest.raises(client.exceptions.NotFoundException):
        client.list_backend_jobs(AppId=APP, BackendEnvironmentName="nowhere")
    created = client.create_backend_config(AppId=APP)
    assert created["BackendEnvironmentName"] == "_app"
    listed = client.list_backend_jobs(AppId=APP, BackendEnvironmentName="_app")["Jobs"]
    assert [j["JobId"] for j in listed] == [created["JobId"]]


async def test_aiobotocore_paginator(aemu: EmulatorHandle, aclient: Any) -> None:
    created = set()
    for i in range(30):
        created.add((await aclient.create_backend_auth(**auth_params(f"a{i}")))["JobId"])
    paginator = aclient.get_paginator("list_backend_jobs")
    pages = [page async for page in paginator.paginate(**WHERE)]
    assert len(pages) == 3
    assert {job["JobId"] for page in pages for job in page["Jobs"]} == created
