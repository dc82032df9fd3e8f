"""The SQS consumer: long polling with backpressure, a visibility heartbeat, batched deletes.

* Receives (long poll, up to 10, never more than free capacity) only while fewer than
  ``concurrency`` requests are in progress: a full worker stops receiving.
* One heartbeat task extends every in-progress message's visibility (batches of 10) every
  third of the visibility timeout, for as long as its request runs, including job waits.
* A message is deleted (batched) only after its handler returned, i.e. after the outcome event
  was sent. A handler cancelled at shutdown releases its message (visibility 0) instead.
* Shutdown: stop receiving, let handlers run for ``shutdown_grace``, cancel the rest (they
  release their messages), flush deletes.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio
import structlog
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from orchestrator.errors import OrchestratorError
from orchestrator.metrics import Metrics
from orchestrator.sqs import MAX_BATCH, Message, Sqs, ids_to_messages

log = structlog.get_logger().bind(logger="orchestrator.consumer")
Handler = Callable[[Message], Awaitable[None]]


@dataclass(frozen=True)
class ConsumerSettings:
    queue_url: str
    concurrency: int = 32
    visibility_timeout: int = 60
    wait_time_seconds: int = 20
    shutdown_grace: float = 30.0
    delete_linger: float = 0.05
    error_backoff_cap: float = 20.0


class Consumer:
    def __init__(self, sqs: Sqs, handler: Handler, settings: ConsumerSettings, metrics: Metrics):
        self._sqs = sqs
        self._handler = handler
        self._s = settings
        self._metrics = metrics
        self._slots = anyio.Semaphore(settings.concurrency)
        self._in_progress: dict[str, Message] = {}
        self._idle = anyio.Event()
        self._idle.set()
        send, receive = anyio.create_memory_object_stream[Message](settings.concurrency)
        self._to_delete: MemoryObjectSendStream[Message] = send
        self._deletions: MemoryObjectReceiveStream[Message] = receive
        self._deletions_flushed = anyio.Event()
        self.receiving = False
        self.sqs_ok = False

    @property
    def in_progress(self) -> int:
        return len(self._in_progress)

    async def run(self, stop: anyio.Event) -> None:
        """Consume until ``stop`` is set, then drain within the grace period."""
        async with anyio.create_task_group() as services:
            services.start_soon(self._heartbeat)
            services.start_soon(self._delete_batches)
            async with anyio.create_task_group() as handlers:
                async with anyio.create_task_group() as receiving:
                    receiving.start_soon(self._receive_loop, handlers)
                    await stop.wait()
                    receiving.cancel_scope.cancel()
                self.receiving = False
                self._metrics.ready.set(0)
                log.info("draining", in_progress=self.in_progress, grace=self._s.shutdown_grace)
                with anyio.move_on_after(self._s.shutdown_grace):
                    await self._idle.wait()
                handlers.cancel_scope.cancel()
            self._to_delete.close()
            with anyio.move_on_after(10):
                await self._deletions_flushed.wait()
            services.cancel_scope.cancel()

    async def _receive_loop(self, handlers: TaskGroup) -> None:
        self.receiving = True
        failures = 0
        while True:
            slots = await self._take_slots()
            try:
                messages = await self._sqs.receive(
                    self._s.queue_url, slots, self._s.wait_time_seconds, self._s.visibility_timeout
                )
            except OrchestratorError as exc:
                self._give_back(slots)
                failures += 1
                self.sqs_ok = False
                self._metrics.ready.set(0)
                log.warning("receive_failed", error=str(exc), failures=failures)
                await anyio.sleep(random.uniform(0, min(self._s.error_backoff_cap, 2**failures)))
                continue
            failures, self.sqs_ok = 0, True
            self._metrics.ready.set(1)
            self._give_back(slots - len(messages))
            for message in messages:
                self._start(handlers, message)

    async def _take_slots(self) -> int:
        await self._slots.acquire()
        taken = 1
        while taken < MAX_BATCH and self._slots.value > 0:
            self._slots.acquire_nowait()
            taken += 1
        return taken

    def _give_back(self, count: int) -> None:
        for _ in range(count):
            self._slots.release()

    def _start(self, handlers: TaskGroup, message: Message) -> None:
        self._in_progress[message.message_id] = message
        self._idle = anyio.Event() if len(self._in_progress) == 1 else self._idle
        handlers.start_soon(self._handle, message, name=f"message {message.message_id}")

    async def _handle(self, message: Message) -> None:
        try:
            await self._handler(message)
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                await self._release(message)
            raise
        else:
            await self._to_delete.send(message)
        finally:
            self._in_progress.pop(message.message_id, None)
            self._slots.release()
            if not self._in_progress:
                self._idle.set()

    async def _release(self, message: Message) -> None:
        try:
            await self._sqs.release(self._s.queue_url, message)
            log.info("message_released", message_id=message.message_id)
        except OrchestratorError as exc:
            log.warning("release_failed", message_id=message.message_id, error=str(exc))

    async def _heartbeat(self) -> None:
        period = max(1.0, self._s.visibility_timeout / 3)
        while True:
            await anyio.sleep(period)
            batch = list(self._in_progress.values())
            for start in range(0, len(batch), MAX_BATCH):
                await self._extend(batch[start : start + MAX_BATCH])

    async def _extend(self, batch: list[Message]) -> None:
        try:
            failed = await self._sqs.extend(self._s.queue_url, batch, self._s.visibility_timeout)
        except OrchestratorError as exc:
            log.warning("visibility_extension_failed", messages=len(batch), error=str(exc))
            return
        for message in ids_to_messages(batch, failed):
            log.warning("visibility_extension_failed", message_id=message.message_id)

    async def _delete_batches(self) -> None:
        async with self._deletions:
            async for first in self._deletions:
                batch = [first]
                with anyio.move_on_after(self._s.delete_linger):
                    while len(batch) < MAX_BATCH:
                        try:
                            batch.append(await self._deletions.receive())
                        except anyio.EndOfStream:
                            break
                await self._delete(batch)
        self._deletions_flushed.set()

    async def _delete(self, batch: list[Message]) -> None:
        try:
            failed = await self._sqs.delete(self._s.queue_url, batch)
        except OrchestratorError as exc:
            log.error("delete_failed", messages=[m.message_id for m in batch], error=str(exc))
            return
        for message in ids_to_messages(batch, failed):
            log.error("delete_failed", message_id=message.message_id)
