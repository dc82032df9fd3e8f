"""A message on the DLQ as read (:class:`DeadLetter`), and what the worker adds to it.

What the worker sets when it dead-letters a message (:mod:`orchestrator.processor`): the body
unchanged and the message attributes ``reason``, ``error``, ``request_id`` and
``source_message_id``; on a FIFO DLQ, MessageGroupId ``dlq`` and the change queue's MessageId as
MessageDeduplicationId. A message without ``reason`` was moved by SQS itself after
``maxReceiveCount`` receives.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: What the worker adds when it dead-letters; dropped on the way back (``request_id`` stays).
WORKER_ATTRIBUTES = frozenset({"reason", "error", "source_message_id"})
#: The MessageGroupId the worker gives a FIFO dead letter whose own group it does not know.
WORKER_FIFO_GROUP = "dlq"
#: ``--reason none``: messages without a ``reason`` attribute (moved by SQS itself).
NO_REASON = "none"


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    receipt_handle: str
    body: str
    #: The message attributes as SQS returns them (``{"DataType", "StringValue"|"BinaryValue"}``).
    attributes: Mapping[str, Mapping[str, Any]]
    sent_at: float | None
    receive_count: int
    group_id: str | None
    dedup_id: str | None

    @classmethod
    def from_sqs(cls, raw: Mapping[str, Any]) -> DeadLetter:
        system = raw.get("Attributes", {})
        sent = system.get("SentTimestamp")
        return cls(
            message_id=str(raw["MessageId"]),
            receipt_handle=str(raw["ReceiptHandle"]),
            body=str(raw.get("Body", "")),
            attributes=raw.get("MessageAttributes", {}),
            sent_at=int(sent) / 1000 if sent else None,
            receive_count=int(system.get("ApproximateReceiveCount", 1)),
            group_id=system.get("MessageGroupId"),
            dedup_id=system.get("MessageDeduplicationId"),
        )

    def attribute(self, name: str) -> str | None:
        value = self.attributes.get(name, {})
        text = value.get("StringValue")
        return None if text is None else str(text)

    @property
    def reason(self) -> str | None:
        return self.attribute("reason")

    @property
    def request_id(self) -> str | None:
        """The worker's ``request_id`` attribute, else the body's ``request_id``."""
        named = self.attribute("request_id")
        if named and named != "-":
            return named
        try:
            document = json.loads(self.body)
        except ValueError:
            return None
        found = document.get("request_id") if isinstance(document, dict) else None
        return found if isinstance(found, str) else None

    @property
    def dead_lettered_by_worker(self) -> bool:
        return "source_message_id" in self.attributes

    def age(self, now: float) -> float | None:
        return None if self.sent_at is None else max(0.0, now - self.sent_at)
