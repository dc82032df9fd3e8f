"""More variants: environments with a job history, and the connection reset after the effect."""

from __future__ import annotations

import time
from typing import Any

import pytest
from botocore.exceptions import ConnectionClosedError

from orchestrator.emulator import Emulator, EmulatorConfig, EmulatorHandle, EmulatorThread
from orchestrator.emulator.history import OPERATIONS
from tests.emulator.support import auth_params, get_job, terminal, wait_until
from tests.emulator.world import APP, ENV, OTHER_APP

N = 30
SEEDED = [(APP, ENV), (APP, "prod"), (OTHER_APP, ENV)]  # the BASE apps


def listed(client: Any, app: str = APP, env: str = ENV, **filters: Any) -> list[dict[str, Any]]:
    paginator = client.get_paginator("list_backend_jobs")
    pages = paginator.paginate(
        AppId=app, BackendEnvironmentName=env, PaginationConfig={"PageSize": 7}, **filters
    )
    return [job for page in pages for job in page["Jobs"]]


# -- history ----------------------------------------------------------------------------------


def test_history_exists_before_start(start_emulator: Any, make_client: Any) -> None:
    """N finished jobs per seeded environment, in the past, oldest first a minute apart, a
    few seconds each, mostly COMPLETED, marked in the admin view, not counted as created."""
    began = time.time()
    emu = start_emulator(history=N)
    client = make_client(emu)
    for app, env in SEEDED:
        jobs = listed(client, app, env)
        assert len(jobs) == N and {j["Status"] for j in jobs} == {"COMPLETED", "FAILED"}
        assert [j["Status"] for j in jobs].count("FAILED") < N / 2
    admin = emu.jobs()
    assert len(admin) == N * len(SEEDED) and all(j["history"] for j in admin)
    assert all(j["visible"] for j in admin)
    mine = [j for j in admin if (j["appId"], j["backendEnvironmentName"]) == (APP, ENV)]
    creates = [j["createEpoch"] for j in mine]
    assert creates == sorted(creates)
    assert began - N * 60 - 1 <= creates[0] and mine[-1]["updateEpoch"] < began
    assert all(1.0 <= j["updateEpoch"] - j["createEpoch"] <= 10.0 for j in mine)
    assert [j["operation"] for j in mine[: len(OPERATIONS)]] == list(OPERATIONS)
    stats = emu.stats()
    assert stats["jobs"]["history"] == N * len(SEEDED)
    assert stats["jobs"]["created"] == 0 and stats["jobs"]["active"] == 0
    assert stats["mutations"] == {} and stats["conflicts"] == 0


def test_history_is_listable_filterable_and_inert(emu: EmulatorThread, make_client: Any) -> None:
    emu.configure(history=N)
    emu.reset()  # re-seeds the apps, now with history
    client = make_client(emu)
    storage = listed(client, Operation="CreateBackendStorage")
    assert len(storage) == len(range(1, N, len(OPERATIONS)))  # every 7th: many skipped
    assert {j["Operation"] for j in storage} == {"CreateBackendStorage"}
    failed = listed(client, Status="FAILED")
    assert failed and all("history" in j["Error"] for j in failed)
    old = storage[0]
    found = get_job(client, old["JobId"])
    assert {k: v for k, v in found.items() if k != "ResponseMetadata"} == old
    with pytest.raises(client.exceptions.NotFoundException):  # history changed no state
        client.get_backend_storage(AppId=APP, BackendEnvironmentName=ENV, ResourceName="x")
    new = client.create_backend_auth(**auth_params("now"))["JobId"]  # nothing active: no conflict
    wait_until(lambda: terminal(client, new))
    assert listed(client)[0]["JobId"] == new and len(listed(client)) == N + 1
    [mine] = [j for j in emu.jobs() if j["jobId"] == new]
    assert mine["history"] is False
    stats = emu.stats()
    assert stats["conflicts"] == 0 and stats["mutations"] == {"CreateBackendAuth": 1}
    assert stats["jobs"]["created"] == 1 and stats["jobs"]["COMPLETED"] == 1
    assert stats["jobs"]["history"] == N * len(SEEDED)


def test_history_is_reproducible_with_the_seed() -> None:
    def ids(emulator: Emulator) -> list[str]:
        return [job["jobId"] for job in emulator.jobs()]

    first = Emulator(EmulatorConfig(apps={"a": ["dev"]}, history=10, seed=5))
    again = Emulator(EmulatorConfig(apps={"a": ["dev"]}, history=10, seed=5))
    other = Emulator(EmulatorConfig(apps={"a": ["dev"]}, history=10, seed=6))
    assert ids(first) == ids(again) != ids(other)
    before = ids(first)
    first.reset()
    assert ids(first) == before


def test_history_for_envs_added_at_runtime_and_auto_created(
    start_emulator: Any, make_client: Any
) -> None:
    emu = start_emulator(history=5, auto_create=True)
    client = make_client(emu)
    emu.configure(apps={APP: [ENV, "prod", "staging"], "app3": ["x"]})
    assert len(listed(client, APP, "staging")) == len(listed(client, "app3", "x")) == 5
    assert len(listed(client, APP, ENV)) == 5  # existing environments get no more
    job_id = client.create_backend_auth(**auth_params("a", env="fresh"))["JobId"]
    jobs = listed(client, APP, "fresh")
    assert len(jobs) == 6 and jobs[0]["JobId"] == job_id
    assert emu.stats()["jobs"]["history"] == 5 * (len(SEEDED) + 3)


def test_history_is_cheap() -> None:
    apps = {f"app{i}": [f"env{k}" for k in range(4)] for i in range(10)}
    began = time.perf_counter()
    emulator = Emulator(EmulatorConfig(apps=apps, history=500, seed=1))
    assert time.perf_counter() - began < 2.0
    assert emulator.stats()["jobs"]["history"] == 500 * 40


# -- fault_reset_after_ratio ------------------------------------------------------------------


def test_reset_after_the_effect(emu: EmulatorThread, client: Any) -> None:
    """The job is created, then the connection drops: the client cannot tell it happened."""
    emu.configure(fault_reset_after_ratio=1.0, fault_operations=["create_backend_auth"])
    with pytest.raises(ConnectionClosedError):
        client.create_backend_auth(**auth_params("lost-answer"))
    [job] = emu.jobs()
    assert job["resourceName"] == "lost-answer" and job["history"] is False
    assert client.get_backend(AppId=APP)["AppId"] == APP  # outside fault_operations
    wait_until(lambda: terminal(client, job["jobId"]))
    found = client.get_backend_auth(
        AppId=APP, BackendEnvironmentName=ENV, ResourceName="lost-answer"
    )
    assert found["ResourceName"] == "lost-answer"
    with pytest.raises(client.exceptions.NotFoundException):  # failed calls are not hit
        client.create_backend_auth(**auth_params("nowhere", env="missing"))
    stats = emu.stats()
    assert stats["faults"]["reset_after"] == 1 and stats["faults"]["reset"] == 0
    assert stats["mutations"] == {"CreateBackendAuth": 1} and stats["jobs"]["created"] == 1


async def test_reset_after_with_aiobotocore(aemu: EmulatorHandle, aclient: Any) -> None:
    aemu.configure(fault_reset_after_ratio=1.0)
    with pytest.raises(ConnectionClosedError):
        await aclient.create_backend_auth(**auth_params("a"))
    assert len(aemu.jobs()) == 1
    aemu.configure(fault_reset_after_ratio=0.0)
    listed_jobs = await aclient.list_backend_jobs(AppId=APP, BackendEnvironmentName=ENV)
    assert [j["JobId"] for j in listed_jobs["Jobs"]] == [aemu.jobs()[0]["jobId"]]
    assert aemu.stats()["faults"]["reset_after"] == 1
