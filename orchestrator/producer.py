"""Enqueueing change requests (``orchestrator send``, the demo, tests and benchmarks).

On a FIFO queue each message gets ``MessageGroupId = AppId/BackendEnvironmentName`` of its first
step (so SQS itself serialises one environment's requests across replicas) and
``MessageDeduplicationId = request_id``. On a standard queue it gets ``MessageGroupId = AppId``:
the tenant of SQS fair queues, which deliver a quiet app's messages ahead of a flooding app's
backlog (no ordering, no deduplication on a standard queue).

When a valid span is current (a caller that traces), each message carries its ``traceparent``
(and ``tracestate``) as message attributes: the worker links its processing to that trace.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from aiobotocore.session import get_session

from orchestrator.propagation import current_carrier
from orchestrator.sqs import MAX_BATCH


def _first_params(body: str) -> dict[str, Any]:
    """The params of the first step, or {} for a body that has none (it is sent anyway: the
    worker rejects it with a reason)."""
    try:
        document = json.loads(body)
        steps = document.get("steps") or [document]
        params = steps[0].get("params")
    except (ValueError, AttributeError, IndexError, KeyError, TypeError):
        return {}
    return params if isinstance(params, dict) else {}


def group_id(body: str) -> str:
    """FIFO group: the environment of the request's first step."""
    params = _first_params(body)
    return f"{params.get('AppId', '-')}/{params.get('BackendEnvironmentName', '-')}"


def tenant_id(body: str) -> str:
    """Fair-queue tenant on a standard queue: the app of the request's first step."""
    return str(_first_params(body).get("AppId", "-"))


def _entry(index: int, body: str, fifo: bool, carrier: dict[str, str]) -> dict[str, Any]:
    entry: dict[str, Any] = {"Id": str(index), "MessageBody": body}
    if carrier:
        entry["MessageAttributes"] = {
            name: {"DataType": "String", "StringValue": value} for name, value in carrier.items()
        }
    if fifo:
        entry["MessageGroupId"] = group_id(body)
        entry["MessageDeduplicationId"] = json.loads(body)["request_id"]
    else:
        entry["MessageGroupId"] = tenant_id(body)
    return entry


def message_attributes(queue_url: str, body: str) -> dict[str, str]:
    """The MessageGroupId (and on FIFO the MessageDeduplicationId) a body is sent with."""
    entry = _entry(0, body, queue_url.endswith(".fifo"), {})
    return {key: entry[key] for key in ("MessageGroupId", "MessageDeduplicationId") if key in entry}


async def send_bodies(queue_url: str, bodies: Sequence[str]) -> list[str]:
    """Send message bodies in batches of 10; their MessageIds, in order. Raises if SQS
    refuses any of them."""
    fifo = queue_url.endswith(".fifo")
    carrier = current_carrier()
    sent: list[str] = []
    async with get_session().create_client("sqs") as sqs:
        for start in range(0, len(bodies), MAX_BATCH):
            chunk = bodies[start : start + MAX_BATCH]
            entries = [_entry(i, body, fifo, carrier) for i, body in enumerate(chunk)]
            response = await sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
            if response.get("Failed"):
                raise RuntimeError(f"SQS refused messages: {response['Failed']}")
            by_id = {item["Id"]: item["MessageId"] for item in response.get("Successful", [])}
            sent += [by_id[str(i)] for i in range(len(chunk))]
    return sent
