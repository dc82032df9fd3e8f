"""The worker's SQS calls, with errors mapped to the orchestrator's tree and counted."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.aws import map_error, result_label
from orchestrator.metrics import Metrics

MAX_BATCH = 10


@dataclass(frozen=True)
class Message:
    message_id: str
    receipt_handle: str
    body: str
    receive_count: int = 1


class Sqs:
    def __init__(self, client: Any, metrics: Metrics) -> None:
        self._client = client
        self._metrics = metrics

    async def _call(self, method: str, **params: Any) -> dict[str, Any]:
        operation = self._client.meta.method_to_api_mapping.get(method, method)
        try:
            response: dict[str, Any] = await getattr(self._client, method)(**params)
        except Exception as exc:  # mapped at the boundary; unknown types re-raise
            error = map_error(exc)
            self._metrics.sqs_calls.labels(operation, result_label(error.reason)).inc()
            raise error from exc
        self._metrics.sqs_calls.labels(operation, "ok").inc()
        return response

    async def receive(
        self, queue_url: str, max_messages: int, wait_seconds: int, visibility_timeout: int
    ) -> list[Message]:
        response = await self._call(
            "receive_message",
            QueueUrl=queue_url,
            MaxNumberOfMessages=max_messages,
            WaitTimeSeconds=wait_seconds,
            VisibilityTimeout=visibility_timeout,
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
        )
        messages = [_message(raw) for raw in response.get("Messages", [])]
        self._metrics.receives.labels("messages" if messages else "empty").inc()
        self._metrics.messages_received.inc(len(messages))
        self._metrics.messages_per_receive.observe(len(messages))
        return messages

    async def delete(self, queue_url: str, messages: Sequence[Message]) -> list[str]:
        """Delete up to 10 messages; returns the ids that failed."""
        response = await self._call(
            "delete_message_batch", QueueUrl=queue_url, Entries=_entries(messages)
        )
        failed = [entry["Id"] for entry in response.get("Failed", [])]
        self._metrics.deletes.inc(len(messages) - len(failed))
        return failed

    async def extend(
        self, queue_url: str, messages: Sequence[Message], visibility: int
    ) -> list[str]:
        """Set the visibility timeout of up to 10 messages; returns the ids that failed."""
        entries = [{**entry, "VisibilityTimeout": visibility} for entry in _entries(messages)]
        response = await self._call(
            "change_message_visibility_batch", QueueUrl=queue_url, Entries=entries
        )
        failed = [entry["Id"] for entry in response.get("Failed", [])]
        self._metrics.visibility_extensions.labels("ok").inc(len(messages) - len(failed))
        self._metrics.visibility_extensions.labels("failed").inc(len(failed))
        return failed

    async def release(self, queue_url: str, message: Message, delay: int = 0) -> None:
        """Make a message visible again after ``delay`` seconds (at once by default)."""
        await self._call(
            "change_message_visibility",
            QueueUrl=queue_url,
            ReceiptHandle=message.receipt_handle,
            VisibilityTimeout=delay,
        )

    async def send(
        self,
        queue_url: str,
        body: str,
        attributes: Mapping[str, str] | None = None,
        *,
        group: str = "orchestrator",
    ) -> None:
        """Send one message. On a FIFO queue it goes to ``group`` with the body's SHA-256 as
        deduplication id, so an identical re-sent outcome event is dropped by SQS itself."""
        params: dict[str, Any] = {"QueueUrl": queue_url, "MessageBody": body}
        if queue_url.endswith(".fifo"):
            params["MessageGroupId"] = group
            params["MessageDeduplicationId"] = hashlib.sha256(body.encode()).hexdigest()
        if attributes:
            params["MessageAttributes"] = {
                name: {"DataType": "String", "StringValue": value or "-"}
                for name, value in attributes.items()
            }
        await self._call("send_message", **params)

    async def dead_letter_url(self, queue_url: str) -> str | None:
        """The DLQ named by the queue's RedrivePolicy, if it has one."""
        response = await self._call(
            "get_queue_attributes", QueueUrl=queue_url, AttributeNames=["RedrivePolicy"]
        )
        policy = response.get("Attributes", {}).get("RedrivePolicy")
        if not policy:
            return None
        arn = str(json.loads(policy)["deadLetterTargetArn"])
        _, _, _, _, account, name = arn.split(":", 5)
        found = await self._call("get_queue_url", QueueName=name, QueueOwnerAWSAccountId=account)
        return str(found["QueueUrl"])

    async def depth(self, queue_url: str) -> dict[str, int]:
        names = [
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ]
        response = await self._call(
            "get_queue_attributes", QueueUrl=queue_url, AttributeNames=names
        )
        attributes = response.get("Attributes", {})
        return {name: int(attributes.get(name, 0)) for name in names}


def _message(raw: Mapping[str, Any]) -> Message:
    count = int(raw.get("Attributes", {}).get("ApproximateReceiveCount", 1))
    return Message(raw["MessageId"], raw["ReceiptHandle"], raw.get("Body", ""), count)


def _entries(messages: Iterable[Message]) -> list[dict[str, str]]:
    return [
        {"Id": str(index), "ReceiptHandle": message.receipt_handle}
        for index, message in enumerate(messages)
    ]


def ids_to_messages(messages: Sequence[Message], ids: Iterable[str]) -> list[Message]:
    return [messages[int(index)] for index in ids]
