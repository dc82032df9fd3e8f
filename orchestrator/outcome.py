"""Outcome events: the one message per change request that producers read back.

The JSON shape is the public contract (README, "Outcome events")::

    {"request_id": "...", "outcome": "SUCCEEDED" | "FAILED" | "REJECTED", "reason": "...",
     "error": "..." | null, "steps": [{"operation", "job_id", "status", "error",
     "started_at", "finished_at"}], "message_id": "...",
     "warnings": [{"step", "operation", "member", "replacement", "message"}],
     "trace_id": "..."}  # only while tracing is on (docs/tracing.md)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class Outcome(StrEnum):
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    REJECTED = "REJECTED"


#: Every reason a REJECTED outcome can carry (the change request itself is unusable).
REJECTION_REASONS = (
    "too_large",
    "invalid_json",
    "invalid_request",
    "invalid_request_id",
    "invalid_params",
    "unknown_operation",
    "not_a_mutation",
    "destructive_not_allowed",
    "deprecated_member",
    "sender_not_allowed",
)
#: Every reason a FAILED outcome can carry.
FAILURE_REASONS = (
    "client_error",
    "retries_exhausted",
    "effect_unknown",
    "job_failed",
    "job_timeout",
    "request_id_reused",
    "delivery_attempts_exhausted",
)
#: Why the worker itself moves a message to the dead-letter queue.
DLQ_REASONS = (*REJECTION_REASONS, "delivery_attempts_exhausted")


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
    #: Deprecated members the request used: ``{step, operation, member, replacement, message}``.
    warnings: list[dict[str, Any]] = field(default_factory=list)
    #: The trace of the delivery that ran the request (tracing on); absent from the event off.
    trace_id: str | None = None

    def to_event(self) -> dict[str, Any]:
        event = {
            "request_id": self.request_id,
            "outcome": str(self.outcome),
            "reason": self.reason,
            "error": self.error,
            "steps": [step.public() for step in self.steps],
            "message_id": self.message_id,
            "warnings": self.warnings,
        }
        if self.trace_id:
            event["trace_id"] = self.trace_id
        return event

    def to_json(self) -> str:
        return json.dumps(self.to_event(), separators=(",", ":"), sort_keys=True)

    def dedup_id(self) -> str:
        """FIFO deduplication id: the event's SHA-256 without ``trace_id`` (which differs
        between deliveries), so SQS drops a re-sent outcome whichever delivery re-sends it."""
        event = self.to_event()
        event.pop("trace_id", None)
        text = json.dumps(event, separators=(",", ":"), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    @classmethod
    def from_json(cls, text: str) -> RequestOutcome:
        event = json.loads(text)
        steps = [StepRecord(**step) for step in event.pop("steps")]
        return cls(**{**event, "outcome": Outcome(event["outcome"]), "steps": steps})
