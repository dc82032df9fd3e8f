"""The consumer against moto's SQS: concurrent long polls."""

from __future__ import annotations

from typing import Any

import anyio

from orchestrator.consumer import Consumer, ConsumerSettings
from orchestrator.metrics import Metrics
from orchestrator.sqs import Message, Sqs
from tests.stack import Queues


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
    consumer = Consumer(counting, handler, settings, metrics)
    stop = anyio.Event()
    async with anyio.create_task_group() as group:
        group.start_soon(consumer.run, stop)
        with anyio.fail_after(10):
            await counting.reached.wait()
        stop.set()
    assert counting.most == 3
