"""Adaptive client-side rate limiter shared by every task that calls AmplifyBackend.

Pacing: a token bucket (capacity ``burst``) refilled at the current ``rate``; waiters queue
FIFO behind one lock and re-read the rate after every sleep, so a rate cut applies at once to
everybody already queued (no stale reservations turning into a retry storm).

Adaptation (CUBIC, RFC 8312 shape, rates in calls/s):

* **throttled** → the sending estimate ``e = min(rate, measured send rate, accepted rate)``;
  ``rate = beta * e`` and ``w_max = e`` (or ``e * (1 + beta) / 2`` when ``e`` is below the previous
  ``w_max``: *fast convergence*, a flow that had more gives some up). Only throttles of calls
  *sent after* the previous cut count: one congestion episode is one cut, however many in-flight
  calls it throttled.
* **success** → ``rate(t) = w_max + c * (t - K)**3`` with ``K = cbrt((w_max - rate_after_cut) /
  c)``, ``t`` seconds since the cut: recovery towards ``w_max``, a plateau there, then an
  accelerating probe beyond it. The growth is **absolute** (calls/s), the same for every client
  sharing a limit, so multiplicative decrease moves uncoordinated clients towards equal shares
  (a growth proportional to each client's own rate would keep an unequal split). Before the
  first throttle it is in slow start: the rate doubles each time the measured send rate reaches
  it.

``measured`` is the send rate over a short sliding window and ``accepted`` the success rate over
a longer one (the service's burst allowance amortised): a cut starts from what the service
actually accepted, not from a rate that was never reached, so the plateau sits at the limit
instead of above it and probing (hence throttling) is rare.

Fairness between apps (``fair_keys``): ``acquire(key)`` lets one task per key at a time into the
FIFO, so tokens go to keys round-robin and one app's flood cannot queue ahead of another app's
call (:class:`orchestrator.fairness.KeyedTurns`).
"""

from __future__ import annotations

import contextlib
from collections import deque
from dataclasses import dataclass

import anyio

from orchestrator.clock import Clock, MonotonicClock
from orchestrator.fairness import KeyedTurns


@dataclass(frozen=True)
class LimiterSettings:
    initial_rate: float = 10.0
    min_rate: float = 0.5
    max_rate: float = 1000.0
    burst: float = 1.0
    beta: float = 0.8
    cubic_c: float = 1.0
    window: float = 1.0
    accepted_window: float = 5.0
    fast_convergence: bool = True
    fair_keys: bool = True


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
        self._turns = KeyedTurns()
        self._rate = self._s.initial_rate
        self._tokens = self._s.burst
        self._refilled_at = self._clock.now()
        self._w_max = self._rate
        self._k = 0.0
        self._cut_at: float | None = None
        self._started = self._clock.now()
        self._sends: deque[float] = deque()
        self._successes: deque[float] = deque()
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
                await self._take_token()
        finally:
            self.waiting -= 1
        now = self._clock.now()
        self._record_send(now)
        return Ticket(sent_at=now, waited=now - start)

    async def _take_token(self) -> None:
        while True:
            now = self._clock.now()
            self._refill(now)
            if self._tokens >= 1.0 - 1e-9:
                self._tokens -= 1.0
                return
            await self._clock.sleep((1.0 - self._tokens) / self._rate)

    def _refill(self, now: float) -> None:
        elapsed = max(0.0, now - self._refilled_at)
        self._tokens = min(self._s.burst, self._tokens + elapsed * self._rate)
        self._refilled_at = now

    def _record_send(self, now: float) -> None:
        self._sends.append(now)
        horizon = now - self._s.window
        while self._sends and self._sends[0] < horizon:
            self._sends.popleft()

    def measured_rate(self) -> float:
        return len(self._sends) / self._s.window

    def accepted_rate(self, window: float | None = None) -> float:
        """Successes per second over ``window`` (default ``accepted_window``; or since the
        start, if shorter)."""
        now = self._clock.now()
        horizon = now - self._s.accepted_window
        while self._successes and self._successes[0] < horizon:
            self._successes.popleft()
        window = self._s.accepted_window if window is None else window
        span = min(window, now - self._started)
        if span <= 0:
            return 0.0
        recent = (
            sum(1 for t in reversed(self._successes) if t >= now - window)
            if (window < self._s.accepted_window)
            else len(self._successes)
        )
        return recent / span

    def _estimate(self) -> float:
        """What the service is accepting from us now: the long-window success rate (bursts
        amortised), unless the rate moved since (a rise: then the last second's)."""
        estimate = min([self._rate] + [r for r in (self.measured_rate(),) if r > 0])
        long = self.accepted_rate()
        if long >= 0.8 * estimate:
            return min(estimate, long)
        short = self.accepted_rate(self._s.window)
        return min(estimate, short) if short > 0 else estimate

    def on_throttle(self, ticket: Ticket) -> bool:
        """Record a throttle; returns True when it cut the rate (a new congestion episode)."""
        self.throttles += 1
        if self._cut_at is not None and ticket.sent_at < self._cut_at:
            return False
        now = self._clock.now()
        self._refill(now)
        estimate = max(self._s.min_rate, self._estimate())
        converging = self._s.fast_convergence and self._cut_at is not None
        if converging and estimate < self._w_max:
            self._w_max = estimate * (1.0 + self._s.beta) / 2.0
        else:
            self._w_max = estimate
        self._set_rate(estimate * self._s.beta)
        self._k = ((self._w_max - self._rate) / self._s.cubic_c) ** (1.0 / 3.0)
        self._tokens = min(self._tokens, 0.0)
        self._cut_at = now
        self.cuts += 1
        return True

    def on_success(self, ticket: Ticket) -> None:
        now = self._clock.now()
        self._successes.append(now)
        if self._cut_at is None:
            if self.measured_rate() >= 0.9 * self._rate:
                self._set_rate(self._rate * 2.0)
            return
        self._set_rate(self._cubic(now - self._cut_at))

    def _cubic(self, t: float) -> float:
        return self._w_max + self._s.cubic_c * (t - self._k) ** 3

    def _set_rate(self, rate: float) -> None:
        self._refill(self._clock.now())
        self._rate = min(self._s.max_rate, max(self._s.min_rate, rate))
