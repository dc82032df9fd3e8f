"""The consumer against moto's SQS: concurrent long polls, the hand-off to the deleter."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import anyio

from orchestrator.consumer import Consumer, ConsumerSettings
from orchestrator.delivery import unkeyed
from orchestrator.metrics import Metrics
from orchestrator.sqs import Message, Sqs
from orchestrator.testing import Queues, queue_counts, send


class CountingSqs(Sqs):
    """The real SQS client, counting receives in flight at once."""

    def __init__(self, client: Any, metrics: Metrics) -> None:
        super().__init__(client, metrics)
        self.in_flight = 0
        self.most = 0
        self.reached = anyio.Event()

    async def receive(
        self, queue_url: str, max_messages: int, wait_seconds: int, visibility_timeout: int
    ) -> list[Message]:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        if self.most >= 3:
            self.reached.set()
        try:
            return await super().receive(queue_url, max_messages, wait_seconds, visibility_timeout)
        finally:
            self.in_flight -= 1


async def test_receivers_long_poll_concurrently(sqs: Any, queues: Queues) -> None:
    """With receivers=3 three long polls wait on the (empty) queue at once; a single receive
    loop would never have more than one in flight."""
    metrics = Metrics()
    counting = CountingSqs(sqs, metrics)

    async def handler(message: Message) -> None:
        raise AssertionError("the queue is empty")

    settings = ConsumerSettings(queues.main, concurrency=8, wait_time_seconds=2, receivers=3)
    consumer = Consumer(counting, unkeyed(handler), settings, metrics)
    stop = anyio.Event()
    async with anyio.create_task_group() as group:
        group.start_soon(consumer.run, stop)
        with anyio.fail_after(10):
            await counting.reached.wait()
        stop.set()
    assert counting.most == 3


class GatedDeletes(Sqs):
    """The real SQS client, whose deletes wait until the test opens the gate."""

    def __init__(self, client: Any, metrics: Metrics) -> None:
        super().__init__(client, metrics)
        self.gate = anyio.Event()

    async def delete(self, queue_url: str, messages: Sequence[Message]) -> dict[str, str]:
        await self.gate.wait()
        return await super().delete(queue_url, messages)


async def test_a_message_finished_at_shutdown_is_still_deleted(sqs: Any, queues: Queues) -> None:
    """1. One request at a time; the deleter is stuck in a DeleteMessageBatch of the first
       message (no linger: a batch of one) and its hand-off buffer (one message: the second)
       is full, so the third finished message waits to be handed over.
    2. Shutdown with no grace cancels the handlers while it waits there.
    3. The delete answers: all three messages are deleted. (A cancelled hand-off left the third
       neither deleted nor released: invisible until its timeout, its outcome sent twice.)"""
    await send(sqs, queues.main, [{"n": n} for n in range(3)])
    metrics = Metrics()
    gated = GatedDeletes(sqs, metrics)
    handled: list[str] = []
    all_handled = anyio.Event()

    async def handler(message: Message) -> None:
        handled.append(message.message_id)
        if len(handled) == 3:
            all_handled.set()

    settings = ConsumerSettings(
        queues.main, concurrency=1, wait_time_seconds=1, shutdown_grace=0, delete_linger=0
    )
    consumer = Consumer(gated, unkeyed(handler), settings, metrics)
    stop = anyio.Event()
    async with anyio.create_task_group() as group:
        group.start_soon(consumer.run, stop)
        with anyio.fail_after(20):
            await all_handled.wait()
            await anyio.wait_all_tasks_blocked()
            assert consumer.in_progress == 1  # the third, waiting to hand its message over
            stop.set()
            while consumer.receiving:  # noqa: ASYNC110  # a flag, no event to wait on
                await anyio.sleep(0.01)
            await anyio.wait_all_tasks_blocked()  # the handlers' cancellation is delivered
            gated.gate.set()
    assert await queue_counts(sqs, queues.main) == (0, 0)


async def test_read_ahead_and_queue_wait_are_exported(sqs: Any, queues: Queues) -> None:
    """One slot and three messages: while the first runs, the other two are received and held
    (orchestrator_messages_waiting 2); once all ran, none waits. Each first receipt observed
    how long its message had been on the queue."""
    metrics = Metrics()
    gate, first = anyio.Event(), anyio.Event()
    handled: list[str] = []

    async def handler(message: Message) -> None:
        first.set()
        await gate.wait()
        handled.append(message.message_id)

    def waiting() -> float | None:
        return metrics.registry.get_sample_value("orchestrator_messages_waiting")

    await send(sqs, queues.main, ["a", "b", "c"])
    settings = ConsumerSettings(queues.main, concurrency=1, wait_time_seconds=1, backlog=4)
    consumer = Consumer(Sqs(sqs, metrics), unkeyed(handler), settings, metrics)
    stop = anyio.Event()
    async with anyio.create_task_group() as group:
        group.start_soon(consumer.run, stop)
        with anyio.fail_after(10):
            await first.wait()
            while waiting() != 2:  # noqa: ASYNC110  (received by another long poll)
                await anyio.sleep(0.01)
            gate.set()
            while len(handled) < 3:  # noqa: ASYNC110
                await anyio.sleep(0.01)
        assert waiting() == 0
        stop.set()
    count = metrics.registry.get_sample_value("orchestrator_message_wait_seconds_count")
    assert count == 3
