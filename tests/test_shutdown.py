"""SIGTERM: the worker process stops receiving, finishes or releases its requests, exits 0."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import pytest

from orchestrator.emulator import EmulatorConfig
from orchestrator.ledger import open_ledger
from orchestrator.outcome import DISPATCHING
from tests.stack import FAST, Queues, drain, queue_counts, running_worker, send, storage_request


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    return EmulatorConfig(
        apps={f"app{i}": ["dev"] for i in range(20)}, job_duration=(0.5, 1.5), seed=3
    )


def worker_environment(
    queues: Queues, emulator_url: str, grace: float, ledger: str
) -> dict[str, str]:
    env = dict(os.environ)
    env["AWS_ENDPOINT_URL_AMPLIFYBACKEND"] = emulator_url
    env.update({f"ORCHESTRATOR_{name.upper()}": str(value) for name, value in FAST.items()})
    env.update(
        ORCHESTRATOR_QUEUE_URL=queues.main,
        ORCHESTRATOR_RESULTS_QUEUE_URL=queues.results,
        ORCHESTRATOR_SHUTDOWN_GRACE=str(grace),
        ORCHESTRATOR_CONCURRENCY="8",
        ORCHESTRATOR_LEDGER=ledger,
    )
    return env


@pytest.mark.parametrize("grace", [15.0, 0.2], ids=["finish-in-grace", "release-after-grace"])
async def test_sigterm_mid_run_loses_nothing(
    sqs: Any, queues: Queues, emulator: Any, grace: float, tmp_path: Path
) -> None:
    """1. Start `orchestrator run` as a process; send 30 requests (jobs of 0.5-1.5 s).
    2. After the first outcomes, SIGTERM it: it exits with code 0 within the grace period
       (plus start-up slack).
    3. A second worker finishes whatever was released: every request has an outcome and the
       queue is empty, every request SUCCEEDED once, and no mutation was made twice: a
       released request resumes from the ledger instead of calling the API again."""
    bodies = [storage_request(f"term-{i}", f"app{i % 20}", "dev", f"s{i}") for i in range(30)]
    await send(sqs, queues.main, bodies)
    ledger = f"sqlite:///{tmp_path / 'ledger.db'}"
    env = worker_environment(queues, emulator.url, grace, ledger)
    command = [sys.executable, "-m", "orchestrator.cli", "run"]
    async with await anyio.open_process(command, env=env) as process:
        first = await drain(sqs, queues.results, 3, deadline=30)
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        with anyio.fail_after(grace + 10):
            code = await process.wait()
        stopped_in = time.monotonic() - signalled
    assert code == 0
    assert stopped_in < grace + 10
    async with open_ledger(ledger) as records:  # a step let go mid-dispatch says when
        for record in await records.find("IN_PROGRESS", 100):
            for step in record.steps:
                assert step.phase != DISPATCHING or step.dispatch_until is not None, record
    async with running_worker(queues.settings(ledger=ledger)):
        rest = await drain(sqs, queues.results, 27, deadline=60)
    events = first + rest
    assert sorted(event["request_id"] for event in events) == sorted(f"term-{i}" for i in range(30))
    assert {event["outcome"] for event in events} == {"SUCCEEDED"}
    assert await queue_counts(sqs, queues.main) == (0, 0)
    mutations = Counter(str(job.get("resourceName")) for job in emulator.jobs())
    assert len(mutations) == 30 and max(mutations.values()) == 1
