"""The tracker: coalesced due times, and what tracking costs against the emulator's variants."""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.emulator import EmulatorHandle
from orchestrator.metrics import Metrics
from orchestrator.schedule import coalesce
from orchestrator.testing import emulated_api, storage_request
from orchestrator.tracker import JobTracker, TrackerSettings


@given(
    deadline=st.floats(min_value=0, max_value=1e7, allow_nan=False),
    interval=st.floats(min_value=0.01, max_value=3600, allow_nan=False),
)
def test_a_coalesced_deadline_moves_at_most_half_a_step(deadline: float, interval: float) -> None:
    moved = coalesce(deadline, interval, slack=0.1)
    assert abs(moved - deadline) <= 0.05 * interval + 1e-6 * max(1.0, deadline)
    step = 2.0 ** math.floor(math.log2(0.1 * interval))
    assert moved / step == round(moved / step)


def test_sweeps_due_within_one_step_fall_due_together() -> None:
    """200 environments whose 15 s sweeps fall due spread over one second: at most 2 instants
    (the 1 s step's grid), where without coalescing there would be 200."""
    deadlines = [1000.2 + index / 200 for index in range(200)]
    assert len({coalesce(deadline, 15.0) for deadline in deadlines}) <= 2
    assert len({coalesce(deadline, 15.0, slack=0) for deadline in deadlines}) == 200


# --- against the emulator -------------------------------------------------------------------


@contextlib.asynccontextmanager
async def tracking(**knobs: Any) -> AsyncIterator[tuple[EmulatorHandle, Any, JobTracker, Metrics]]:
    """An emulator with ``knobs``, a client on it, and a running JobTracker (fast sweeps)."""
    metrics = Metrics()
    async with emulated_api(metrics, **knobs) as (emu, client, api):
        tracker = JobTracker(api, metrics, TrackerSettings(0.05, 0.5, list_grace=5, page_size=2))
        async with anyio.create_task_group() as services:
            await services.start(tracker.run)
            yield emu, client, tracker, metrics
            services.cancel_scope.cancel()


async def create(client: Any, name: str) -> str:
    params = storage_request(name, "app1", "dev", name)["params"]
    return str((await client.create_backend_storage(**params))["JobId"])


def listing_calls(emu: EmulatorHandle) -> int:
    return int(emu.stats()["calls"].get("ListBackendJobs", 0))


@pytest.mark.parametrize("order", ["newest", "oldest", "unordered"])
async def test_one_jobs_tracking_cost_does_not_grow_with_the_history(order: str) -> None:
    """1. One job of 0.6 s tracked on an empty environment, then on one holding 200 past
       jobs, listed in the given order, pages of 2.
    2. Both COMPLETE; every check is one call of one page (a walk of the history would be
       100 pages), so both cost the same give or take one check's timing."""
    cost = {}
    for history in (0, 200):
        async with tracking(
            list_order=order, history=history, job_duration=(0.6, 0.6), job_duration_dist="fixed"
        ) as (emu, client, tracker, metrics):
            job_id = await create(client, f"h{history}")
            before = listing_calls(emu)
            result = await tracker.wait(("app1", "dev"), job_id, "CreateBackendStorage", 30)
            assert result.status == "COMPLETED"
            cost[history] = listing_calls(emu) - before
            sample = metrics.registry.get_sample_value
            pages = sample("orchestrator_tracker_sweep_pages_sum")
            assert pages == sample("orchestrator_tracker_sweeps_total") == cost[history]
    assert cost[0] > 0 and abs(cost[0] - cost[200]) <= 1, cost


async def test_many_jobs_due_at_once_are_swept_across_pages() -> None:
    """1. Six jobs on one environment, pages of 2: six lookups would cost more than a sweep.
    2. They are swept, following NextToken (a walk reads more than one page), and all
       COMPLETE."""
    async with tracking(conflict_mode="accept", job_duration=(0.5, 0.5)) as (
        _,
        client,
        tracker,
        metrics,
    ):
        ids = [await create(client, f"m{i}") for i in range(6)]
        async with anyio.create_task_group() as group:
            for job_id in ids:
                group.start_soon(tracker.wait, ("app1", "dev"), job_id, "CreateBackendStorage", 30)
        sample = metrics.registry.get_sample_value
        pages = sample("orchestrator_tracker_sweep_pages_sum") or 0
        walks = sample("orchestrator_tracker_sweeps_total") or 0
    assert 0 < walks < pages
    assert (
        sample(
            "orchestrator_jobs_finished_total",
            {"operation": "CreateBackendStorage", "status": "COMPLETED"},
        )
        == 6
    )


async def test_jobs_one_after_another_on_one_environment_are_checked_by_one_task() -> None:
    """1. Twelve jobs on one environment, each waited for the moment the previous one is over
       (the worker's shape: a step starts as the previous one ends), with no pause between.
    2. Each later job is checked exactly once: no task left over from an earlier job checks it
       a second time (an environment had one task per job it had ever tracked)."""
    async with tracking(
        conflict_mode="accept", job_duration=(0.3, 0.3), job_duration_dist="fixed"
    ) as (_, client, tracker, _):
        ids = [await create(client, f"seq{i}") for i in range(12)]
        checks = []
        for job_id in ids:
            result = await tracker.wait(("app1", "dev"), job_id, "CreateBackendStorage", 30)
            checks.append(result.checks)
    assert checks[1:] == [1] * 11, checks
