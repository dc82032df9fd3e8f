"""Token buckets: one global bucket and one bucket per AppId, refilled from a monotonic clock.

A bucket holds at most ``burst`` tokens and gains ``rate`` tokens per second; a call takes one
token or is refused. Buckets are evaluated lazily (refill computed from the time elapsed since
the last take), so an idle emulator does no work. ``rate=None`` means unlimited: no bucket at
all. The global bucket is consulted first; a call refused by its app's bucket has still spent a
global token, as a real front door would.
"""

from __future__ import annotations

from dataclasses import dataclass

GLOBAL = "global"
APP = "app"


@dataclass(slots=True)
class TokenBucket:
    rate: float
    burst: int
    tokens: float = 0.0
    stamp: float = 0.0

    @classmethod
    def full(cls, rate: float, burst: int, now: float) -> TokenBucket:
        return cls(rate=float(rate), burst=int(burst), tokens=float(burst), stamp=now)

    def try_take(self, now: float) -> bool:
        """Take one token if there is one (after refilling up to ``now``)."""
        elapsed = now - self.stamp
        if elapsed > 0:
            self.tokens = min(float(self.burst), self.tokens + elapsed * self.rate)
            self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class RateLimiter:
    """The global and per-app limits of one emulator configuration."""

    def __init__(
        self,
        rate: float | None,
        burst: int,
        per_app_rate: float | None,
        per_app_burst: int,
        now: float,
    ) -> None:
        self._global = TokenBucket.full(rate, burst, now) if rate is not None else None
        self._app_rate = per_app_rate
        self._app_burst = per_app_burst
        self._apps: dict[str, TokenBucket] = {}

    def refused(self, app_id: str | None, now: float) -> str | None:
        """The limit type ("global"/"app") refusing a call now, or None when it may proceed."""
        if self._global is not None and not self._global.try_take(now):
            return GLOBAL
        if self._app_rate is None or app_id is None:
            return None
        bucket = self._apps.get(app_id)
        if bucket is None:
            bucket = self._apps[app_id] = TokenBucket.full(self._app_rate, self._app_burst, now)
        return None if bucket.try_take(now) else APP
