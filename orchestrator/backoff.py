"""Capped exponential backoff with full jitter, and the retry budget.

``delay = uniform(0, min(cap, base * 2**attempt))`` (AWS's "full jitter"): retries of many
tasks spread out instead of arriving together. The random source is injected for tests.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    base: float = 0.1
    cap: float = 20.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def ceiling(self, attempt: int) -> float:
        """The largest delay after failed attempt number ``attempt`` (1-based)."""
        return min(self.cap, self.base * 2.0 ** max(0, attempt - 1))

    def delay(self, attempt: int) -> float:
        return self.rng.uniform(0.0, self.ceiling(attempt))

    def should_retry(self, attempt: int) -> bool:
        return attempt < self.max_attempts
