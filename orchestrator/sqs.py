"""The worker's SQS calls, with errors mapped to the orchestrator's tree and counted."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from orchestrator.aws import map_error
from orchestrator.clock import wall_time
from orchestrator.metrics import Metrics

MAX_BATCH = 10


@dataclass(frozen=True)
class Message:
    message_id: str
    receipt_handle: str
    body: str
    receive_count: int = 1
    #: SentTimestamp (epoch seconds), when SQS gave one.
    sent_at: float | None = None
    #: Who sent it (SenderId: ``AIDA…`` for an IAM user, ``AROA…:<session>`` for a role).
    sender_id: str | None = None
    #: The producer's trace context: the ``traceparent``/``tracestate`` message attributes and
    #: the ``AWSTraceHeader`` system attribute, those present (orchestrator.propagation).
    trace_carrier: Mapping[str, str] = field(default_factory=dict, compare=False)
    #: MessageGroupId (FIFO queues, and standard ones a producer gave a fair-queue tenant).
    group_id: str | None = None


@dataclass(frozen=True)
class RedrivePolicy:
    """Where SQS moves a message, and after how many receives."""

    dead_letter_url: str
    max_receive_count: int


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
            self._metrics.sqs_calls.labels(operation, error.reason).inc()
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
            MessageSystemAttributeNames=[
                "ApproximateReceiveCount",
                "SentTimestamp",
                "SenderId",
                "AWSTraceHeader",
                "MessageGroupId",
            ],
            MessageAttributeNames=["traceparent", "tracestate"],
        )
        messages = [_message(raw) for raw in response.get("Messages", [])]
        self._metrics.receives.labels("messages" if messages else "empty").inc()
        self._metrics.messages_received.inc(len(messages))
        self._metrics.messages_per_receive.observe(len(messages))
        now = wall_time()
        for message in messages:
            if message.receive_count == 1 and message.sent_at is not None:
                self._metrics.message_wait.observe(max(0.0, now - message.sent_at))
        return messages

    async def delete(self, queue_url: str, messages: Sequence[Message]) -> dict[str, str]:
        """Delete up to 10 messages; returns the batch ids that failed, with why."""
        response = await self._call(
            "delete_message_batch", QueueUrl=queue_url, Entries=_entries(messages)
        )
        failed = _failures(response)
        self._metrics.deletes.inc(len(messages) - len(failed))
        return failed

    async def extend(
        self, queue_url: str, messages: Sequence[Message], visibility: int
    ) -> dict[str, str]:
        """Set the visibility timeout of up to 10 messages; returns the batch ids that failed,
        with why (``ReceiptHandleIsInvalid``: the message was received again elsewhere)."""
        entries = [{**entry, "VisibilityTimeout": visibility} for entry in _entries(messages)]
        response = await self._call(
            "change_message_visibility_batch", QueueUrl=queue_url, Entries=entries
        )
        failed = _failures(response)
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
        dedup: str | None = None,
    ) -> None:
        """Send one message. On a FIFO queue it goes to ``group`` with ``dedup`` (default: the
        body's SHA-256) as deduplication id, so an identical re-sent outcome event is dropped
        by SQS itself."""
        params: dict[str, Any] = {"QueueUrl": queue_url, "MessageBody": body}
        if queue_url.endswith(".fifo"):
            params["MessageGroupId"] = group
            params["MessageDeduplicationId"] = dedup or hashlib.sha256(body.encode()).hexdigest()
        if attributes:
            params["MessageAttributes"] = {
                name: {"DataType": "String", "StringValue": value or "-"}
                for name, value in attributes.items()
            }
        await self._call("send_message", **params)

    async def dead_letter_url(self, queue_url: str) -> str | None:
        """The DLQ named by the queue's RedrivePolicy, if it has one."""
        policy = await self.redrive_policy(queue_url)
        return policy.dead_letter_url if policy else None

    async def redrive_policy(self, queue_url: str) -> RedrivePolicy | None:
        """The queue's RedrivePolicy (its DLQ resolved to a URL), if it has one."""
        response = await self._call(
            "get_queue_attributes", QueueUrl=queue_url, AttributeNames=["RedrivePolicy"]
        )
        text = response.get("Attributes", {}).get("RedrivePolicy")
        if not text:
            return None
        policy = json.loads(text)
        _, _, _, _, account, name = str(policy["deadLetterTargetArn"]).split(":", 5)
        found = await self._call("get_queue_url", QueueName=name, QueueOwnerAWSAccountId=account)
        return RedrivePolicy(str(found["QueueUrl"]), int(policy["maxReceiveCount"]))

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
    attributes = raw.get("Attributes", {})
    count = int(attributes.get("ApproximateReceiveCount", 1))
    sent = attributes.get("SentTimestamp")
    sent_at = int(sent) / 1000 if sent else None
    body = raw.get("Body", "")
    sender = attributes.get("SenderId")
    carrier = _trace_carrier(raw)
    group = attributes.get("MessageGroupId")
    return Message(
        raw["MessageId"], raw["ReceiptHandle"], body, count, sent_at, sender, carrier, group
    )


def _trace_carrier(raw: Mapping[str, Any]) -> dict[str, str]:
    carrier = {
        name: str(value["StringValue"])
        for name, value in raw.get("MessageAttributes", {}).items()
        if name in ("traceparent", "tracestate") and value.get("StringValue")
    }
    header = raw.get("Attributes", {}).get("AWSTraceHeader")
    if header:
        carrier["AWSTraceHeader"] = str(header)
    return carrier


def _entries(messages: Iterable[Message]) -> list[dict[str, str]]:
    return [
        {"Id": str(index), "ReceiptHandle": message.receipt_handle}
        for index, message in enumerate(messages)
    ]


def failed_messages(
    messages: Sequence[Message], failed: Mapping[str, str]
) -> list[tuple[Message, str]]:
    """The messages of a batch call's failed entries (batch ids are indexes), with why."""
    return [(messages[int(index)], why) for index, why in failed.items()]


def _failures(response: Mapping[str, Any]) -> dict[str, str]:
    return {
        entry["Id"]: f"{entry.get('Code', 'unknown')}: {entry.get('Message', '')}".rstrip(": ")
        for entry in response.get("Failed", [])
    }
