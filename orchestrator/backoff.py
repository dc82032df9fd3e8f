"""Capped exponential backoff with full jitter, the retry budget, and the one retry loop.

After failed attempt ``n`` (1-based) the wait is ``uniform(0, min(cap, base * 2**(n - 1)))``
(AWS's "full jitter": retries of many tasks spread out instead of arriving together);
:meth:`RetryPolicy.ceiling` is the bound without the jitter. ``max_attempts`` is the budget
(``None``: no budget, for loops that wait until something frees up). The random source and
the clock are injected for tests.

Every retry loop of the worker is one shape::

    for attempt in policy.attempts():
        try:
            return await operation()
        except TransientError as exc:
            if attempt.last:
                raise RetriesExhausted(...) from exc
            await attempt.backoff(clock)

Budgets nest in one place only: a tracked mutation's sends (the dispatcher's attempts, each
made only after the listing proved the previous one made no job) each go through
:class:`~orchestrator.amplify.AmplifyApi`, whose own attempts retry only failures known to have
had no effect (a throttle, a refused connection). A step therefore makes at most
``max_attempts`` sends and ``max_attempts ** 2`` HTTP requests (8 and 64 by default), and
waits at most ``max_attempts ** 2 * cap`` seconds in backoff.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from orchestrator import defaults
from orchestrator.clock import Clock, MonotonicClock

_CLOCK = MonotonicClock()


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int | None = defaults.MAX_ATTEMPTS
    base: float = defaults.BACKOFF_BASE
    cap: float = defaults.BACKOFF_CAP
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def ceiling(self, attempt: int) -> float:
        """The largest delay after failed attempt number ``attempt`` (1-based)."""
        return min(self.cap, self.base * 2.0 ** max(0, attempt - 1))

    def delay(self, attempt: int) -> float:
        return self.rng.uniform(0.0, self.ceiling(attempt))

    def should_retry(self, attempt: int) -> bool:
        return self.max_attempts is None or attempt < self.max_attempts

    def attempts(self, first: int = 1) -> Iterator[Attempt]:
        """Attempt ``first``, ``first + 1``, ... without end: the loop's body returns on
        success, and on failure raises when ``attempt.last`` or awaits ``attempt.backoff``.
        ``first`` continues a budget counted elsewhere (a step's sends, kept in the ledger)."""
        number = first
        while True:
            yield Attempt(self, number)
            number += 1


class Attempt:
    """One attempt of a retry loop: its number, whether the budget allows another, and the
    wait before the next (drawn once, when first asked for)."""

    __slots__ = ("_delay", "_policy", "number")

    def __init__(self, policy: RetryPolicy, number: int) -> None:
        self._policy = policy
        self.number = number
        self._delay: float | None = None

    @property
    def last(self) -> bool:
        return not self._policy.should_retry(self.number)

    @property
    def delay(self) -> float:
        if self._delay is None:
            self._delay = self._policy.delay(self.number)
        return self._delay

    async def backoff(self, clock: Clock = _CLOCK) -> None:
        """Wait before the next attempt."""
        await clock.sleep(self.delay)
