"""Adaptive client-side rate limiter shared by every task that calls AmplifyBackend.

A token bucket refilled at the current rate, waiters served FIFO; the rate adapts CUBIC-style:
cut to ``beta`` × what the service was accepting on a throttle, grown back (absolute, cubic in
the time since the cut) on success, doubled in slow start. ``acquire(key)`` with ``fair_keys``
takes apps round-robin. The design, the adaptation rules and why these numbers:
docs/ratelimit.md.
"""

from __future__ import annotations

import contextlib
from collections import deque
from dataclasses import dataclass

import anyio

from orchestrator import defaults
from orchestrator.clock import Clock, MonotonicClock
from orchestrator.keyed import KeyedTurns


@dataclass(frozen=True)
class LimiterSettings:
    initial_rate: float = defaults.INITIAL_RATE
    min_rate: float = 0.5
    max_rate: float = defaults.MAX_RATE
    burst: float = 1.0
    beta: float = 0.85
    cubic_c: float = 0.5
    window: float = 1.0
    accepted_window: float = 2.0
    fast_convergence: bool = True
    convergence_margin: float = 0.05
    rise_margin: float = 0.5
    min_samples: int = 10
    fair_keys: bool = defaults.APP_FAIRNESS


@dataclass(frozen=True)
class Ticket:
    """Proof of one permitted call: when it was sent and how long it waited."""

    sent_at: float
    waited: float


class AdaptiveRateLimiter:
    def __init__(self, settings: LimiterSettings | None = None, clock: Clock | None = None):
        self._s = settings or LimiterSettings()
        self._clock = clock or MonotonicClock()
        self._lock = anyio.Lock()
        self._turns: KeyedTurns[str] = KeyedTurns()
        self._rate = self._s.initial_rate
        self._tokens = self._s.burst
        self._refilled_at = self._clock.now()
        self._w_max = self._rate
        self._k = 0.0
        self._cut_at: float | None = None
        self._ramped = False
        self._started = self._clock.now()
        self._sends: deque[float] = deque()
        self._successes: deque[float] = deque()  # over accepted_window
        self._recent: deque[float] = deque()  # over window
        self.waiting = 0
        self.throttles = 0
        self.cuts = 0

    @property
    def rate(self) -> float:
        return self._rate

    async def acquire(self, key: str = "") -> Ticket:
        start = self._clock.now()
        self.waiting += 1
        turn: contextlib.AbstractAsyncContextManager[None] = (
            self._turns.turn(key) if self._s.fair_keys else contextlib.nullcontext()
        )
        try:
            async with turn, self._lock:
                while (ticket := self.try_acquire()) is None:
                    await self._clock.sleep((1.0 - self._tokens) / self._rate)
        finally:
            self.waiting -= 1
        return Ticket(sent_at=ticket.sent_at, waited=ticket.sent_at - start)

    def try_acquire(self) -> Ticket | None:
        """A ticket if a token is free now, else None: :meth:`acquire`'s one step, under its
        lock. Called directly it never waits and ignores queued waiters, so only by a caller
        that does not mix it with :meth:`acquire` (the tick simulation in tests)."""
        now = self._clock.now()
        if not self._take(now):
            return None
        self._record_send(now)
        return Ticket(sent_at=now, waited=0.0)

    def _take(self, now: float) -> bool:
        self._refill(now)
        if self._tokens < 1.0 - 1e-9:
            return False
        self._tokens -= 1.0
        return True

    def _refill(self, now: float) -> None:
        elapsed = max(0.0, now - self._refilled_at)
        self._tokens = min(self._s.burst, self._tokens + elapsed * self._rate)
        self._refilled_at = now

    def _record_send(self, now: float) -> None:
        self._sends.append(now)
        _trim(self._sends, now - self._s.window)

    def measured_rate(self) -> float:
        return _trim(self._sends, self._clock.now() - self._s.window) / self._s.window

    def accepted_rate(self, window: float | None = None) -> float:
        """Successes per second over ``window`` (``accepted_window`` by default; ``window``
        of the settings otherwise), or since the start if that is shorter."""
        now = self._clock.now()
        long = window is None or window >= self._s.accepted_window
        span = min(self._s.accepted_window if long else self._s.window, now - self._started)
        if span <= 0:
            return 0.0
        return _trim(self._successes if long else self._recent, now - span) / span

    def _estimate(self) -> tuple[float, bool]:
        """What the service is accepting from us now, and whether that was measured from its
        acceptances: the allowed rate, lowered to the rate sent when the callers did not use
        it, and to the rate accepted over ``accepted_window`` (over ``window`` during and right
        after slow start, when the longer window still holds the slower past) once that holds
        enough successes to be a measure."""
        estimate = self._rate
        sent = self.measured_rate()
        if sent < 0.5 * estimate:
            estimate = sent
        window = self._s.window if (self._cut_at is None or self._ramped) else None
        accepted = self.accepted_rate(window)
        span = self._s.window if window is not None else self._s.accepted_window
        if accepted * span < self._s.min_samples:
            return estimate, False
        return min(estimate, accepted), True

    def on_throttle(self, ticket: Ticket) -> bool:
        """Record a throttle; returns True when it cut the rate (a new congestion episode)."""
        self.throttles += 1
        if self._cut_at is not None and ticket.sent_at < self._cut_at:
            return False
        now = self._clock.now()
        self._refill(now)
        estimate, measured = self._estimate()
        estimate = max(self._s.min_rate, estimate)
        if self._cut_at is None:
            # Leaving slow start: the accepted rate over the short window lags a fast ramp, so
            # it is a lower bound of the limit: keep it as the rate and aim the recovery above
            # it (without enough acceptances to measure, cut as usual).
            self._w_max = estimate / self._s.beta
            self._set_rate(estimate if measured else estimate * self._s.beta)
            self._ramped = True
        else:
            lost = estimate < self._w_max * (1.0 - self._s.convergence_margin)
            if self._s.fast_convergence and lost and not self._ramped:
                self._w_max = estimate * (1.0 + self._s.beta) / 2.0
            else:
                self._w_max = estimate
            self._set_rate(estimate * self._s.beta)
            self._ramped = False
        self._k = (max(0.0, self._w_max - self._rate) / self._s.cubic_c) ** (1.0 / 3.0)
        self._tokens = min(self._tokens, 0.0)
        self._cut_at = now
        self.cuts += 1
        return True

    def on_success(self, ticket: Ticket) -> None:
        now = self._clock.now()
        self._successes.append(now)
        self._recent.append(now)
        if self._cut_at is None:
            if self.measured_rate() >= 0.9 * self._rate:
                self._set_rate(self._rate * 2.0)
            return
        since = now - self._cut_at
        if since > self._k and self._limit_rose():
            self._cut_at = None  # back to slow start until the next throttle
            return
        self._set_rate(self._cubic(since))

    def _limit_rose(self) -> bool:
        """The service accepted clearly more than the rate that was last throttled."""
        threshold = (1.0 + self._s.rise_margin) * self._w_max
        return self.accepted_rate(self._s.window) >= threshold

    def _cubic(self, t: float) -> float:
        return self._w_max + self._s.cubic_c * (t - self._k) ** 3

    def _set_rate(self, rate: float) -> None:
        self._refill(self._clock.now())
        self._rate = min(self._s.max_rate, max(self._s.min_rate, rate))


def _trim(times: deque[float], horizon: float) -> int:
    """Drop the times before ``horizon``; how many are left."""
    while times and times[0] < horizon:
        times.popleft()
    return len(times)
