"""Each FAILED reason the README promises, produced against the emulator: ``job_timeout``,
``retries_exhausted``, ``request_id_reused``, and a job ListBackendJobs never lists; directly
through JobTracker and AmplifyApi, and through the whole worker (RequestProcessor →
Dispatcher), under each ListBackendJobs order the service might use."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from orchestrator.emulator import EmulatorConfig, EmulatorHandle
from orchestrator.errors import JobTimedOut, RetriesExhausted
from orchestrator.ledger import open_ledger
from orchestrator.metrics import Metrics
from orchestrator.testing import Queues, drain, emulated_api, running_worker, send, storage_request
from orchestrator.tracker import JobTracker, TrackerSettings

ORDERS = ["newest", "oldest", "unordered"]
_KEY = ("app1", "dev")
_OPERATION = "CreateBackendStorage"


@contextlib.asynccontextmanager
async def tracking(
    list_grace: float, **knobs: Any
) -> AsyncIterator[tuple[EmulatorHandle, Any, JobTracker]]:
    """An emulator with ``knobs``, a client on it, and a running JobTracker (fast sweeps)."""
    metrics = Metrics()
    async with emulated_api(metrics, **knobs) as (emu, client, api):
        settings = TrackerSettings(0.05, 0.3, list_grace=list_grace, page_size=2)
        tracker = JobTracker(api, metrics, settings)
        async with anyio.create_task_group() as services:
            await services.start(tracker.run)
            yield emu, client, tracker
            services.cancel_scope.cancel()


async def create(client: Any, name: str) -> str:
    params = storage_request(name, "app1", "dev", name)["params"]
    return str((await client.create_backend_storage(**params))["JobId"])


# --- JobTracker -----------------------------------------------------------------------------


@pytest.mark.parametrize("order", ORDERS)
async def test_a_job_still_running_at_its_limit_is_job_timeout(order: str) -> None:
    """1. A 30 s job among 20 past ones, waited for with a limit of 0.5 s.
    2. JobTimedOut (reason job_timeout) names the job; the job was looked for meanwhile."""
    async with tracking(
        5.0, list_order=order, history=20, job_duration=(30, 30), job_duration_dist="fixed"
    ) as (emu, client, tracker):
        job_id = await create(client, "slow")
        with pytest.raises(JobTimedOut) as caught:
            await tracker.wait(_KEY, job_id, _OPERATION, 0.5)
        assert emu.stats()["calls"].get("ListBackendJobs", 0) > 0
    assert caught.value.reason == "job_timeout" and job_id in str(caught.value)


@pytest.mark.parametrize("order", ORDERS)
async def test_a_job_never_listed_fails_once_the_list_grace_is_over(order: str) -> None:
    """1. The service never lists the new job (invisible for an hour); list grace 0.4 s.
    2. The wait ends FAILED, saying the job was never listed, after the grace and well
       before the wait's own limit."""
    async with tracking(
        0.4, list_order=order, history=20, visibility_delay=3600.0, job_duration=(0.1, 0.1)
    ) as (_, client, tracker):
        job_id = await create(client, "ghost")
        began = anyio.current_time()
        result = await tracker.wait(_KEY, job_id, _OPERATION, 30)
        waited = anyio.current_time() - began
    assert result.status == "FAILED" and "never listed" in str(result.error), result
    assert 0.4 <= waited < 30


@pytest.mark.parametrize("order", ORDERS)
async def test_a_job_listed_late_but_within_the_grace_completes(order: str) -> None:
    """The other side: a job invisible for 0.5 s, with a list grace of 5 s, COMPLETES."""
    async with tracking(
        5.0, list_order=order, history=20, visibility_delay=0.5, job_duration=(0.1, 0.1)
    ) as (_, client, tracker):
        job_id = await create(client, "late")
        result = await tracker.wait(_KEY, job_id, _OPERATION, 30)
    assert result.status == "COMPLETED", result


# --- AmplifyApi -----------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["fault_504_ratio", "fault_reset_ratio"])
async def test_a_read_failing_past_the_retry_budget_is_retries_exhausted(fault: str) -> None:
    """1. Every GetBackendJob fails transiently (504, or the connection reset).
    2. The worker tries it exactly the policy's 3 times (2 retries counted), then
       RetriesExhausted. (aiohttp itself re-sends a GET once on a dropped keep-alive
       connection, RFC 9112 9.3.1, so the server may see up to twice that; never a POST, and
       every AmplifyBackend mutation is a POST.)"""
    knobs = {fault: 1.0, "fault_operations": frozenset({"GetBackendJob"})}
    metrics = Metrics()
    async with emulated_api(metrics, **knobs) as (emu, _, api):
        with pytest.raises(RetriesExhausted) as caught:
            await api.call(
                "GetBackendJob", {"AppId": "app1", "BackendEnvironmentName": "dev", "JobId": "j"}
            )
        calls = emu.stats()["calls"]["GetBackendJob"]
    retries = sum(
        sample.value
        for family in metrics.registry.collect()
        if family.name == "orchestrator_api_retries"
        for sample in family.samples
        if sample.name.endswith("_total") and sample.labels["operation"] == "GetBackendJob"
    )
    assert caught.value.reason == "retries_exhausted" and "3 times" in str(caught.value)
    assert retries == 2 and 3 <= calls <= 6, (retries, calls)


# --- the whole worker -----------------------------------------------------------------------

PAST_JOBS = 30


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    """app1/dev with finished jobs already listed: what the worker finds must be told apart."""
    return EmulatorConfig(apps={"app1": ["dev"]}, history=PAST_JOBS, seed=7)


@pytest.mark.parametrize("order", ORDERS)
async def test_a_request_whose_job_outlives_the_timeout_fails_job_timeout(
    sqs: Any, queues: Queues, emulator: Any, order: str
) -> None:
    """1. A storage request whose job takes 30 s; job timeout 1 s.
    2. FAILED job_timeout; the mutation was sent once; the step names its job."""
    emulator.configure(list_order=order, job_duration=(30, 30), job_duration_dist="fixed")
    await send(sqs, queues.main, [storage_request("slow", "app1", "dev", "slow")])
    async with running_worker(queues.settings(job_timeout=1.0, sweep_min=0.1, sweep_max=0.3)):
        (event,) = await drain(sqs, queues.results, 1, deadline=30)
    assert (event["outcome"], event["reason"]) == ("FAILED", "job_timeout"), event
    assert emulator.stats()["calls"][_OPERATION] == 1
    [job] = [job for job in emulator.jobs() if not job.get("history")]
    assert event["steps"][0]["job_id"] == job["jobId"]


@pytest.mark.parametrize("stamps", ["iso", "epoch_ms"])
@pytest.mark.parametrize("order", ORDERS)
async def test_a_mutation_that_never_lands_fails_retries_exhausted_after_its_budget(
    sqs: Any, queues: Queues, emulator: Any, order: str, stamps: str
) -> None:
    """1. Every CreateBackendStorage answers 504 (the service promises nothing about whether
       it took effect), on an environment with past jobs; the listing, after the grace,
       shows it made no job each time, whatever the order and timestamp format.
    2. It is sent again only after that proof, exactly max_attempts (2) times, then the
       request is FAILED retries_exhausted; no new job exists."""
    emulator.configure(
        list_order=order,
        timestamp_format=stamps,
        fault_504_ratio=1.0,
        fault_operations=frozenset({_OPERATION}),
    )
    await send(sqs, queues.main, [storage_request("lost", "app1", "dev", "lost")])
    settings = queues.settings(max_attempts=2, list_grace=0.3, clock_skew=0.2)
    async with running_worker(settings):
        (event,) = await drain(sqs, queues.results, 1, deadline=60)
    assert (event["outcome"], event["reason"]) == ("FAILED", "retries_exhausted"), event
    assert emulator.stats()["calls"][_OPERATION] == 2
    jobs = emulator.jobs()
    assert not [job for job in jobs if not job.get("history")]
    assert len([job for job in jobs if job.get("history")]) == PAST_JOBS


@pytest.fixture(params=["sqlite", "dynamodb"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "dynamodb":
        return str(request.getfixturevalue("ledger_table"))
    return f"sqlite:///{tmp_path / 'ledger.db'}"


async def test_a_request_id_reused_for_other_steps_fails_and_sends_nothing(
    sqs: Any, queues: Queues, emulator: Any, ledger_url: str
) -> None:
    """1. The ledger holds an unfinished request "reused" of one CreateBackendAuth step (a
       delivery that crashed); a new request with that id asks for CreateBackendStorage.
    2. FAILED request_id_reused; no AmplifyBackend mutation was sent; the record still holds
       the first request's step, untouched."""
    url = ledger_url
    async with open_ledger(url) as ledger:
        await ledger.begin("reused", ["CreateBackendAuth"])
    await send(sqs, queues.main, [storage_request("reused", "app1", "dev", "other")])
    async with running_worker(queues.settings(ledger=url)):
        (event,) = await drain(sqs, queues.results, 1, deadline=30)
    assert (event["outcome"], event["reason"]) == ("FAILED", "request_id_reused"), event
    calls = emulator.stats()["calls"]
    assert calls.get(_OPERATION, 0) == 0 and calls.get("CreateBackendAuth", 0) == 0
    async with open_ledger(url) as ledger:
        record = await ledger.get("reused")
    assert record is not None and [step.operation for step in record.steps] == ["CreateBackendAuth"]
