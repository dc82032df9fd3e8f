"""The environment fence: a mutation never overlaps the job of an earlier step that a worker
left running (a crash, a shutdown), and CloneBackend holds its target environment too."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from orchestrator.emulator import EmulatorConfig
from orchestrator.ledger import open_ledger
from orchestrator.outcome import DISPATCHED, DISPATCHING
from orchestrator.testing import (
    Queues,
    amplify_client,
    drain,
    running_worker,
    send,
    storage_request,
)


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    return EmulatorConfig(
        apps={"app1": ["dev", "prod"]}, job_duration=(1.5, 1.5), conflict_mode="accept", seed=5
    )


async def lost_call(name: str) -> str:
    """A CreateBackendStorage made on app1/dev behind the worker's back (its answer lost)."""
    async with amplify_client() as client:
        params = storage_request(name, "app1", "dev", name)["params"]
        return str((await client.create_backend_storage(**params))["JobId"])


async def left_behind(ledger_url: str, phase: str, job_id: str | None) -> None:
    """Request `x` as a dead worker left it: its step DISPATCHING or DISPATCHED on app1/dev,
    the environment marked as last mutated by it."""
    async with open_ledger(ledger_url) as ledger:
        record = await ledger.begin("x", ["CreateBackendStorage"])
        step = record.steps[0]
        step.phase, step.dispatch_began, step.environment = phase, time.time() - 0.3, "dev"
        step.job_id = job_id
        await ledger.save(record)
        await ledger.put_tag("env:app1/dev", "x#0")


def fence_waits(worker: Any) -> float:
    value = worker.metrics.registry.get_sample_value("orchestrator_environment_fence_waits_total")
    return float(value or 0)


@pytest.mark.parametrize("phase", [DISPATCHED, DISPATCHING])
async def test_a_new_mutation_waits_for_the_job_a_dead_worker_left_running(
    sqs: Any, queues: Queues, emulator: Any, tmp_path: Path, phase: str
) -> None:
    """1. Request `x`'s job runs on app1/dev; its worker died with the step DISPATCHED (job id
       recorded) or DISPATCHING (the answer never recorded).
    2. Request `r` on the same environment: its job starts only after x's ended (the emulator
       counts no conflict), and one fence wait is counted.
    3. x's redelivery adopts x's own job (claimed for it by r's fence): nothing sent again."""
    ledger_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    x_job = await lost_call("x-res")
    await left_behind(ledger_url, phase, x_job if phase == DISPATCHED else None)
    await send(sqs, queues.main, [storage_request("r", "app1", "dev", "r-res")])
    async with running_worker(queues.settings(ledger=ledger_url)) as (worker, _):
        (event,) = await drain(sqs, queues.results, 1, deadline=30)
        assert event["outcome"] == "SUCCEEDED" and event["steps"][0]["job_id"] != x_job
        assert fence_waits(worker) == 1
        await send(sqs, queues.main, [storage_request("x", "app1", "dev", "x-res")])
        (again,) = await drain(sqs, queues.results, 1, deadline=30)
    assert emulator.stats()["conflicts"] == 0
    assert again["outcome"] == "SUCCEEDED" and again["steps"][0]["job_id"] == x_job
    assert sorted(str(job["resourceName"]) for job in emulator.jobs()) == ["r-res", "x-res"]


async def test_clone_backend_holds_its_target_environment_too(
    sqs: Any, queues: Queues, emulator: Any
) -> None:
    """1. A CloneBackend dev → prod (its job is filed under dev) and a storage request on prod,
       sent together.
    2. Both SUCCEED and their jobs do not overlap in time: the clone held prod as well."""
    clone = {
        "request_id": "clone",
        "operation": "CloneBackend",
        "params": {
            "AppId": "app1",
            "BackendEnvironmentName": "dev",
            "TargetEnvironmentName": "prod",
        },
    }
    await send(sqs, queues.main, [clone, storage_request("p", "app1", "prod", "p-res")])
    async with running_worker(queues.settings()):
        events = await drain(sqs, queues.results, 2, deadline=30)
    assert {event["outcome"] for event in events} == {"SUCCEEDED"}
    spans = sorted((job["createEpoch"], job["updateEpoch"]) for job in emulator.jobs())
    assert len(spans) == 2 and spans[0][1] <= spans[1][0], spans
