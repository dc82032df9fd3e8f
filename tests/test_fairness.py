"""Per-app fairness: max-min fair request slots, round-robin limiter turns, the app of a body."""

from __future__ import annotations

import json

import anyio
import anyio.lowlevel
import pytest

from orchestrator.backoff import RetryPolicy
from orchestrator.errors import RequestRejected, SlotsClosed
from orchestrator.fairness import FairSlots
from orchestrator.keyed import KeyedTurns
from orchestrator.metrics import Metrics
from orchestrator.processor import Destinations, RequestProcessor
from orchestrator.ratelimit import AdaptiveRateLimiter, LimiterSettings
from orchestrator.sqs import Message
from orchestrator.testing import multi_step, storage_request
from tests.clocks import ManualClock


def _preparer() -> RequestProcessor:
    """A processor for its ``prepare`` alone (which reads nothing but the message)."""
    return RequestProcessor(
        None,
        None,
        None,
        Destinations(None, "dlq"),
        Metrics(),
        RetryPolicy(),  # type: ignore[arg-type]
    )


def _message(body: str) -> Message:
    return Message("m-1", "receipt", body)


def test_a_messages_fairness_key_is_its_parsed_requests_first_app() -> None:
    prepare = _preparer().prepare
    single = storage_request("r-1", "a1", "dev", "s1")
    steps = multi_step("r-2", storage_request("x", "a2", "dev", "s2"), single)
    assert prepare(_message(json.dumps(single))).fairness_key == "a1"
    assert prepare(_message(json.dumps(steps))).fairness_key == "a2"
    for junk in ("not json", "[]", '{"params": 3}', '{"params": {"AppId": 5}}', '{"steps": []}'):
        prepared = prepare(_message(junk))
        assert prepared.fairness_key == "" and isinstance(prepared.parsed, RequestRejected)


async def test_free_slots_are_taken_at_once_up_to_capacity() -> None:
    slots = FairSlots(2)
    await slots.acquire("a")
    await slots.acquire("a")
    assert slots.in_use == 2 and slots.running("a") == 2
    with anyio.move_on_after(0.05) as scope:
        await slots.acquire("b")
    assert scope.cancelled_caught
    assert slots.waiting == 0 and slots.in_use == 2  # a cancelled waiter leaves no trace


async def test_a_freed_slot_goes_to_the_app_holding_fewest() -> None:
    """1. App a holds both slots and has 3 more waiting; app b asks after them.
    2. When an a request ends, the slot goes to b (0 running) though a's waiters are older.
    3. The next freed slots go back to a, oldest first."""
    slots = FairSlots(2)
    await slots.acquire("a")
    await slots.acquire("a")
    started: list[str] = []

    async def request(key: str, name: str) -> None:
        await slots.acquire(key)
        started.append(name)

    async with anyio.create_task_group() as group:
        for name in ("a1", "a2", "a3"):
            group.start_soon(request, "a", name)
            await anyio.wait_all_tasks_blocked()
        group.start_soon(request, "b", "b1")
        await anyio.wait_all_tasks_blocked()
        assert slots.waiting == 4
        slots.release("a")
        await anyio.wait_all_tasks_blocked()
        assert started == ["b1"]
        slots.release("a")
        slots.release("b")
        await anyio.wait_all_tasks_blocked()
        assert started == ["b1", "a1", "a2"]
        slots.release("a")
    assert started == ["b1", "a1", "a2", "a3"]


async def test_without_fairness_slots_go_in_arrival_order() -> None:
    slots = FairSlots(1, fair=False)
    await slots.acquire("a")
    started: list[str] = []

    async def request(key: str) -> None:
        await slots.acquire(key)
        started.append(key)
        slots.release(key)

    async with anyio.create_task_group() as group:
        group.start_soon(request, "a")
        await anyio.wait_all_tasks_blocked()
        group.start_soon(request, "b")
        await anyio.wait_all_tasks_blocked()
        slots.release("a")
    assert started == ["a", "b"]


async def test_close_wakes_waiters_with_slots_closed_and_refuses_new_ones() -> None:
    slots = FairSlots(1)
    await slots.acquire("a")
    outcomes: list[str] = []

    async def request() -> None:
        try:
            async with slots.slot("b", size=100):
                outcomes.append("ran")
        except SlotsClosed:
            outcomes.append("closed")

    async with anyio.create_task_group() as group:
        group.start_soon(request)
        await anyio.wait_all_tasks_blocked()
        assert slots.waiting_bytes == 100
        slots.close()
    assert outcomes == ["closed"] and slots.waiting_bytes == 0
    with pytest.raises(SlotsClosed):
        await slots.acquire("c")


async def test_backlog_below_waits_until_waiting_bodies_shrink() -> None:
    slots = FairSlots(1)
    await slots.acquire("a")
    passed = anyio.Event()

    async def receiver() -> None:
        await slots.backlog_below(150)
        passed.set()

    async with anyio.create_task_group() as group:
        group.start_soon(slots.acquire, "b", 100)
        group.start_soon(slots.acquire, "c", 100)
        await anyio.wait_all_tasks_blocked()
        group.start_soon(receiver)
        await anyio.wait_all_tasks_blocked()
        assert not passed.is_set()
        slots.release("a")  # b starts: 100 bytes left waiting
        await anyio.wait_all_tasks_blocked()
        assert passed.is_set()
        slots.release("b")


async def test_keyed_turns_admit_one_task_per_key() -> None:
    turns: KeyedTurns[str] = KeyedTurns()
    inside: list[str] = []
    most = {"a": 0}

    async def task(key: str) -> None:
        async with turns.turn(key):
            inside.append(key)
            most[key] = max(most.get(key, 0), inside.count(key))
            await anyio.sleep(0.01)
            inside.remove(key)

    async with anyio.create_task_group() as group:
        for key in ("a", "a", "a", "b", "b"):
            group.start_soon(task, key)
    assert most == {"a": 1, "b": 1}
    assert len(turns) == 0  # unused keys are dropped


@pytest.mark.parametrize(("fair_keys", "b_sent_at"), [(True, {1, 2}), (False, {10})])
async def test_limiter_serves_keys_round_robin(fair_keys: bool, b_sent_at: set[int]) -> None:
    """Ten calls of app a queue before one of app b at 10/s: with fair keys b's call is the
    second or third sent, not the eleventh (a call at most waits in the limiter's FIFO ahead
    of it); without, the limiter is a plain FIFO and b's call is the eleventh."""
    clock = ManualClock()
    settings = LimiterSettings(initial_rate=10.0, burst=1.0, fair_keys=fair_keys)
    limiter = AdaptiveRateLimiter(settings, clock)
    order: list[str] = []

    async def call(key: str) -> None:
        await limiter.acquire(key)
        order.append(key)

    async with anyio.create_task_group() as group:
        for _ in range(10):
            group.start_soon(call, "a")
        await anyio.lowlevel.checkpoint()
        group.start_soon(call, "b")
    assert order.index("b") in b_sent_at


def test_hostile_bodies_get_the_empty_key_never_an_error() -> None:
    """A 20,000-deep body once made the fairness key raise RecursionError, so the consumer
    retried the message forever instead of letting the parser reject it."""
    prepare = _preparer().prepare
    for body in ("[" * 20_000 + "]" * 20_000, "not json", "[1]", "x" * 300_000):
        prepared = prepare(_message(body))
        assert prepared.fairness_key == "" and isinstance(prepared.parsed, RequestRejected)
