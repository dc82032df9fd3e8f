"""SIGTERM: the worker process stops receiving, finishes or releases its requests, exits 0."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from orchestrator.emulator import EmulatorConfig
from orchestrator.ledger import open_ledger
from orchestrator.outcome import DISPATCHING
from orchestrator.testing import (
    FAST,
    Queues,
    drain,
    drain_requests,
    processes,
    queue_counts,
    running_worker,
    send,
    storage_request,
)

#: (grace, listing order, timestamp format): the release case over every order, and every
#: format at least once (`make chaos` runs every combination).
CASES = [
    (15.0, "newest", "iso"),
    (0.2, "newest", "iso_offset"),
    (0.2, "oldest", "epoch_s"),
    (0.2, "unordered", "epoch_ms"),
]


@pytest.fixture(params=CASES, ids=lambda c: f"grace{c[0]:g}-{c[1]}-{c[2]}")
def case(request: pytest.FixtureRequest) -> tuple[float, str, str]:
    grace, order, time_format = request.param
    return float(grace), str(order), str(time_format)


@pytest.fixture
def emulator_config(case: tuple[float, str, str]) -> EmulatorConfig:
    _, order, time_format = case
    return EmulatorConfig(
        apps={f"app{i}": ["dev"] for i in range(20)},
        job_duration=(0.5, 1.5),
        list_order=order,
        timestamp_format=time_format,
        history=20,
        visibility_delay=0.2,
        conflict_mode="accept",  # an overlapping job is counted, not refused
        seed=3,
    )


def worker_environment(
    queues: Queues, emulator_url: str, grace: float, ledger: str
) -> dict[str, str]:
    settings = {
        **FAST,
        "queue_url": queues.main,
        "results_queue_url": queues.results,
        "shutdown_grace": grace,
        "concurrency": 8,
        "ledger": ledger,
    }
    return processes.worker_environment(settings, amplify_url=emulator_url)


async def test_sigterm_mid_run_loses_nothing(
    sqs: Any, queues: Queues, emulator: Any, case: tuple[float, str, str], tmp_path: Path
) -> None:
    """1. Start `orchestrator run` as a process; send 30 requests (jobs of 0.5-1.5 s) to a
       service that lists jobs in the case's order and writes its timestamps in its format,
       each environment holding 20 finished jobs.
    2. After the first outcomes, SIGTERM it: it exits with code 0 within the grace period
       (plus start-up slack).
    3. A second worker finishes whatever was released: every request has an outcome and the
       queue is empty, every request SUCCEEDED once, and no mutation was made twice: a
       released request resumes from the ledger instead of calling the API again; no two
       jobs overlapped on an environment; every step carries its own job."""
    grace = case[0]
    bodies = [storage_request(f"term-{i}", f"app{i % 20}", "dev", f"s{i}") for i in range(30)]
    await send(sqs, queues.main, bodies)
    ledger = f"sqlite:///{tmp_path / 'ledger.db'}"
    env = worker_environment(queues, emulator.url, grace, ledger)
    async with processes.WorkerProcesses(env, tmp_path / "worker.log") as workers:
        process = await workers.start()
        first = await drain(sqs, queues.results, 3, deadline=30)
        code, stopped_in = await workers.terminate(process, deadline=grace + 10)
    assert code == 0, workers.log()
    assert stopped_in < grace + 10
    async with open_ledger(ledger) as records:  # a step let go mid-dispatch says when
        for record in await records.find("IN_PROGRESS", 100):
            for step in record.steps:
                assert step.phase != DISPATCHING or step.dispatch_until is not None, record
    async with running_worker(queues.settings(ledger=ledger)):
        names = {f"term-{i}" for i in range(30)} - {event["request_id"] for event in first}
        rest = await drain_requests(sqs, queues.results, names, deadline=60)
    by_request: dict[str, list[dict[str, Any]]] = {}
    for event in first + [copy for copies in rest.values() for copy in copies]:
        by_request.setdefault(event["request_id"], []).append(event)
    assert by_request.keys() == {f"term-{i}" for i in range(30)}
    # An event may come twice (at-least-once), never two different ones for one request.
    assert all(all(e == copies[0] for e in copies) for copies in by_request.values())
    events = [copies[0] for copies in by_request.values()]
    assert {event["outcome"] for event in events} == {"SUCCEEDED"}
    assert await queue_counts(sqs, queues.main) == (0, 0)
    jobs = [job for job in emulator.jobs() if not job.get("history")]
    mutations = Counter(str(job.get("resourceName")) for job in jobs)
    assert len(mutations) == 30 and max(mutations.values()) == 1
    assert emulator.stats()["conflicts"] == 0
    made = {job["jobId"]: str(job.get("resourceName")) for job in jobs}
    for event in events:
        assert made[event["steps"][0]["job_id"]] == f"s{event['request_id'].removeprefix('term-')}"
