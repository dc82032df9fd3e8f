"""The one retry loop (orchestrator.backoff): numbering, budget, the wait on the injected clock."""

from __future__ import annotations

import itertools
import random

from orchestrator.backoff import RetryPolicy


class RecordingClock:
    def __init__(self) -> None:
        self.slept: list[float] = []

    def now(self) -> float:
        return sum(self.slept)

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


async def test_attempts_count_up_to_the_budget_and_wait_on_the_clock() -> None:
    """Five attempts under a budget of 5: the fifth is the last; between two, a wait on the
    injected clock (never the real one) within the capped exponential ceiling, drawn once."""
    policy = RetryPolicy(max_attempts=5, base=0.1, cap=0.3, rng=random.Random(3))
    clock, seen = RecordingClock(), []
    for attempt in policy.attempts():
        seen.append((attempt.number, attempt.last))
        if attempt.last:
            break
        assert attempt.delay == attempt.delay  # drawn once
        await attempt.backoff(clock)
    assert seen == [(1, False), (2, False), (3, False), (4, False), (5, True)]
    assert len(clock.slept) == 4
    assert all(0 <= s <= c for s, c in zip(clock.slept, [0.1, 0.2, 0.3, 0.3], strict=True))


def test_a_budget_counted_elsewhere_continues_and_none_means_no_budget() -> None:
    """`first` continues a count kept elsewhere (a step's sends, in the ledger); without a
    budget the loop never says last."""
    continued = RetryPolicy(max_attempts=8).attempts(first=7)
    assert [(a.number, a.last) for a in itertools.islice(continued, 2)] == [(7, False), (8, True)]
    endless = RetryPolicy(max_attempts=None).attempts()
    assert not any(a.last for a in itertools.islice(endless, 1000))
