"""Outcome events: the one message per change request that producers read back.

The JSON shape is the public contract (README, "Outcome events")::

    {"request_id": "...", "outcome": "SUCCEEDED" | "FAILED" | "REJECTED", "reason": "...",
     "error": "..." | null, "steps": [{"operation", "job_id", "status", "error",
     "started_at", "finished_at"}], "message_id": "..."}
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class Outcome(StrEnum):
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    REJECTED = "REJECTED"


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


#: Phases of a step in the ledger: PENDING → DISPATCHING (about to call) → DISPATCHED (the
#: call answered; job_id known) → DONE (terminal status recorded).
PENDING, DISPATCHING, DISPATCHED, DONE = "PENDING", "DISPATCHING", "DISPATCHED", "DONE"
_PUBLIC_STEP_FIELDS = ("operation", "job_id", "status", "error", "started_at", "finished_at")


@dataclass
class StepRecord:
    operation: str
    job_id: str | None = None
    status: str = "PENDING"
    error: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    attempts: int = 0
    phase: str = PENDING
    environment: str | None = None
    dispatch_began: float | None = None
    #: Set when the worker let go of the step while DISPATCHING (shutdown, an error): any job its
    #: call made was created before this time, while it held the environment's lease.
    dispatch_until: float | None = None

    def public(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _PUBLIC_STEP_FIELDS}


@dataclass
class RequestOutcome:
    request_id: str | None
    outcome: Outcome
    reason: str = "ok"
    error: str | None = None
    steps: list[StepRecord] = field(default_factory=list)
    message_id: str | None = None

    def to_event(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "outcome": str(self.outcome),
            "reason": self.reason,
            "error": self.error,
            "steps": [step.public() for step in self.steps],
            "message_id": self.message_id,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_event(), separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> RequestOutcome:
        event = json.loads(text)
        steps = [StepRecord(**step) for step in event.pop("steps")]
        return cls(**{**event, "outcome": Outcome(event["outcome"]), "steps": steps})
