"""The emulator's counters read by a scenario: attempts and throttles of an operation, and
both over time (:class:`StatsSampler`, sampled in the background by :func:`sampling`)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from bench.harness.measure import since
from bench.harness.processes import EmulatorProcess


def throttle_counts(stats: dict[str, Any], operation: str) -> tuple[int, int]:
    """(attempts, throttled attempts) of ``operation`` in emulator stats."""
    attempts = int(stats["calls"].get(operation, 0))
    throttled = int(stats.get("throttled_by_operation", {}).get(operation, 0))
    return attempts, throttled


class StatsSampler:
    """Samples the emulator's counters every ``period`` s: attempts and throttles over time."""

    def __init__(self, emulator: EmulatorProcess, period: float = 0.5) -> None:
        self._emulator = emulator
        self._period = period
        self.samples: list[tuple[float, int, int]] = []  # (t, total calls, total throttled)

    async def run(self, start: float) -> None:
        import anyio

        while True:
            stats = await anyio.to_thread.run_sync(self._emulator.stats)
            throttled = int(sum(stats["throttled"].values()))
            self.samples.append((round(since(start), 3), int(stats["total_calls"]), throttled))
            await anyio.sleep(self._period)

    def series(self) -> dict[str, list[float]]:
        """Per-interval attempts/s and throttles/s, stamped at each interval's end."""
        t, attempts, throttles = [], [], []
        for (t0, c0, h0), (t1, c1, h1) in zip(self.samples, self.samples[1:], strict=False):
            if t1 > t0:
                t.append(t1)
                attempts.append(round((c1 - c0) / (t1 - t0), 2))
                throttles.append(round((h1 - h0) / (t1 - t0), 2))
        return {"t": t, "attempts_per_s": attempts, "throttles_per_s": throttles}


@contextlib.asynccontextmanager
async def sampling(emulator: EmulatorProcess, start: float) -> AsyncIterator[StatsSampler]:
    import anyio

    sampler = StatsSampler(emulator)
    async with anyio.create_task_group() as group:
        group.start_soon(sampler.run, start)
        try:
            yield sampler
        finally:
            group.cancel_scope.cancel()
