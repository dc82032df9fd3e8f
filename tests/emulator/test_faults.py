"""Rate limits and injected faults, as the real clients see them."""

from __future__ import annotations

import time
from typing import Any

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError

from orchestrator.emulator import EmulatorHandle, EmulatorThread
from tests.emulator.support import auth_params, terminal, wait_until
from tests.emulator.world import APP, ENV, OTHER_APP


def get_backend(client: Any, app: str = APP) -> dict[str, Any]:
    return dict(client.get_backend(AppId=app))


def test_global_rate_limit(emu: EmulatorThread, client: Any) -> None:
    """burst 3 at 1 call/s: three calls pass, the fourth (a mutation) is throttled with
    LimitType "global" and has no effect; the stats count it per limit and operation."""
    emu.configure(rate=1.0, burst=3)
    for _ in range(3):
        get_backend(client)
    with pytest.raises(client.exceptions.TooManyRequestsException) as caught:
        client.create_backend_auth(**auth_params("throttled"))
    response = caught.value.response
    assert response["LimitType"] == "global"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert emu.jobs() == []
    stats = emu.stats()
    assert stats["throttled"] == {"global": 1, "app": 0}
    assert stats["throttled_by_operation"] == {"CreateBackendAuth": 1}
    assert stats["mutations"] == {}


def test_per_app_rate_limit(emu: EmulatorThread, client: Any) -> None:
    emu.configure(per_app_rate=0.5, per_app_burst=2)
    get_backend(client)
    get_backend(client)
    with pytest.raises(client.exceptions.TooManyRequestsException) as caught:
        get_backend(client)
    assert caught.value.response["LimitType"] == "app"
    assert get_backend(client, OTHER_APP)["AppId"] == OTHER_APP  # its own bucket
    assert emu.stats()["throttled"] == {"global": 0, "app": 1}


def test_rate_limit_changes_at_runtime(emu: EmulatorThread, client: Any) -> None:
    for _ in range(30):
        get_backend(client)
    emu.configure(rate=0.5, burst=1)
    get_backend(client)
    with pytest.raises(client.exceptions.TooManyRequestsException):
        get_backend(client)
    emu.configure(rate=None)
    get_backend(client)


async def test_throttling_with_aiobotocore(aemu: EmulatorHandle, aclient: Any) -> None:
    aemu.configure(rate=0.5, burst=2)
    outcomes = []
    for _ in range(5):
        try:
            await aclient.get_backend(AppId=APP)
            outcomes.append("ok")
        except aclient.exceptions.TooManyRequestsException as exc:
            outcomes.append(exc.response["LimitType"])
    assert outcomes == ["ok", "ok", "global", "global", "global"]


def test_504_happens_before_any_effect(emu: EmulatorThread, client: Any) -> None:
    emu.configure(fault_504_ratio=1.0, fault_operations={"CreateBackendAuth"})
    with pytest.raises(client.exceptions.GatewayTimeoutException) as caught:
        client.create_backend_auth(**auth_params("never"))
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 504
    assert get_backend(client)["AppId"] == APP  # operations outside fault_operations pass
    assert emu.jobs() == []
    stats = emu.stats()
    assert stats["faults"]["504"] == 1 and stats["mutations"] == {}


def test_500_happens_after_the_effect(emu: EmulatorThread, client: Any) -> None:
    emu.configure(fault_500_ratio=1.0, fault_operations={"create_backend_auth"})
    with pytest.raises(ClientError) as caught:
        client.create_backend_auth(**auth_params("ambiguous"))
    error = caught.value.response
    assert error["Error"]["Code"] == "InternalServiceException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 500
    [job] = emu.jobs()
    assert job["resourceName"] == "ambiguous"
    wait_until(lambda: terminal(client, job["jobId"]))
    found = client.get_backend_auth(AppId=APP, BackendEnvironmentName=ENV, ResourceName="ambiguous")
    assert found["ResourceName"] == "ambiguous"
    assert emu.stats()["faults"]["500"] == 1


def test_reset_drops_the_connection_before_any_effect(emu: EmulatorThread, client: Any) -> None:
    emu.configure(fault_reset_ratio=1.0, fault_operations=["CreateBackendAuth"])
    with pytest.raises(ConnectionClosedError):
        client.create_backend_auth(**auth_params("lost"))
    assert emu.jobs() == []
    assert get_backend(client)["AppId"] == APP  # the next connection works
    assert emu.stats()["faults"]["reset"] == 1


async def test_reset_with_aiobotocore(aemu: EmulatorHandle, aclient: Any) -> None:
    aemu.configure(fault_reset_ratio=1.0)
    with pytest.raises(ConnectionClosedError):
        await aclient.get_backend(AppId=APP)
    aemu.configure(fault_reset_ratio=0.0)
    assert (await aclient.get_backend(AppId=APP))["AppId"] == APP


async def test_500_and_504_with_aiobotocore(aemu: EmulatorHandle, aclient: Any) -> None:
    aemu.configure(fault_500_ratio=1.0)
    with pytest.raises(ClientError) as caught:
        await aclient.create_backend_auth(**auth_params("a"))
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert len(aemu.jobs()) == 1
    aemu.configure(fault_500_ratio=0.0, fault_504_ratio=1.0)
    with pytest.raises(aclient.exceptions.GatewayTimeoutException):
        await aclient.create_backend_auth(**auth_params("b"))
    assert len(aemu.jobs()) == 1


def test_latency_and_spikes(emu: EmulatorThread, client: Any) -> None:
    def timed(call: Any) -> float:
        began = time.perf_counter()
        call()
        return time.perf_counter() - began

    quick = timed(lambda: get_backend(client))
    emu.configure(latency=0.1)
    assert timed(lambda: get_backend(client)) >= 0.1
    emu.configure(
        latency=0.0, latency_spike_ratio=1.0, latency_spike=0.3, fault_operations={"GetBackend"}
    )
    assert timed(lambda: get_backend(client)) >= 0.3
    assert timed(lambda: client.list_s3_buckets()) < 0.3 + quick
    assert emu.stats()["faults"]["latency_spike"] == 1


def test_partial_ratios_are_seeded_and_counted(start_emulator: Any, make_client: Any) -> None:
    """504 with probability 0.5 over 200 calls: about half fail, the stats agree, and the
    same seed reproduces the same sequence."""

    def run() -> list[bool]:
        emu = start_emulator(fault_504_ratio=0.5, seed=42)
        client = make_client(emu)
        failed = []
        for _ in range(200):
            try:
                get_backend(client)
                failed.append(False)
            except client.exceptions.GatewayTimeoutException:
                failed.append(True)
        assert emu.stats()["faults"]["504"] == sum(failed)
        return failed

    first, second = run(), run()
    assert 60 <= sum(first) <= 140
    assert first == second
