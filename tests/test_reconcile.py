"""Reconciliation against every AmplifyBackend the emulator can play.

The service documents neither the order of ListBackendJobs nor the format of CreateTime, nor how
long a new job stays unlisted: each test runs over every listing order × timestamp format, with
a history of finished jobs in the environment and small pages, so that nothing can pass by
relying on one server's habits.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import pytest

from orchestrator.ledger import SqliteLedger
from orchestrator.reconcile import Attempt, Reconciler, ReconcileSettings, Verdict
from orchestrator.testing import emulated_api, storage_request

ORDERS = ["newest", "oldest", "unordered"]
FORMATS = ["iso", "iso_offset", "epoch_s", "epoch_ms"]
FAST = ReconcileSettings(
    clock_skew=0.5, visibility_grace=1.5, call_timeout=0.5, first_delay=0.05, page_size=4
)
OP = "CreateBackendStorage"


@pytest.fixture(params=ORDERS)
def order(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=FORMATS)
def time_format(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def service(**knobs: Any) -> Any:
    """An emulator (jobs of 5 s) with ``knobs``, a client on it, and the worker's AmplifyApi."""
    return emulated_api(**{"job_duration": (5.0, 5.0), **knobs})


async def create(client: Any, name: str) -> str:
    params = storage_request(name, "app1", "dev", name)["params"]
    return str((await client.create_backend_storage(**params))["JobId"])


def attempt(began: float, until: float | None, owner: str = "r#0") -> Attempt:
    return Attempt("app1", "dev", OP, owner, began, until)


async def test_the_job_a_lost_call_made_is_found_and_claimed(order: str, time_format: str) -> None:
    """1. 60 finished jobs of the past in the environment, pages of 4, a job created between
       ``began`` and ``until`` (the lost call's effect).
    2. Found and claimed for the step; looking again as another step finds it is not theirs."""
    async with service(list_order=order, timestamp_format=time_format, history=60) as (
        _,
        client,
        api,
    ):
        ledger = SqliteLedger(":memory:")
        reconciler = Reconciler(api, ledger, FAST)
        began = time.time()
        job_id = await create(client, "mine")
        finding = await reconciler.find(attempt(began, time.time()))
        assert finding.verdict is Verdict.FOUND and finding.job is not None
        assert finding.job["JobId"] == job_id
        assert await ledger.get_tag(f"job:{job_id}") == "r#0"
        other = await reconciler.look(attempt(began, time.time(), owner="other#0"))
        assert other.verdict is Verdict.ABSENT


async def test_no_job_is_absent_only_after_the_visibility_grace(
    order: str, time_format: str
) -> None:
    """1. Nothing was created by the call; the history holds jobs of the same operation.
    2. The verdict is ABSENT, and not before the visibility grace has passed since ``until``."""
    async with service(list_order=order, timestamp_format=time_format, history=40) as (_, _, api):
        reconciler = Reconciler(api, SqliteLedger(":memory:"), FAST)
        until = time.time()
        finding = await reconciler.find(attempt(until - 0.2, until))
        assert finding.verdict is Verdict.ABSENT
        assert time.time() >= until + FAST.visibility_grace


async def test_a_job_still_invisible_is_found_once_listed() -> None:
    """1. New jobs stay unlisted for 0.6 s; the lost call's job is created.
    2. The first looks see nothing, a later one finds it: FOUND, never ABSENT."""
    async with service(visibility_delay=0.6, list_order="oldest") as (_, client, api):
        reconciler = Reconciler(api, SqliteLedger(":memory:"), FAST)
        began = time.time()
        job_id = await create(client, "late")
        finding = await reconciler.find(attempt(began, time.time()))
        assert finding.verdict is Verdict.FOUND and finding.job is not None
        assert finding.job["JobId"] == job_id


async def test_a_job_claimed_by_another_step_is_never_adopted(time_format: str) -> None:
    """1. A job in the window belongs (ledger tag) to another request's step.
    2. It is not a candidate: the lost call made nothing → ABSENT."""
    async with service(timestamp_format=time_format) as (_, client, api):
        ledger = SqliteLedger(":memory:")
        began = time.time()
        job_id = await create(client, "theirs")
        await ledger.put_tag(f"job:{job_id}", "someone-else#0", only_new=True)
        finding = await Reconciler(api, ledger, FAST).find(attempt(began, time.time()))
        assert finding.verdict is Verdict.ABSENT


async def test_two_unclaimed_candidates_are_unknown_and_named(order: str) -> None:
    """1. Two unclaimed jobs of the operation in the window (one is a stranger's).
    2. UNKNOWN, naming both: never a guess."""
    async with service(list_order=order, conflict_mode="accept") as (_, client, api):
        began = time.time()
        ids = {await create(client, "a"), await create(client, "b")}
        finding = await Reconciler(api, SqliteLedger(":memory:"), FAST).find(
            attempt(began, time.time())
        )
        assert finding.verdict is Verdict.UNKNOWN
        assert set(finding.candidates) == ids


async def test_a_listing_that_keeps_failing_is_unknown() -> None:
    """ListBackendJobs answers 504 every time: the verdict is UNKNOWN, not ABSENT."""
    async with service(fault_504_ratio=1.0, fault_operations=["ListBackendJobs"]) as (_, _, api):
        finding = await Reconciler(api, SqliteLedger(":memory:"), FAST).look(
            attempt(time.time() - 1, time.time())
        )
        assert finding.verdict is Verdict.UNKNOWN and "ListBackendJobs failed" in finding.why


async def test_newest_first_stops_early_once_the_order_is_established() -> None:
    """1. 300 past jobs, newest first, pages of 5: a recent job is found on the first pages.
    2. Oldest first, the same search has to walk to the end: the early stop comes from the
       timestamps seen, not from a belief."""
    calls = {}
    for order in ("newest", "oldest"):
        async with service(list_order=order, history=300) as (emu, client, api):
            began = time.time()
            await create(client, "recent")
            before = emu.stats()["calls"].get("ListBackendJobs", 0)
            settings = replace(FAST, page_size=5)
            finding = await Reconciler(api, SqliteLedger(":memory:"), settings).look(
                attempt(began, None)
            )
            assert finding.verdict is Verdict.FOUND
            calls[order] = emu.stats()["calls"]["ListBackendJobs"] - before
    assert calls["newest"] <= 3 < calls["oldest"]
