"""Turns by key: one task per key at a time, in arrival order, for any number of keys.

``async with turns.turn(key):`` waits behind the tasks already holding or waiting for ``key``
(anyio's lock is FIFO) and admits one at a time; a key's lock exists only while some task
holds or waits for it, so a worker serving thousands of apps and environments keeps none for
the idle ones. Used in-process by the rate limiter (one waiting call per app: tokens go to apps
round-robin) and by the dispatcher (one delivery per request, one mutation per environment,
each under the lease of the same name that excludes other processes).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Hashable
from typing import Generic, TypeVar

import anyio

K = TypeVar("K", bound=Hashable)


class KeyedTurns(Generic[K]):
    def __init__(self) -> None:
        self._locks: dict[K, tuple[anyio.Lock, list[int]]] = {}

    @contextlib.asynccontextmanager
    async def turn(self, key: K) -> AsyncIterator[None]:
        lock, users = self._locks.setdefault(key, (anyio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if users[0] == 0:
                del self._locks[key]

    def __len__(self) -> int:
        """Keys held or waited for now."""
        return len(self._locks)
