"""Enqueueing change requests (``orchestrator send``, the demo, tests and benchmarks).

On a FIFO queue each message gets ``MessageGroupId = AppId/BackendEnvironmentName`` of its first
step (so SQS itself serialises one environment's requests across replicas) and
``MessageDeduplicationId = request_id``. On a standard queue it gets ``MessageGroupId = AppId``:
the tenant of SQS fair queues, which deliver a quiet app's messages ahead of a flooding app's
backlog (no ordering, no deduplication on a standard queue).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from aiobotocore.session import get_session

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


def _entry(index: int, body: str, fifo: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {"Id": str(index), "MessageBody": body}
    if fifo:
        entry["MessageGroupId"] = group_id(body)
        entry["MessageDeduplicationId"] = json.loads(body)["request_id"]
    else:
        entry["MessageGroupId"] = tenant_id(body)
    return entry


async def send_bodies(queue_url: str, bodies: Sequence[str]) -> int:
    """Send message bodies in batches of 10; raise if SQS refuses any of them."""
    fifo = queue_url.endswith(".fifo")
    async with get_session().create_client("sqs") as sqs:
        for start in range(0, len(bodies), MAX_BATCH):
            chunk = bodies[start : start + MAX_BATCH]
            entries = [_entry(i, body, fifo) for i, body in enumerate(chunk)]
            response = await sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
            if response.get("Failed"):
                raise RuntimeError(f"SQS refused messages: {response['Failed']}")
    return len(bodies)
