"""Adaptive client-side rate limiter shared by every task that calls AmplifyBackend.

Pacing: a token bucket (capacity ``burst``) refilled at the current ``rate``; waiters queue
FIFO behind one lock and re-read the rate after every sleep, so a rate cut applies at once to
everybody already queued (no stale reservations turning into a retry storm).

Adaptation (CUBIC, scale-free):

* **throttled** → ``w_max = min(rate, measured)`` and ``rate = beta * w_max``. Only throttles of
  calls *sent after* the previous cut count: one congestion episode is one cut, however many
  in-flight calls it throttled.
* **success** → ``rate(t) = w_max * (1 + c * (t - K)**3)`` with ``K = cbrt((1 - beta) / c)``,
  ``t`` seconds since the cut: fast recovery towards ``w_max``, a plateau there, then an
  accelerating probe beyond it. Before the first throttle it is in slow start: the rate doubles
  each time the measured send rate reaches it.

``measured`` is the send rate over a short sliding window; using it keeps a rate that was never
reached from being "cut" to a value still above what the service accepts.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import anyio

from orchestrator.clock import Clock, MonotonicClock


@dataclass(frozen=True)
class LimiterSettings:
    initial_rate: float = 10.0
    min_rate: float = 0.5
    max_rate: float = 1000.0
    burst: float = 1.0
    beta: float = 0.7
    cubic_c: float = 0.4
    window: float = 1.0


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
        self._rate = self._s.initial_rate
        self._tokens = self._s.burst
        self._refilled_at = self._clock.now()
        self._w_max = self._rate
        self._cut_at: float | None = None
        self._sends: deque[float] = deque()
        self.waiting = 0
        self.throttles = 0
        self.cuts = 0

    @property
    def rate(self) -> float:
        return self._rate

    async def acquire(self) -> Ticket:
        start = self._clock.now()
        self.waiting += 1
        try:
            async with self._lock:
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

    def on_throttle(self, ticket: Ticket) -> bool:
        """Record a throttle; returns True when it cut the rate (a new congestion episode)."""
        self.throttles += 1
        if self._cut_at is not None and ticket.sent_at < self._cut_at:
            return False
        now = self._clock.now()
        self._refill(now)
        measured = self.measured_rate()
        self._w_max = max(self._s.min_rate, min(self._rate, measured) if measured else self._rate)
        self._set_rate(self._w_max * self._s.beta)
        self._tokens = min(self._tokens, 0.0)
        self._cut_at = now
        self.cuts += 1
        return True

    def on_success(self, ticket: Ticket) -> None:
        now = self._clock.now()
        if self._cut_at is None:
            if self.measured_rate() >= 0.9 * self._rate:
                self._set_rate(self._rate * 2.0)
            return
        self._set_rate(self._cubic(now - self._cut_at))

    def _cubic(self, t: float) -> float:
        c, beta = self._s.cubic_c, self._s.beta
        k = math.copysign(abs((1.0 - beta) / c) ** (1.0 / 3.0), 1.0 - beta)
        return self._w_max * (1.0 + c * (t - k) ** 3)

    def _set_rate(self, rate: float) -> None:
        self._refill(self._clock.now())
        self._rate = min(self._s.max_rate, max(self._s.min_rate, rate))
