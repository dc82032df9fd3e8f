"""Counters behind ``GET /_emulator/stats``: what callers asked for and what the emulator did.

Plain integers and dicts updated on the event loop thread (no locks needed); :meth:`as_dict`
gives the JSON document. Job counts by status are not kept here: the job board reports them.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from orchestrator.emulator.faults import FAULT_KINDS
from orchestrator.emulator.ratelimit import APP, GLOBAL


class Stats:
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.throttled: Counter[str] = Counter({GLOBAL: 0, APP: 0})
        self.throttled_by_operation: Counter[str] = Counter()
        self.faults: Counter[str] = Counter(dict.fromkeys(FAULT_KINDS, 0))
        self.mutations: Counter[str] = Counter()
        self.responses: Counter[str] = Counter()
        self.conflicts = 0
        self.unsigned = 0
        self.bad_requests = 0
        self.not_found = 0

    def throttle(self, operation: str, limit_type: str) -> None:
        self.throttled[limit_type] += 1
        self.throttled_by_operation[operation] += 1

    def error(self, status: int) -> None:
        if status == 400:
            self.bad_requests += 1
        elif status == 404:
            self.not_found += 1

    def as_dict(self, jobs: dict[str, int]) -> dict[str, Any]:
        return {
            "calls": dict(self.calls),
            "total_calls": sum(self.calls.values()),
            "throttled": dict(self.throttled),
            "throttled_by_operation": dict(self.throttled_by_operation),
            "faults": dict(self.faults),
            "mutations": dict(self.mutations),
            "conflicts": self.conflicts,
            "jobs": jobs,
            "unsigned": self.unsigned,
            "bad_requests": self.bad_requests,
            "not_found": self.not_found,
            "responses": dict(self.responses),
        }
