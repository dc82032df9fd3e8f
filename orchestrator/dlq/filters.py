"""What an operator selects for a redrive (:class:`Filters`): by ``reason`` (``none``: moved by
SQS itself), by request id, and by age (``--older-than``/``--newer-than``, both strict; a
message without a SentTimestamp matches no age filter)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orchestrator.dlq.message import NO_REASON, DeadLetter


@dataclass(frozen=True)
class Filters:
    reasons: frozenset[str] = frozenset()
    request_ids: frozenset[str] = frozenset()
    older_than: float | None = None
    newer_than: float | None = None

    @property
    def active(self) -> bool:
        return bool(self.reasons or self.request_ids) or self._by_age

    @property
    def _by_age(self) -> bool:
        return self.older_than is not None or self.newer_than is not None

    def matches(self, message: DeadLetter, now: float) -> bool:
        if self.reasons and (message.reason or NO_REASON) not in self.reasons:
            return False
        if self.request_ids and message.request_id not in self.request_ids:
            return False
        age = message.age(now)
        if age is None:
            return not self._by_age
        if self.older_than is not None and age <= self.older_than:
            return False
        return self.newer_than is None or age < self.newer_than

    def describe(self) -> dict[str, Any]:
        described = {
            "reason": sorted(self.reasons),
            "request_id": sorted(self.request_ids),
            "older_than_s": self.older_than,
            "newer_than_s": self.newer_than,
        }
        return {name: value for name, value in described.items() if value not in (None, [])}
