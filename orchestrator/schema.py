"""The producer contract, machine-readable: JSON Schema (2020-12) for change requests
(:mod:`orchestrator.requestschema`) and outcome events (:mod:`orchestrator.outcomeschema`), and
an AsyncAPI 3 document for the three queues (:mod:`orchestrator.asyncapi`), generated from
botocore's AmplifyBackend model (``orchestrator schema`` writes them to ``schema/``).
"""

from __future__ import annotations

import json
from typing import Any

from orchestrator.asyncapi import asyncapi_document
from orchestrator.outcomeschema import outcome_event_schema
from orchestrator.requestschema import change_request_schema


def documents(version: str) -> dict[str, str]:
    """File name → text of everything ``schema/`` holds."""
    return {
        "change-request.schema.json": render(change_request_schema()),
        "outcome-event.schema.json": render(outcome_event_schema()),
        "asyncapi.json": render(asyncapi_document(version)),
    }


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True) + "\n"
