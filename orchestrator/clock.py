"""Time as a dependency: the real clock, and the interface tests replace with a manual one."""

from __future__ import annotations

import time
from typing import Protocol

import anyio


class Clock(Protocol):
    def now(self) -> float:
        """Monotonic seconds."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class MonotonicClock:
    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)


def wall_time() -> float:
    """Seconds since the epoch (for timestamps shown to people, never for intervals)."""
    return time.time()
