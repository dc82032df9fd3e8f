"""The unsigned admin API (/_emulator/*) and the handles' admin methods."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from orchestrator.emulator import EmulatorHandle, EmulatorThread
from tests.emulator.support import SIGNED, auth_params, config
from tests.emulator.world import APP, ENV


@pytest.fixture
async def http(aemu: EmulatorHandle) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=aemu.url) as session:
        yield session


async def get(http: aiohttp.ClientSession, path: str) -> Any:
    async with http.get(path) as response:
        assert response.status == 200
        return await response.json()


async def post(http: aiohttp.ClientSession, path: str, **kwargs: Any) -> tuple[int, Any]:
    async with http.post(path, **kwargs) as response:
        return response.status, await response.json()


async def test_stats_and_jobs_endpoints(
    aemu: EmulatorHandle, aclient: Any, http: aiohttp.ClientSession
) -> None:
    created = await aclient.create_backend_auth(**auth_params("r1"))
    await aclient.get_backend(AppId=APP)
    stats = await get(http, "/_emulator/stats")
    assert stats["calls"] == {"CreateBackendAuth": 1, "GetBackend": 1}
    assert stats["mutations"] == {"CreateBackendAuth": 1}
    assert stats["jobs"]["created"] == 1 and stats["jobs"]["COMPLETED"] == 1
    assert stats["throttled"] == {"global": 0, "app": 0}
    assert set(stats["faults"]) == {"504", "500", "reset", "reset_after", "latency_spike"}
    for key in ("conflicts", "unsigned", "bad_requests", "not_found"):
        assert stats[key] == 0
    assert stats == {**aemu.stats(), "uptime": stats["uptime"]}
    [job] = await get(http, "/_emulator/jobs")
    assert job["jobId"] == created["JobId"]
    assert (job["operation"], job["appId"], job["backendEnvironmentName"]) == (
        "CreateBackendAuth",
        APP,
        ENV,
    )
    assert job["resourceName"] == "r1" and job["status"] == "COMPLETED"
    assert job["params"]["ResourceName"] == "r1"
    assert job["createTime"] <= job["updateTime"]
    assert aemu.jobs() == [job]


async def test_config_endpoint_steps_the_rate(
    aemu: EmulatorHandle, http: aiohttp.ClientSession
) -> None:
    async def call() -> int:
        async with http.post(f"/backend/{APP}/details", headers=SIGNED) as response:
            return response.status

    for rate, burst in ((20, 5), (5, 1), (40, 10)):  # the benchmark's 20 -> 5 -> 40 steps
        status, applied = await post(http, "/_emulator/config", json={"rate": rate, "burst": burst})
        assert status == 200 and (applied["rate"], applied["burst"]) == (rate, burst)
        began = time.monotonic()
        statuses = [await call() for _ in range(burst + rate)]  # a second's worth
        elapsed = time.monotonic() - began
        passed = statuses.count(200)
        assert burst <= passed <= burst + rate * elapsed + 1
        assert set(statuses) <= {200, 429}
        assert 429 in statuses or elapsed > 0.9
    assert (await get(http, "/_emulator/config"))["rate"] == 40
    assert aemu.config.rate == 40


@pytest.mark.parametrize(
    "payload",
    [{"no_such_knob": 1}, {"fail_ratio": 2}, {"job_duration": [2, 1]}, [1], "not json"],
)
async def test_bad_config_updates_are_refused_whole(
    aemu: EmulatorHandle, http: aiohttp.ClientSession, payload: Any
) -> None:
    body = payload if isinstance(payload, str) else None
    status, document = await post(
        http, "/_emulator/config", data=body, json=None if body else payload
    )
    assert status == 400 and document["message"]
    assert aemu.config.fail_ratio == 0.0 and aemu.config.job_duration == (0.0, 0.0)


async def test_reset_endpoint(
    aemu: EmulatorHandle, aclient: Any, http: aiohttp.ClientSession
) -> None:
    await aclient.create_backend(AppId="other", AppName="other", BackendEnvironmentName="x")
    await aclient.get_backend(AppId="other")
    aemu.configure(latency=0.01)
    status, _ = await post(http, "/_emulator/reset")
    assert status == 200
    assert await get(http, "/_emulator/jobs") == []
    stats = await get(http, "/_emulator/stats")
    assert stats["calls"] == {} and stats["jobs"]["created"] == 0
    assert aemu.config.latency == 0.01  # config kept
    with pytest.raises(aclient.exceptions.NotFoundException):
        await aclient.get_backend(AppId="other")
    assert (await aclient.get_backend(AppId=APP))["BackendEnvironmentList"] == [ENV, "prod"]
    assert (await get(http, "/_emulator/health")) == {"ok": True}


def test_thread_handle_admin_methods(emu: EmulatorThread, client: Any) -> None:
    assert emu.configure(fail_pattern="boom").fail_pattern == "boom"
    client.create_backend_auth(**auth_params("boom"))
    client.get_backend(AppId=APP)
    assert [j["status"] for j in emu.jobs()] == ["FAILED"]
    assert emu.stats()["jobs"]["FAILED"] == 1
    emu.reset()
    assert emu.jobs() == [] and emu.stats()["calls"] == {}
    assert emu.config.fail_pattern == "boom"
    with pytest.raises(ValueError, match="fail_ratio"):
        emu.configure(fail_ratio=-1)


def test_thread_reports_a_failed_start(emu: EmulatorThread) -> None:
    port = int(emu.url.rsplit(":", 1)[1])
    with pytest.raises(RuntimeError, match="failed to start") as caught:
        EmulatorThread(config(), port=port).start()
    assert isinstance(caught.value.__cause__, OSError)  # address already in use
