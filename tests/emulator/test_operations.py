"""Every operation of the model round-trips through real boto3 and aiobotocore clients."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator import servicemodel
from orchestrator.emulator import EmulatorHandle, EmulatorThread
from orchestrator.emulator.direct import DIRECT
from orchestrator.emulator.effects import EFFECTS
from orchestrator.emulator.protocol import bindings
from tests.emulator.world import params_for

OPERATIONS = sorted(servicemodel.service_model().operation_names)
JOB_CONTROL = {"GetBackendJob", "ListBackendJobs", "UpdateBackendJob"}


def test_the_model_has_31_operations_each_with_one_route_and_one_behaviour() -> None:
    assert len(OPERATIONS) == 31
    routes = [(b.method, b.path) for b in bindings()]
    assert len(set(routes)) == len(routes) == 31
    for operation in OPERATIONS:
        owners = [operation in EFFECTS, operation in DIRECT, operation in JOB_CONTROL]
        assert owners.count(True) == 1, operation
        assert (operation in EFFECTS) == servicemodel.creates_job(operation)


def check_response(operation: str, response: dict[str, Any], emu_jobs: list[Any]) -> None:
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    output = servicemodel.operation_model(operation).output_shape
    fields = set(response) - {"ResponseMetadata"}
    assert fields <= set(output.members), fields - set(output.members)
    if servicemodel.creates_job(operation):
        assert response["Status"] == "REQUESTED"
        assert response["JobId"] in {job["jobId"] for job in emu_jobs}
        assert {job["operation"] for job in emu_jobs if job["jobId"] == response["JobId"]} == {
            operation
        }
    elif operation in JOB_CONTROL - {"ListBackendJobs"}:
        assert response["JobId"] and response["Status"]
    elif set(output.members) != {"Error"}:  # RemoveBackendConfig answers only an Error
        assert fields, f"{operation} answered no field at all"


@pytest.mark.parametrize("operation", OPERATIONS)
def test_round_trip_boto3(
    operation: str, client: Any, world: dict[str, str], emu: EmulatorThread
) -> None:
    method = getattr(client, servicemodel.method_name(operation))
    response = method(**params_for(operation, world))
    check_response(operation, response, emu.jobs())
    assert emu.stats()["calls"][operation] >= 1


@pytest.mark.parametrize("operation", OPERATIONS)
async def test_round_trip_aiobotocore(
    operation: str, aclient: Any, aworld: dict[str, str], aemu: EmulatorHandle
) -> None:
    method = getattr(aclient, servicemodel.method_name(operation))
    response = await method(**params_for(operation, aworld))
    check_response(operation, response, aemu.jobs())
