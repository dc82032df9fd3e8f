"""Per-app fairness: one app's flood must not starve another app's requests.

A worker serves many apps from one queue, one set of request slots and one rate limiter. Without
care, an app that enqueues 2,000 requests holds every slot and every place in the limiter's
queue, and another app's request waits behind all of them. Two mechanisms prevent that:

* :class:`FairSlots` (used by the consumer): the ``concurrency`` request slots are granted
  **max-min fairly** among apps: when a slot frees, it goes to the waiting app that holds the
  fewest slots (ties: the longest-waiting request). The consumer receives ahead of free slots
  (a bounded *backlog* of messages received but not started, heartbeated like the others), so it
  can see past one app's flood to the other apps' messages behind it; the backlog is bounded in
  messages and in body bytes, and released at once at shutdown.
* :class:`~orchestrator.keyed.KeyedTurns` (used by the rate limiter): at most one call per
  app waits in the limiter's FIFO at a time; the others wait behind it in their app's own
  FIFO, so tokens go to apps round-robin.

A message's app is its parsed request's (:meth:`orchestrator.processor.RequestProcessor.prepare`
reads the body once, on receipt; a body to be rejected gets the empty key).
"""

from __future__ import annotations

import contextlib
import itertools
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import anyio

from orchestrator.errors import SlotsClosed


@dataclass(eq=False)
class _Waiter:
    key: str
    order: int
    size: int
    event: anyio.Event = field(default_factory=anyio.Event)
    granted: bool = False


class FairSlots:
    """``capacity`` slots granted max-min fairly among keys, with a bounded waiting backlog."""

    def __init__(self, capacity: int, *, fair: bool = True) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = capacity
        self._fair = fair
        self._running: dict[str, int] = {}
        self._waiting: dict[str, deque[_Waiter]] = {}
        self._order = itertools.count()
        self._closed = False
        self.waiting = 0
        self.waiting_bytes = 0
        self._shrunk = anyio.Event()

    @property
    def in_use(self) -> int:
        return sum(self._running.values())

    def running(self, key: str) -> int:
        return self._running.get(key, 0)

    async def backlog_below(self, limit: int) -> None:
        """Return once the bodies waiting for a slot total less than ``limit`` bytes."""
        while self.waiting_bytes >= limit and not self._closed:
            self._shrunk = anyio.Event()
            await self._shrunk.wait()

    @contextlib.asynccontextmanager
    async def slot(self, key: str, size: int = 0) -> AsyncIterator[None]:
        """Hold one slot for ``key`` (waiting for it counts ``size`` bytes in the backlog)."""
        await self.acquire(key, size)
        try:
            yield
        finally:
            self.release(key)

    async def acquire(self, key: str, size: int = 0) -> None:
        if self._closed:
            raise SlotsClosed("no new requests start during shutdown")
        if self.in_use < self.capacity and not self.waiting:
            self._take(key)
            return
        waiter = _Waiter(key, next(self._order), size)
        self._waiting.setdefault(key, deque()).append(waiter)
        self.waiting += 1
        self.waiting_bytes += size
        try:
            await waiter.event.wait()
        except BaseException:
            if waiter.granted:
                self.release(key)
            else:
                self._unqueue(waiter)
            raise
        if not waiter.granted:
            raise SlotsClosed("no new requests start during shutdown")

    def release(self, key: str) -> None:
        left = self._running.get(key, 0) - 1
        if left > 0:
            self._running[key] = left
        else:
            self._running.pop(key, None)
        self._grant()

    def close(self) -> None:
        """Refuse new acquisitions and wake every waiter with :class:`SlotsClosed`."""
        self._closed = True
        for queue in self._waiting.values():
            for waiter in queue:
                waiter.event.set()
        self._waiting.clear()
        self.waiting = 0
        self.waiting_bytes = 0
        self._shrunk.set()

    def _take(self, key: str) -> None:
        self._running[key] = self._running.get(key, 0) + 1

    def _grant(self) -> None:
        while self.in_use < self.capacity and self._waiting:
            waiter = self._next()
            self._unqueue(waiter)
            waiter.granted = True
            self._take(waiter.key)
            waiter.event.set()

    def _next(self) -> _Waiter:
        heads = (queue[0] for queue in self._waiting.values())
        if not self._fair:
            return min(heads, key=lambda w: w.order)
        return min(heads, key=lambda w: (self._running.get(w.key, 0), w.order))

    def _unqueue(self, waiter: _Waiter) -> None:
        queue = self._waiting.get(waiter.key)
        if queue is None or waiter not in queue:
            return
        queue.remove(waiter)
        if not queue:
            del self._waiting[waiter.key]
        self.waiting -= 1
        self.waiting_bytes -= waiter.size
        self._shrunk.set()
