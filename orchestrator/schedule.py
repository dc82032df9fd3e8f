"""When to look at a job next: learned from how long the operation's jobs have taken.

Each operation keeps its last :data:`KEEP` job durations (bounded memory, newest replace
oldest). With fewer than :data:`MIN_SAMPLES` of them the schedule is geometric in the job's age
(``age * age_factor``): a fresh job is looked at soon, a long one rarely. Once learned, checks
go where jobs of the operation have finished: at the quantiles :data:`GRID` of the durations
seen, so a typical job is looked at about a dozen times whatever its length, and its end is
noticed within one quantile step. Past the longest duration seen, the geometric schedule
takes over again. Every gap is kept within ``[sweep_min, sweep_max]``, so detection never
waits longer than ``sweep_max`` and a job is never polled faster than ``sweep_min``.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from dataclasses import dataclass

from orchestrator import defaults

KEEP = 128
MIN_SAMPLES = 8
GRID = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)


@dataclass(frozen=True)
class ScheduleSettings:
    sweep_min: float = defaults.SWEEP_MIN
    sweep_max: float = defaults.SWEEP_MAX
    age_factor: float = 0.25


class Durations:
    """Job durations per operation, and the next check of a job from them."""

    def __init__(self, settings: ScheduleSettings) -> None:
        self._s = settings
        self._seen: dict[str, deque[float]] = {}
        self._grid: dict[str, list[float]] = {}

    def observe(self, operation: str, seconds: float) -> None:
        seen = self._seen.setdefault(operation, deque(maxlen=KEEP))
        seen.append(max(0.0, seconds))
        self._grid.pop(operation, None)

    def learned(self, operation: str) -> int:
        return len(self._seen.get(operation, ()))

    def next_check(self, operation: str, age: float) -> float:
        """Seconds from now to the next look at a job of ``operation`` that is ``age`` old."""
        s = self._s
        gap = self._planned(operation, age)
        return min(s.sweep_max, max(s.sweep_min, gap))

    def _planned(self, operation: str, age: float) -> float:
        grid = self._quantiles(operation)
        if grid:
            index = bisect.bisect_left(grid, age + self._s.sweep_min)
            if index < len(grid):
                return grid[index] - age
        return age * self._s.age_factor

    def _quantiles(self, operation: str) -> list[float]:
        grid = self._grid.get(operation)
        if grid is None:
            seen = sorted(self._seen.get(operation, ()))
            if len(seen) < MIN_SAMPLES:
                return []
            last = len(seen) - 1
            grid = sorted({seen[round(q * last)] for q in GRID})
            self._grid[operation] = grid
        return grid


def coalesce(deadline: float, interval: float, slack: float = 0.1) -> float:
    """Timer coalescing: ``deadline`` moved to the nearest multiple of a step (the power of two
    nearest below ``slack * interval``), at most half a step away. Environments whose sweeps
    fall due within one step then sweep together, and calls made together cost a fraction of
    the CPU of the same calls made one at a time (``python -m bench.call_shape``)."""
    if slack * interval <= 0:
        return deadline
    step = 2.0 ** math.floor(math.log2(slack * interval))
    return round(deadline / step) * step
