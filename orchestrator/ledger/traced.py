"""The ledger's writes of a request's progress in the request's trace (tracing on only)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from orchestrator.ledger.record import Ledger, LedgerRecord
from orchestrator.spans import Tracer

T = TypeVar("T")

#: A SQLite write slower than this (seconds) is an event of the request's span (a disk that
#: stalls, a lock held by another process); faster ones leave nothing.
SLOW_LOCAL_WRITE = 0.01


class TracedLedger:
    """A ledger whose writes of a request's progress (``begin``, ``save``, ``put_tag``) show in
    the request's trace: on DynamoDB each is a CLIENT span (``ledger save``: a network call
    that can be slow or throttled); on SQLite, a local write of ~0.1 ms, only a write slower
    than ``slow`` seconds is an event of the current span, with its duration (six events a
    request cost more CPU than the writes, and say nothing an on-call engineer would act on).
    Reads and leases pass straight through (a lease wait polls). Only used with tracing on."""

    def __init__(
        self, inner: Ledger, tracer: Tracer, url: str, slow: float = SLOW_LOCAL_WRITE
    ) -> None:
        self._inner = inner
        self._tracer = tracer
        self._remote = url.startswith("dynamodb://")
        self._system = "aws.dynamodb" if self._remote else "sqlite"
        self._slow = slow

    async def _write(self, operation: str, write: Callable[[], Awaitable[T]]) -> T:
        if self._remote:
            with self._tracer.ledger(operation, self._system):
                return await write()
        started = time.perf_counter()
        try:
            return await write()
        finally:
            elapsed = time.perf_counter() - started
            if elapsed >= self._slow:
                self._tracer.event(
                    f"ledger {operation}",
                    {"db.system.name": "sqlite", "duration_s": round(elapsed, 6)},
                )

    async def begin(self, request_id: str, operations: list[str]) -> LedgerRecord:
        return await self._write("begin", lambda: self._inner.begin(request_id, operations))

    async def save(self, record: LedgerRecord) -> None:
        await self._write("save", lambda: self._inner.save(record))

    async def put_tag(self, key: str, value: str, *, only_new: bool = False) -> str:
        return await self._write(
            "put_tag", lambda: self._inner.put_tag(key, value, only_new=only_new)
        )

    async def get(self, request_id: str) -> LedgerRecord | None:
        return await self._inner.get(request_id)

    async def peek(self, request_id: str) -> LedgerRecord | None:
        return await self._inner.peek(request_id)

    async def find(self, status: str | None, limit: int) -> list[LedgerRecord]:
        return await self._inner.find(status, limit)

    async def acquire_lease(self, key: str, owner: str, ttl: float) -> bool:
        return await self._inner.acquire_lease(key, owner, ttl)

    async def release_lease(self, key: str, owner: str) -> None:
        await self._inner.release_lease(key, owner)

    async def get_tag(self, key: str) -> str | None:
        return await self._inner.get_tag(key)

    async def close(self) -> None:
        await self._inner.close()


def traced(ledger: Ledger, tracer: Tracer, url: str) -> Ledger:
    """``ledger`` with its progress writes traced, or itself unchanged with tracing off."""
    return TracedLedger(ledger, tracer, url) if tracer.enabled else ledger
