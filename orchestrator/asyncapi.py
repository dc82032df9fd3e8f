"""The AsyncAPI 3 document of the worker's three queues: change requests in, outcome events and
dead letters out, their payloads referring to the JSON Schemas next to it."""

from __future__ import annotations

from typing import Any

_DLQ_ATTRIBUTES = {
    "reason": "why the worker dead-lettered it (a REJECTED reason or delivery_attempts_exhausted)",
    "error": "the readable error (secrets masked), at most 1024 characters",
    "request_id": "the request's id, when it could be read ('-' otherwise)",
    "source_message_id": "the MessageId it had on the change queue",
}


def _sqs_channel(address: str, message: str, queue: dict[str, Any]) -> dict[str, Any]:
    return {
        "address": address,
        "messages": {message: {"$ref": f"#/components/messages/{message}"}},
        "bindings": {"sqs": {"bindingVersion": "0.2.0", "queue": queue}},
    }


def _json_schema(name: str) -> dict[str, Any]:
    return {
        "schemaFormat": "application/schema+json;version=draft-2020-12",
        "schema": {"$ref": f"{name}"},
    }


def asyncapi_document(version: str) -> dict[str, Any]:
    """The worker's queues as AsyncAPI 3 (from the worker's point of view: it receives change
    requests and sends outcome events and dead letters)."""
    fifo_rule = (
        "On a FIFO change queue set MessageGroupId = AppId/BackendEnvironmentName of the first"
        " step (one environment's requests in order, one at a time) and MessageDeduplicationId"
        " = request_id (SQS drops a producer's retry within 5 minutes); `orchestrator send`"
        " does both. On a standard queue MessageGroupId = AppId is optional (SQS fair queues)."
    )
    dlq_headers = {
        "type": "object",
        "description": "SQS message attributes (DataType String).",
        "properties": {
            name: {"type": "string", "description": text} for name, text in _DLQ_ATTRIBUTES.items()
        },
        "required": list(_DLQ_ATTRIBUTES),
    }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "orchestrator",
            "version": version,
            "description": "Change requests for the AWS Amplify Admin API (AmplifyBackend) over"
            " SQS, with one outcome event per request.",
        },
        "defaultContentType": "application/json",
        "channels": {
            "changes": _sqs_channel(
                "{ORCHESTRATOR_QUEUE_URL}",
                "ChangeRequest",
                {
                    "name": "changes",
                    "fifoQueue": False,
                    "redrivePolicy": {
                        "deadLetterQueue": {"name": "dead-letters"},
                        "maxReceiveCount": 5,
                    },
                },
            ),
            "results": _sqs_channel(
                "{ORCHESTRATOR_RESULTS_QUEUE_URL}", "OutcomeEvent", {"name": "results"}
            ),
            "deadLetters": _sqs_channel(
                "{ORCHESTRATOR_DLQ_URL}", "DeadLetter", {"name": "dead-letters"}
            ),
        },
        "operations": {
            "receiveChangeRequest": {
                "action": "receive",
                "channel": {"$ref": "#/channels/changes"},
                "description": fifo_rule,
            },
            "sendOutcomeEvent": {
                "action": "send",
                "channel": {"$ref": "#/channels/results"},
                "description": "One per request, to the request's reply_to if it names one."
                " On a FIFO results queue: MessageGroupId 'outcome', deduplication id the"
                " body's SHA-256.",
            },
            "sendDeadLetter": {
                "action": "send",
                "channel": {"$ref": "#/channels/deadLetters"},
                "description": "The rejected (or exhausted) message's body, unchanged.",
            },
        },
        "components": {
            "messages": {
                "ChangeRequest": {
                    "name": "ChangeRequest",
                    "payload": _json_schema("change-request.schema.json"),
                },
                "OutcomeEvent": {
                    "name": "OutcomeEvent",
                    "payload": _json_schema("outcome-event.schema.json"),
                },
                "DeadLetter": {
                    "name": "DeadLetter",
                    "headers": dlq_headers,
                    "payload": {"type": "string", "description": "the original body"},
                },
            }
        },
    }
