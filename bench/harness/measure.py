"""Measurements: per-call times, percentiles and fairness, rates in bins, a process's CPU
and memory (Linux ``/proc``)."""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass, field


@dataclass
class Calls:
    """Offer → success (or final failure) times of each call, seconds since the start."""

    offered: list[float] = field(default_factory=list)
    done: list[float] = field(default_factory=list)
    failed: int = 0

    def latencies(self) -> list[float]:
        return [d - o for o, d in zip(self.offered, self.done, strict=True)]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def jain(values: list[float]) -> float:
    total = sum(values)
    return total * total / (len(values) * sum(v * v for v in values)) if total else 0.0


def since(start: float) -> float:
    return time.perf_counter() - start


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (Linux /proc), seconds."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def bins(times: list[float], width: float, until: float) -> list[float]:
    """Events per second in consecutive bins of ``width`` seconds from 0 to ``until``."""
    counts = [0] * max(1, int(until / width) + 1)
    for t in times:
        if 0 <= t < until:
            counts[int(t / width)] += 1
    return [c / width for c in counts]
