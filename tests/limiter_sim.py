"""A deterministic simulation of AdaptiveRateLimiters sharing one token-bucket service.

Time advances in fixed steps on a manual clock; each client always has work (a saturating
closed loop), sends whenever its limiter has a token, and hears back after a latency with a
little jitter. The service is the emulator's model: a bucket of ``burst`` tokens refilled at
the current limit R (which may step during the run); a call that finds it empty is throttled.
Nothing sleeps, so a run of a minute of simulated time takes well under a second.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field

from orchestrator.ratelimit import AdaptiveRateLimiter, LimiterSettings, Ticket


class SimClock:
    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:  # pragma: no cover - never awaited here
        raise AssertionError("the simulation takes tokens synchronously")


@dataclass
class Run:
    successes: list[list[float]] = field(default_factory=list)  # per client, times
    attempts: int = 0
    throttles: int = 0

    def goodput(self, client: int, begin: float, end: float) -> float:
        return sum(1 for t in self.successes[client] if begin <= t < end) / (end - begin)


def simulate(
    plan: list[tuple[float, float]],
    end: float,
    *,
    clients: int = 1,
    starts: list[float] | None = None,
    settings: LimiterSettings | None = None,
    burst: float = 5.0,
    latency: float = 0.008,
    seed: int = 1,
    step: float = 0.001,
) -> Run:
    """``plan``: (from second, R) steps of the service's limit."""
    rng = random.Random(seed)
    clock = SimClock()
    limiters = [AdaptiveRateLimiter(settings or LimiterSettings(), clock) for _ in range(clients)]
    starts = starts or [0.0] * clients
    run = Run(successes=[[] for _ in range(clients)])
    tokens, refilled, phase, sequence = burst, 0.0, 0, 0
    replies: list[tuple[float, int, int, Ticket, bool]] = []
    for tick in range(int(end / step)):
        now = clock.t = tick * step
        while phase + 1 < len(plan) and plan[phase + 1][0] <= now:
            phase += 1
        tokens = min(burst, tokens + (now - refilled) * plan[phase][1])
        refilled = now
        while replies and replies[0][0] <= now:
            _, _, client, ticket, accepted = heapq.heappop(replies)
            if accepted:
                limiters[client].on_success(ticket)
                run.successes[client].append(now)
            else:
                limiters[client].on_throttle(ticket)
        for client, limiter in enumerate(limiters):
            if now >= starts[client]:
                while (ticket := limiter.try_acquire()) is not None:
                    accepted = tokens >= 1.0
                    tokens -= 1.0 if accepted else 0.0
                    run.attempts += 1
                    run.throttles += 0 if accepted else 1
                    sequence += 1
                    due = now + latency * (1.0 + rng.random())
                    heapq.heappush(replies, (due, sequence, client, ticket, accepted))
    return run


def settle_time(times: list[float], begin: float, end: float, rate: float) -> float | None:
    """Seconds from ``begin`` until goodput over every window up to ``end`` (2 s, or 20
    expected successes if longer) stays within 10% of ``rate``; None if it never does. The
    benchmark's adaptation measure (bench/scenarios/adaptation.py)."""
    width, settled = max(2.0, 20.0 / rate), None
    for index in reversed(range(int((end - width - begin) / 0.1) + 1)):
        start = begin + index * 0.1
        count = sum(1 for t in times if start <= t < start + width)
        if abs(count / width - rate) > 0.1 * rate:
            break
        settled = start
    return None if settled is None else settled - begin


def jain(values: list[float]) -> float:
    return sum(values) ** 2 / (len(values) * sum(v * v for v in values))
