"""Small versions of `make chaos` (orchestrator/testing/chaos.py): real worker processes,
real faults.

Each scenario asserts the same invariants: every request has an outcome and all its events are
identical, no resource was mutated twice, no two jobs overlapped on one environment, and the
change queue ends empty.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from orchestrator.emulator import EmulatorConfig
from orchestrator.testing import chaos
from orchestrator.testing.invariants import Report, Stack

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    return EmulatorConfig(
        apps={app: chaos.ENVIRONMENTS for app in chaos.APPS}, job_duration=(0.2, 0.8), seed=11
    )


@pytest.fixture
def stack(sqs: Any, moto_sqs: str, emulator: Any, tmp_path: Path) -> Stack:
    return Stack(sqs, moto_sqs, emulator, tmp_path)


def assert_clean(report: Report) -> None:
    assert report.lost == 0, asdict(report)
    assert report.inconsistent == 0, asdict(report)
    assert report.duplicates == 0, asdict(report)
    assert report.overlaps == 0, asdict(report)
    assert report.wrong_job == 0, asdict(report)
    assert report.left_on_queue == 0, asdict(report)
    assert report.ok, asdict(report)


@pytest.mark.parametrize(
    "variant",
    # The two most unlike the emulator's default (newest first, ISO); tests/test_exactly_once.py
    # covers every order and format without kills, `make chaos` every pair with them, and its
    # plain kill -9 scenario (chaos.kill_restart, which these runs go through) at scale.
    [("oldest", "epoch_s"), ("unordered", "epoch_ms")],
    ids=lambda v: f"{v[0]}-{v[1]}",
)
async def test_kill_9_and_lost_answers_on_every_kind_of_service(
    stack: Stack, variant: tuple[str, str]
) -> None:
    """1. The service lists jobs in the variant's order, writes timestamps in its format, holds
       50 finished jobs per environment and lists new jobs 0.3 s late; ~9% of mutation answers
       are lost after the effect (500, dropped connection), 3% 504 before it.
    2. 16 requests; the worker is SIGKILLed twice at random points and restarted.
    3. All SUCCEED, nothing mutated twice, no overlapping jobs, every step carries its own job.
       (Every order × format combination at 300 requests: `make chaos`.)"""
    report = await chaos.exactly_once(stack, variant, requests=16, kills=2, seed=7)
    assert_clean(report)
    assert report.outcomes == {"SUCCEEDED": 16}


async def test_api_faults_are_retried_or_reconciled_without_duplicates(
    stack: Stack,
) -> None:
    """1. The emulator answers 10% 504 (no effect), 5% 500 after the effect, 2% connection
       resets, 5% one-second latency spikes.
    2. Every request SUCCEEDS and every resource is mutated once: a 500 after effect is
       reconciled through ListBackendJobs instead of being sent again."""
    report = await chaos.api_faults(stack, requests=40, seed=5)
    assert_clean(report)
    assert report.outcomes == {"SUCCEEDED": 40}
    assert report.injected and "504" in report.injected


async def test_sqs_outage_makes_the_worker_unready_then_it_recovers(stack: Stack) -> None:
    """1. The worker reaches SQS through a proxy; mid-run the proxy refuses everything for 3 s.
    2. /readyz answers 503 during the outage, the process stays up, /readyz is 200 again after,
       and every request finishes with nothing lost."""
    report = await chaos.sqs_outage(stack, requests=16, outage=3.0)
    assert_clean(report)
    assert any(note.startswith("/readyz 503") for note in report.notes)
    assert any(note.startswith("ready again") for note in report.notes)


@pytest.mark.parametrize("fifo", [False, True], ids=["standard", "fifo"])
async def test_three_replicas_on_dynamodb_never_overlap(
    stack: Stack, ledger_table: str, fifo: bool
) -> None:
    """1. Three worker processes share one queue (standard: leases in the ledger serialise an
       environment; FIFO: MessageGroupId = AppId/BackendEnvironmentName) and a DynamoDB ledger
       (moto); every request is sent twice.
    2. No duplicate mutation, no two jobs at once on an environment, identical outcome events,
       every request terminal, nothing left on the queue."""
    report = await chaos.competing_replicas(stack, ledger_table, requests=16, replicas=3, fifo=fifo)
    assert_clean(report)
    assert report.outcomes == {"SUCCEEDED": 16}
