"""Enqueueing: message groups on FIFO queues (the environment) and standard queues (the app,
the tenant of SQS fair queues), against moto's SQS."""

from __future__ import annotations

import json
from typing import Any

from orchestrator.producer import send_bodies
from orchestrator.testing import Queues, create_queues, drain


def body(request_id: str, app: str, env: str) -> str:
    params = {"AppId": app, "BackendEnvironmentName": env, "ResourceName": "r"}
    return json.dumps({"request_id": request_id, "operation": "GetBackend", "params": params})


async def groups(sqs: Any, queue_url: str, count: int) -> dict[str, str]:
    """request_id → MessageGroupId of ``count`` received messages."""
    messages = await drain(sqs, queue_url, count, attributes=True)
    return {
        json.loads(m["Body"])["request_id"]: m.get("Attributes", {}).get("MessageGroupId", "")
        for m in messages
    }


async def test_standard_queue_messages_are_grouped_by_app(sqs: Any, queues: Queues) -> None:
    """1. Valid requests carry their app as the group. 2. A body without params is still sent,
    grouped as "-" (the worker rejects it with a reason)."""
    bodies = [body("r1", "appA", "dev"), body("r2", "appB", "prod")]
    bodies.append(json.dumps({"request_id": "r3", "operation": "GetBackend"}))
    await send_bodies(queues.main, bodies)
    assert await groups(sqs, queues.main, 3) == {"r1": "appA", "r2": "appB", "r3": "-"}


async def test_fifo_queue_messages_are_grouped_by_environment(sqs: Any) -> None:
    fifo = await create_queues(sqs, fifo=True)
    await send_bodies(fifo.main, [body("r1", "appA", "dev"), body("r2", "appA", "prod")])
    assert await groups(sqs, fifo.main, 2) == {"r1": "appA/dev", "r2": "appA/prod"}
