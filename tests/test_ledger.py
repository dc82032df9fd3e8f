"""The job ledger, the same tests for every backend, and resume behaviour through the worker."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from orchestrator.emulator import EmulatorConfig
from orchestrator.errors import JobFailed, LeaseLost, LedgerConflict, LedgerUnavailable
from orchestrator.ledger import Ledger, LedgerRecord, SqliteLedger, open_ledger
from orchestrator.ledger.lease import Leases
from orchestrator.outcome import (
    DISPATCHED,
    DISPATCHING,
    DONE,
    Outcome,
    RequestOutcome,
    StepRecord,
    utc_now,
)
from orchestrator.testing import (
    Queues,
    amplify_client,
    create_queues,
    drain,
    queue_counts,
    running_worker,
    send,
    storage_request,
)
from tests.clocks import ManualClock


@pytest.fixture(params=["sqlite", "dynamodb"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "dynamodb":
        return str(request.getfixturevalue("ledger_table"))
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture
async def ledger(ledger_url: str) -> AsyncIterator[Ledger]:
    async with open_ledger(ledger_url) as backend:
        yield backend


async def test_begin_creates_then_counts_deliveries(ledger: Ledger) -> None:
    first = await ledger.begin("r-1", ["CreateBackend", "CreateBackendAuth"])
    assert first.deliveries == 1 and [s.operation for s in first.steps] == [
        "CreateBackend",
        "CreateBackendAuth",
    ]
    first.steps[0].phase, first.steps[0].job_id = DISPATCHED, "job-1"
    await ledger.save(first)
    again = await ledger.begin("r-1", ["CreateBackend", "CreateBackendAuth"])
    assert again.deliveries == 2 and again.steps[0].job_id == "job-1"
    assert again.steps[0].phase == DISPATCHED


async def test_find_by_status(ledger: Ledger) -> None:
    for i in range(3):
        record = await ledger.begin(f"f-{i}", ["CreateBackend"])
        if i == 1:
            record.status, record.outcome = "FAILED", json.dumps({"outcome": "FAILED"})
            await ledger.save(record)
    assert [r.request_id for r in await ledger.find("FAILED", 10)] == ["f-1"]
    assert {r.request_id for r in await ledger.find(None, 10)} == {"f-0", "f-1", "f-2"}
    assert await ledger.get("missing") is None


async def test_lease_is_exclusive_until_released_or_expired(ledger: Ledger) -> None:
    now = [time.time()]
    ledger._clock = lambda: now[0]  # type: ignore[attr-defined]  # both backends take a clock
    assert await ledger.acquire_lease("env:a/dev", "w1", ttl=30)
    assert not await ledger.acquire_lease("env:a/dev", "w2", ttl=30)
    assert await ledger.acquire_lease("env:a/dev", "w1", ttl=30)  # renewal
    await ledger.release_lease("env:a/dev", "w1")
    assert await ledger.acquire_lease("env:a/dev", "w2", ttl=10)
    now[0] += 9
    assert not await ledger.acquire_lease("env:a/dev", "w3", ttl=30)
    await ledger.release_lease("env:a/dev", "w3")  # not the owner: no effect
    assert not await ledger.acquire_lease("env:a/dev", "w3", ttl=30)
    now[0] += 2  # w2 stopped renewing: its lease has expired
    assert await ledger.acquire_lease("env:a/dev", "w3", ttl=30)


async def test_a_stale_writer_cannot_overwrite_newer_progress(ledger_table: str) -> None:
    """1. Replica A begins request r and reads its record.
    2. Replica B (its own ledger handle) takes over and saves progress.
    3. A's save, based on the old record, is refused instead of erasing B's progress."""
    async with open_ledger(ledger_table) as a, open_ledger(ledger_table) as b:
        record_a = await a.begin("r", ["CreateBackendStorage"])
        record_b = await b.begin("r", ["CreateBackendStorage"])
        record_b.steps[0].job_id = "job-b"
        await b.save(record_b)
        record_a.steps[0].job_id = "job-a"
        with pytest.raises(LedgerConflict):
            await a.save(record_a)
        stored = await b.get("r")
        assert stored is not None and stored.steps[0].job_id == "job-b"
        assert stored.deliveries == 2


async def test_a_bystanders_read_does_not_make_a_stale_writer_current(ledger_table: str) -> None:
    """1. Replica A works on request r; replica B takes over and saves progress.
    2. A's fence, for another request, reads r's record (a peek).
    3. A's save of its stale r is still refused: the read did not become the version A's
       writes are conditioned on (it did, with `get`, and two replicas sent one step twice)."""
    async with open_ledger(ledger_table) as a, open_ledger(ledger_table) as b:
        record_a = await a.begin("r", ["CreateBackendStorage"])
        record_b = await b.begin("r", ["CreateBackendStorage"])
        await b.save(record_b)
        peeked = await a.peek("r")
        assert peeked is not None and peeked.deliveries == 2
        # Not even a read of r by A itself: the version travels with each record object.
        assert await a.get("r") is not None
        record_a.steps[0].job_id = "job-a"
        with pytest.raises(LedgerConflict):
            await a.save(record_a)


async def test_dynamodb_versions_travel_with_the_records(ledger_table: str) -> None:
    """Each record object carries the version it last read or wrote (begin 1, save 2, a
    fresh read 2); the ledger itself keeps nothing per request however many it serves."""
    async with open_ledger(ledger_table) as ledger:
        sizes = lambda: sum(len(v) for v in vars(ledger).values() if isinstance(v, dict))  # noqa: E731
        before = sizes()
        record = await ledger.begin("v-0", ["CreateBackendStorage"])
        assert record.version == 1
        await ledger.save(record)
        assert record.version == 2
        read = await ledger.get("v-0")
        assert read is not None and read.version == 2 and read == record
        for i in range(1, 20):
            await ledger.save(await ledger.begin(f"v-{i}", ["CreateBackendStorage"]))
        assert sizes() == before


async def test_a_corrected_request_begins_over_its_rejected_record(ledger: Ledger) -> None:
    """1. A rejected request's minimal record is stored (REJECTED, no steps).
    2. A corrected request under the same id begins a new record over it, one delivery,
       and its progress saves (on DynamoDB: conditioned on the stored record's version)."""
    await ledger.save(LedgerRecord("c-1", status="REJECTED"))
    record = await ledger.begin("c-1", ["CreateBackendStorage"])
    assert record.status == "IN_PROGRESS" and record.deliveries == 1 and len(record.steps) == 1
    record.steps[0].job_id = "job-c"
    await ledger.save(record)
    stored = await ledger.get("c-1")
    assert stored is not None and stored.steps[0].job_id == "job-c"


async def test_sqlite_errors_are_the_ledger_unavailable() -> None:
    """A failing SQLite (here: a closed file) raises LedgerUnavailable, a TransientError the
    worker handles (the message comes back later), never a raw sqlite3 error."""
    ledger = SqliteLedger(":memory:")
    await ledger.close()
    with pytest.raises(LedgerUnavailable, match="SQLite"):
        await ledger.get("r")
    with pytest.raises(LedgerUnavailable):
        await ledger.acquire_lease("env:a/dev", "w1", ttl=30)


class _ReleaseFails(SqliteLedger):
    async def release_lease(self, key: str, owner: str) -> None:
        raise LedgerUnavailable("ledger (SQLite) failed: disk I/O error")


async def test_a_failing_release_does_not_replace_the_blocks_own_error() -> None:
    """A block holding a lease fails (JobFailed); releasing the lease then fails too: the
    caller sees the JobFailed (the lease expires after its ttl), and the lease is no longer
    counted as held (not renewed)."""
    leases = Leases(_ReleaseFails(":memory:"), "w1", ttl=30)
    with pytest.raises(JobFailed):
        async with leases.hold("env:app1/dev"):
            raise JobFailed("job j-1 ended FAILED")
    assert leases.held == frozenset()


async def test_a_holder_late_to_renew_cannot_confirm_a_lease_another_worker_took() -> None:
    """1. Worker a holds env:app1/dev; its renewals are late and the lease expires.
    2. Worker b takes it.
    3. a's confirm before its mutation raises LeaseLost (it must not send); b's succeeds."""
    now = [1000.0]
    ledger = SqliteLedger(":memory:", clock=lambda: now[0])
    late, other = Leases(ledger, "a", ttl=30), Leases(ledger, "b", ttl=30)
    async with late.hold("env:app1/dev"):
        await late.confirm(["env:app1/dev"])
        now[0] += 31
        async with other.hold("env:app1/dev"):
            with pytest.raises(LeaseLost):
                await late.confirm(["env:app1/dev"])
            await other.confirm(["env:app1/dev"])


async def test_held_lease_excludes_a_second_holder(ledger: Ledger) -> None:
    """Three processes (owners) enter the same lease: their critical sections never overlap."""
    inside: list[str] = []
    overlaps = 0

    async def worker(name: str) -> None:
        nonlocal overlaps
        leases = Leases(ledger, name, ttl=5)
        for _ in range(5):
            async with leases.hold("env:x/y"):
                inside.append(name)
                overlaps += len(inside) > 1
                await anyio.sleep(0.005)
                inside.remove(name)

    async with anyio.create_task_group() as tg:
        for name in ("a", "b", "c"):
            tg.start_soon(worker, name)
    assert overlaps == 0


@pytest.mark.parametrize("renewed", [True, False], ids=["renewed", "not-renewed"])
async def test_a_held_lease_outlives_its_ttl_only_when_renewed(
    ledger: Ledger, renewed: bool
) -> None:
    now = [time.time()]
    ledger._clock = lambda: now[0]  # type: ignore[attr-defined]  # both backends take a clock
    leases = Leases(ledger, "w1", ttl=30)
    async with leases.hold("env:a/dev"):
        assert leases.held == {"env:a/dev"}
        now[0] += 25
        if renewed:
            await leases.renew()
        now[0] += 25  # past the first expiry, within the renewed one
        assert await ledger.acquire_lease("env:a/dev", "w2", ttl=30) is not renewed
    assert leases.held == frozenset()


class GatedLedger:
    """A ledger whose lease acquisitions can be held up (a renewal in flight) and are counted."""

    def __init__(self, inner: Ledger, count_to: int = 0) -> None:
        self.inner = inner
        self.acquisitions = 0
        self.gate: anyio.Event | None = None
        self.waiting = anyio.Event()
        self.counted = anyio.Event()
        self._count_to = count_to

    async def acquire_lease(self, key: str, owner: str, ttl: float) -> bool:
        self.acquisitions += 1
        if self.acquisitions == self._count_to:
            self.counted.set()
        if self.gate is not None:
            self.waiting.set()
            await self.gate.wait()
        return await self.inner.acquire_lease(key, owner, ttl)

    async def release_lease(self, key: str, owner: str) -> None:
        await self.inner.release_lease(key, owner)


async def test_a_lease_released_while_its_renewal_is_in_flight_stays_released(
    ledger: Ledger,
) -> None:
    """1. w1 holds a lease; a renewal of it is sent but has not landed.
    2. The block ends (release), then the renewal lands and re-creates the lease.
    3. The renewal notices and releases it again: w2 can take it at once."""
    gated = GatedLedger(ledger)
    leases = Leases(gated, "w1", ttl=30)  # type: ignore[arg-type]  # leases need only these two
    async with anyio.create_task_group() as tg:
        async with leases.hold("env:a/dev"):
            gated.gate = anyio.Event()
            tg.start_soon(leases.renew)
            await gated.waiting.wait()
        gated.gate.set()
    assert await ledger.acquire_lease("env:a/dev", "w2", ttl=30)


async def test_the_renewal_task_renews_every_third_of_the_ttl(ledger: Ledger) -> None:
    """The renewal task re-acquires the held lease after each wait of ttl / 3 (a manual clock
    records the waits): three renewals, 10 s apart for a 30 s lease."""
    clock = ManualClock()
    gated = GatedLedger(ledger, count_to=4)  # the hold's own acquisition + 3 renewals
    leases = Leases(gated, "w1", ttl=30, clock=clock)  # type: ignore[arg-type]
    async with anyio.create_task_group() as tg, leases.hold("env:a/dev"):
        await tg.start(leases.run)
        with anyio.fail_after(5):
            await gated.counted.wait()
        tg.cancel_scope.cancel()
    assert clock.slept[:3] == [10.0, 10.0, 10.0]


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    return EmulatorConfig(
        apps={f"app{i}": ["dev"] for i in range(10)},
        job_duration=(0.05, 0.3),
        seed=5,
        conflict_mode="accept",
    )


async def test_two_workers_with_duplicate_deliveries_mutate_once(
    sqs: Any, queues: Queues, emulator: Any, ledger_url: str
) -> None:
    """1. 30 requests over 10 environments, each sent TWICE (a producer retrying).
    2. Two workers share the queue and one ledger (a SQLite file, or a DynamoDB table).
    3. Every request mutates exactly once; its two outcome events are identical (the second
       the stored one, message_id included: the delivery that ran it); no two jobs
       overlap on one environment; the queue ends empty."""
    bodies = [storage_request(f"dup-{i}", f"app{i % 10}", "dev", f"s{i}") for i in range(30)]
    await send(sqs, queues.main, bodies + bodies)
    settings = queues.settings(ledger=ledger_url, concurrency=8)
    async with running_worker(settings), running_worker(settings):
        events = await drain(sqs, queues.results, 60, deadline=90)
    by_request: dict[str, list[str]] = {}
    for event in events:
        by_request.setdefault(event["request_id"], []).append(json.dumps(event, sort_keys=True))
    assert len(by_request) == 30
    assert all(len(set(versions)) == 1 for versions in by_request.values())
    assert all(json.loads(v[0])["outcome"] == "SUCCEEDED" for v in by_request.values())
    mutations = Counter(str(job.get("resourceName")) for job in emulator.jobs())
    assert len(mutations) == 30 and max(mutations.values()) == 1
    assert emulator.stats()["conflicts"] == 0
    assert await queue_counts(sqs, queues.main) == (0, 0)


def test_a_record_survives_its_json_round_trip() -> None:
    record = LedgerRecord("r-9", deliveries=2, steps=[StepRecord("CreateBackend")])
    record.steps[0].phase, record.steps[0].job_id, record.steps[0].dispatch_began = (
        DISPATCHED, "job-9", 12.5,
    )  # fmt: skip
    record.outcome = '{"outcome":"SUCCEEDED"}'
    assert LedgerRecord.from_json(record.to_json()) == record


async def test_a_resumed_dispatch_does_not_adopt_a_later_job_of_another_request(
    sqs: Any, queues: Queues, emulator: Any, tmp_path: Path
) -> None:
    """1. The ledger shows request `victim` let go of its step while DISPATCHING 10 s ago (a
       shutdown cancelled its call: it may or may not have reached the service).
    2. Since then another request made a job of the same operation on the environment.
    3. The redelivered `victim` reconciles, finds no job of its own (the other one was made
       after it let go) and makes its change: its resource exists, not only the other's."""
    ledger_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    async with open_ledger(ledger_url) as ledger:
        record = await ledger.begin("victim", ["CreateBackendStorage"])
        step = record.steps[0]
        step.phase, step.dispatch_began, step.dispatch_until = (
            DISPATCHING,
            time.time() - 10,
            (time.time() - 9.5),
        )
        await ledger.save(record)
    other = storage_request("other", "app1", "dev", "other-resource")["params"]
    async with amplify_client() as client:
        await client.create_backend_storage(**other)
    await send(sqs, queues.main, [storage_request("victim", "app1", "dev", "victim-resource")])
    async with running_worker(queues.settings(ledger=ledger_url)):
        (event,) = await drain(sqs, queues.results, 1, deadline=30)
    assert event["outcome"] == "SUCCEEDED"
    made = {str(job.get("resourceName")) for job in emulator.jobs()}
    assert made == {"other-resource", "victim-resource"}


async def test_a_delivery_another_worker_overtook_reports_that_workers_outcome(
    sqs: Any, emulator: Any, ledger_table: str
) -> None:
    """1. The only delivery of a request (maxReceiveCount 1: it is the last) runs its job (3 s)
       with a DynamoDB ledger.
    2. Meanwhile another worker, one whose lease expired under it, finishes the request in the
       ledger: SUCCEEDED with the same job.
    3. The delivery's next write conflicts (orchestrator_ledger_conflicts_total); it begins
       again from the record as written and reports that outcome unchanged, never FAILED
       delivery_attempts_exhausted: the producer gets one outcome. One mutation, an empty DLQ."""
    emulator.configure(job_duration=(3.0, 3.0))
    queues = await create_queues(sqs, max_receive_count=1)
    await send(sqs, queues.main, [storage_request("overtaken", "app1", "dev", "s-1")])
    async with (
        open_ledger(ledger_table) as other,
        running_worker(queues.settings(ledger=ledger_table)) as (worker, _),
    ):
        with anyio.fail_after(30):
            # The state lives in another server, behind HTTP: polled.
            while (record := await other.peek("overtaken")) is None or (  # noqa: ASYNC110
                record.steps[0].phase != DISPATCHED
            ):
                await anyio.sleep(0.02)
        step = record.steps[0]
        step.phase, step.status, step.finished_at = DONE, "COMPLETED", utc_now()
        finished = RequestOutcome("overtaken", Outcome.SUCCEEDED, steps=record.steps)
        finished.message_id = "message-of-the-other-copy"
        record.status, record.outcome = "SUCCEEDED", finished.to_json()
        await other.save(record)
        (event,) = await drain(sqs, queues.results, 1, deadline=30)
        conflicts = worker.metrics.ledger_conflicts._value.get()
    assert event == json.loads(finished.to_json())
    assert conflicts >= 1
    assert len(emulator.jobs()) == 1
    assert await queue_counts(sqs, queues.dlq) == (0, 0)
    assert await queue_counts(sqs, queues.main) == (0, 0)
