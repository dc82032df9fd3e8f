"""The SQS consumer: long polling with backpressure, a visibility heartbeat, batched deletes.

* ``receivers`` loops receive concurrently (long poll, up to 10 each, never more than free
  capacity in total; several read a deep queue faster) only while fewer than
  ``concurrency`` requests are in progress plus at most ``backlog`` received messages waiting
  for a slot (and less than ``backlog_bytes`` of their bodies): a full worker stops receiving.
  Slots are granted max-min fairly between apps (:class:`orchestrator.fairness.FairSlots`), so
  one app's flood cannot hold every slot while another app's messages wait.
* One heartbeat task extends every in-progress message's visibility (batches of 10) every
  third of the visibility timeout, for as long as its request runs, including job waits.
* A message is deleted (batched: up to 10, or what finished within ``delete_linger``) only
  after its handler returned, i.e. after the outcome event was sent. A handler cancelled at
  shutdown releases its message (visibility 0) instead.
* Shutdown: stop receiving (a long poll in flight completes and its messages are released at
  once rather than left invisible), let handlers run for ``shutdown_grace`` from the signal,
  cancel the rest (they release their messages), flush deletes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from orchestrator import defaults, logs
from orchestrator.backoff import RetryPolicy
from orchestrator.clock import Clock, MonotonicClock
from orchestrator.delivery import Prepare
from orchestrator.errors import OrchestratorError, SlotsClosed
from orchestrator.fairness import FairSlots
from orchestrator.metrics import Metrics
from orchestrator.sqs import MAX_BATCH, Message, Sqs, failed_messages

log = logs.get_logger("orchestrator.consumer")
T = TypeVar("T")


@dataclass(frozen=True)
class ConsumerSettings:
    queue_url: str
    concurrency: int = defaults.CONCURRENCY
    visibility_timeout: int = defaults.VISIBILITY_TIMEOUT
    wait_time_seconds: int = defaults.WAIT_TIME_SECONDS
    shutdown_grace: float = defaults.SHUTDOWN_GRACE
    #: How long a finished message waits for others to share its DeleteMessageBatch call.
    delete_linger: float = 0.5
    error_backoff_cap: float = 5.0
    #: Concurrent long polls (more read a deep queue faster, e.g. past one app's flood).
    receivers: int = defaults.RECEIVERS
    #: Per-app fairness: run slots shared max-min fairly between apps.
    fair: bool = defaults.APP_FAIRNESS
    #: Received messages that may wait for a run slot (0 with ``fair`` off).
    backlog: int = defaults.FAIR_BACKLOG
    backlog_bytes: int = 32 * 2**20


class Consumer:
    def __init__(
        self,
        sqs: Sqs,
        prepare: Prepare,
        settings: ConsumerSettings,
        metrics: Metrics,
        clock: Clock | None = None,
    ):
        self._sqs = sqs
        self._clock = clock or MonotonicClock()
        self._prepare = prepare
        self._s = settings
        self._metrics = metrics
        backlog = settings.backlog if settings.fair else 0
        self._slots = anyio.Semaphore(settings.concurrency + backlog)  # receiving
        # A failing receive waits up to 2, 4, 8 ... s (jittered, capped) before the next; a
        # message whose handler failed comes back after 2**receive_count s, at most the
        # visibility timeout (and 1024 s).
        self._receive_backoff = RetryPolicy(None, base=2.0, cap=settings.error_backoff_cap)
        self._release_backoff = RetryPolicy(
            None, base=2.0, cap=min(settings.visibility_timeout, 1024)
        )
        self._run_slots = FairSlots(settings.concurrency, fair=settings.fair)  # running
        self._in_progress: dict[str, Message] = {}
        self._unstarted: set[str] = set()  # received, waiting for a run slot (read-ahead)
        self._idle = anyio.Event()
        self._idle.set()
        send, receive = anyio.create_memory_object_stream[Message](settings.concurrency)
        self._to_delete: MemoryObjectSendStream[Message] = send
        self._deletions: MemoryObjectReceiveStream[Message] = receive
        self._deletions_flushed = anyio.Event()
        self.receiving = False
        self.sqs_ok = False
        metrics.messages_waiting.set_function(self._waiting)

    def _waiting(self) -> float:
        """Messages received and not yet started (read-ahead)."""
        return len(self._unstarted)

    @property
    def in_progress(self) -> int:
        return len(self._in_progress)

    async def run(self, stop: anyio.Event) -> None:
        """Consume until ``stop`` is set, then drain within the grace period."""
        try:
            await self._run(stop)
        finally:  # on every exit path, so that no stream is left holding messages
            self._to_delete.close()

    async def _run(self, stop: anyio.Event) -> None:
        async with anyio.create_task_group() as services:
            services.start_soon(self._heartbeat)
            services.start_soon(self._delete_batches)
            async with anyio.create_task_group() as handlers:
                async with anyio.create_task_group() as receiving:
                    for _ in range(self._s.receivers):
                        receiving.start_soon(self._receive_loop, handlers, stop)
                    await stop.wait()
                    drain_until = anyio.current_time() + self._s.shutdown_grace
                    # A long poll in flight is not cancelled (its messages would stay invisible
                    # for the visibility timeout); the loop ends after it and releases them.
                    receiving.cancel_scope.deadline = (
                        anyio.current_time() + self._s.wait_time_seconds + 2
                    )
                self.receiving = False
                self._run_slots.close()  # messages still waiting for a slot are released now
                self._metrics.ready.set(0)
                log.info("draining", in_progress=self.in_progress, grace=self._s.shutdown_grace)
                with anyio.move_on_after(max(0.0, drain_until - anyio.current_time())):
                    await self._idle.wait()
                handlers.cancel_scope.cancel()
            self._to_delete.close()
            with anyio.move_on_after(10):
                await self._deletions_flushed.wait()
            services.cancel_scope.cancel()

    async def _receive_loop(self, handlers: TaskGroup, stop: anyio.Event) -> None:
        self.receiving = True
        failures = self._receive_backoff.attempts()  # since the last receive that worked
        while (slots := await _unless_set(stop, self._take_slots)) is not None:
            try:
                messages = await self._sqs.receive(
                    self._s.queue_url, slots, self._s.wait_time_seconds, self._s.visibility_timeout
                )
            except OrchestratorError as exc:
                self._give_back(slots)
                failed = next(failures)
                self.sqs_ok = False
                self._metrics.ready.set(0)
                log.warning("receive_failed", error=str(exc), failures=failed.number)
                await _unless_set(stop, failed.backoff, self._clock)
                continue
            failures, self.sqs_ok = self._receive_backoff.attempts(), True
            self._metrics.ready.set(1)
            self._give_back(slots - len(messages))
            if stop.is_set():
                await self._release_unstarted(messages)
                return
            for message in messages:
                self._start(handlers, message)

    async def _release_unstarted(self, messages: list[Message]) -> None:
        self._give_back(len(messages))
        for message in messages:
            await self._release(message)

    async def _take_slots(self) -> int:
        await self._run_slots.backlog_below(self._s.backlog_bytes)
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
        self._unstarted.add(message.message_id)
        self._idle = anyio.Event() if len(self._in_progress) == 1 else self._idle
        handlers.start_soon(self._handle, message, name=f"message {message.message_id}")

    async def _handle(self, message: Message) -> None:
        try:
            delivery = self._prepare(message)
            async with self._run_slots.slot(delivery.fairness_key, len(message.body)):
                self._unstarted.discard(message.message_id)
                await delivery.run()
        except SlotsClosed:  # shutdown before it started: back on the queue at once
            with anyio.CancelScope(shield=True):
                await self._release(message)
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                await self._release(message)
            raise
        except Exception as exc:  # a failed handler must never stop the worker
            # A dependency outage (SQS, the ledger) or a bug: the message comes back after a
            # backoff, and SQS's redrive policy moves it to the DLQ if it keeps failing.
            if isinstance(exc, OrchestratorError):
                log.warning("handler_deferred", message_id=message.message_id, error=str(exc))
            else:
                log.exception("handler_failed", message_id=message.message_id)
            with anyio.CancelScope(shield=True):
                await self._release(message, self._retry_delay(message))
        else:
            # Shielded: the outcome is out, so a shutdown cancelling here must not leave the
            # message neither deleted nor released (invisible until its timeout, then its
            # outcome sent a second time).
            with anyio.CancelScope(shield=True):
                await self._to_delete.send(message)
        finally:
            self._unstarted.discard(message.message_id)
            self._in_progress.pop(message.message_id, None)
            self._slots.release()
            if not self._in_progress:
                self._idle.set()

    def _retry_delay(self, message: Message) -> int:
        return int(self._release_backoff.ceiling(message.receive_count))

    async def _release(self, message: Message, delay: int = 0) -> None:
        try:
            await self._sqs.release(self._s.queue_url, message, delay)
            log.info("message_released", message_id=message.message_id, visible_in=delay)
        except OrchestratorError as exc:
            log.warning("release_failed", message_id=message.message_id, error=str(exc))

    async def _heartbeat(self) -> None:
        period = max(1.0, self._s.visibility_timeout / 3)
        while True:
            await self._clock.sleep(period)
            batch = list(self._in_progress.values())
            for start in range(0, len(batch), MAX_BATCH):
                await self._extend(batch[start : start + MAX_BATCH])

    async def _extend(self, batch: list[Message]) -> None:
        try:
            failed = await self._sqs.extend(self._s.queue_url, batch, self._s.visibility_timeout)
        except OrchestratorError as exc:
            log.warning("visibility_extension_failed", messages=len(batch), error=str(exc))
            return
        for message, why in failed_messages(batch, failed):
            log.warning("visibility_extension_failed", message_id=message.message_id, error=why)

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
        for message, why in failed_messages(batch, failed):
            log.error("delete_failed", message_id=message.message_id, error=why)


async def _unless_set(stop: anyio.Event, wait: Callable[..., Awaitable[T]], *args: Any) -> T | None:
    """``await wait(*args)``, given up (returning None) as soon as ``stop`` is set."""
    result: T | None = None
    async with anyio.create_task_group() as group:

        async def watch() -> None:
            await stop.wait()
            group.cancel_scope.cancel()

        group.start_soon(watch)
        result = await wait(*args)
        group.cancel_scope.cancel()
    return result
