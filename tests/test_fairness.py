"""Per-app fairness: max-min fair request slots, round-robin limiter turns, the app of a body."""

from __future__ import annotations

import json

import anyio
import anyio.lowlevel
import pytest

from orchestrator.errors import SlotsClosed
from orchestrator.fairness import FairSlots, KeyedTurns, app_key
from orchestrator.ratelimit import AdaptiveRateLimiter, LimiterSettings
from tests.clocks import ManualClock


def test_app_key_reads_the_app_of_a_request_or_its_first_step() -> None:
    single = {"request_id": "r", "operation": "CreateBackend", "params": {"AppId": "a1"}}
    steps = {"request_id": "r", "steps": [{"operation": "X", "params": {"AppId": "a2"}}]}
    assert app_key(json.dumps(single)) == "a1"
    assert app_key(json.dumps(steps)) == "a2"
    for junk in ("not json", "[]", '{"params": 3}', '{"params": {"AppId": 5}}', '{"steps": []}'):
        assert app_key(junk) == ""
    assert app_key(json.dumps({"params": {"AppId": "a"}, "pad": "x" * 300_000})) == ""


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
            await anyio.sleep(0.01)
        group.start_soon(request, "b", "b1")
        await anyio.sleep(0.01)
        assert slots.waiting == 4
        slots.release("a")
        await anyio.sleep(0.01)
        assert started == ["b1"]
        slots.release("a")
        slots.release("b")
        await anyio.sleep(0.01)
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
        await anyio.sleep(0.01)
        group.start_soon(request, "b")
        await anyio.sleep(0.01)
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
        await anyio.sleep(0.01)
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
        await anyio.sleep(0.01)
        group.start_soon(receiver)
        await anyio.sleep(0.01)
        assert not passed.is_set()
        slots.release("a")  # b starts: 100 bytes left waiting
        await anyio.sleep(0.01)
        assert passed.is_set()
        slots.release("b")


async def test_keyed_turns_admit_one_task_per_key() -> None:
    turns = KeyedTurns()
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


def test_app_key_of_hostile_bodies_is_empty_never_an_error() -> None:
    """A 20,000-deep body once made app_key raise RecursionError, so the consumer retried the
    message forever instead of letting the parser reject it."""
    assert app_key("[" * 20_000 + "]" * 20_000) == ""
    assert app_key("not json") == "" and app_key("[1]") == ""
