"""Outcome events: the one message per change request that producers read back.

The JSON shape is the public contract (README, "Outcome events")::

    {"request_id": "...", "outcome": "SUCCEEDED" | "FAILED" | "REJECTED", "reason": "...",
     "error": "..." | null, "steps": [{"operation", "job_id", "status", "error",
     "started_at", "finished_at"}], "message_id": "..."}
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class Outcome(StrEnum):
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    REJECTED = "REJECTED"


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class StepRecord:
    operation: str
    job_id: str | None = None
    status: str = "PENDING"
    error: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    attempts: int = 0


@dataclass
class RequestOutcome:
    request_id: str | None
    outcome: Outcome
    reason: str = "ok"
    error: str | None = None
    steps: list[StepRecord] = field(default_factory=list)
    message_id: str | None = None

    def to_event(self) -> dict[str, Any]:
        event = asdict(self)
        event["outcome"] = str(self.outcome)
        for step in event["steps"]:
            step.pop("attempts", None)
        return event

    def to_json(self) -> str:
        return json.dumps(self.to_event(), separators=(",", ":"), sort_keys=True)
