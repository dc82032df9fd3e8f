"""The outcome event's JSON Schema (2020-12): one per change request, its reasons from
:mod:`orchestrator.outcome`."""

from __future__ import annotations

from typing import Any

from orchestrator import servicemodel
from orchestrator.outcome import FAILURE_REASONS, REJECTION_REASONS
from orchestrator.requestschema import BASE_URI, DIALECT


def outcome_event_schema() -> dict[str, Any]:
    operations = list(servicemodel.mutations())
    nullable_string = {"type": ["string", "null"]}
    step = {
        "type": "object",
        "properties": {
            "operation": {"enum": operations},
            "job_id": nullable_string,
            "status": {"enum": ["PENDING", "IN_PROGRESS", "COMPLETED", "FAILED", "TIMED_OUT"]},
            "error": nullable_string,
            "started_at": {**nullable_string, "format": "date-time"},
            "finished_at": {**nullable_string, "format": "date-time"},
        },
        "required": ["operation", "job_id", "status", "error", "started_at", "finished_at"],
    }
    warning = {
        "type": "object",
        "properties": {
            "step": {"type": "integer", "minimum": 0},
            "operation": {"enum": operations},
            "member": {"type": "string"},
            "replacement": nullable_string,
            "message": {"type": "string"},
        },
        "required": ["step", "operation", "member", "replacement", "message"],
    }
    return {
        "$schema": DIALECT,
        "$id": f"{BASE_URI}/outcome-event.schema.json",
        "title": "Outcome event",
        "description": "One per change request, on the results queue or the request's reply_to.",
        "type": "object",
        "properties": {
            "request_id": nullable_string,
            "outcome": {"enum": ["SUCCEEDED", "FAILED", "REJECTED"]},
            "reason": {"enum": ["ok", *FAILURE_REASONS, *REJECTION_REASONS]},
            "error": nullable_string,
            "steps": {"type": "array", "items": step},
            "message_id": nullable_string,
            "warnings": {"type": "array", "items": warning},
        },
        "required": ["request_id", "outcome", "reason", "error", "steps", "message_id"],
        "allOf": [
            {
                "if": {"properties": {"outcome": {"const": "SUCCEEDED"}}},
                "then": {"properties": {"reason": {"const": "ok"}}},
            },
            {
                "if": {"properties": {"outcome": {"const": "FAILED"}}},
                "then": {"properties": {"reason": {"enum": list(FAILURE_REASONS)}}},
            },
            {
                "if": {"properties": {"outcome": {"const": "REJECTED"}}},
                "then": {"properties": {"reason": {"enum": list(REJECTION_REASONS)}}},
            },
        ],
    }
