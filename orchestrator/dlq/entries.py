"""What a redrive sends back: a SendMessageBatch entry per message (:func:`send_entry`: the
body, the producer's attributes without the worker's, the FIFO group and deduplication ids),
their size as SQS counts it, and :func:`pack`, batches under 10 entries and 256 KiB."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from orchestrator import producer
from orchestrator.dlq.message import WORKER_ATTRIBUTES, WORKER_FIFO_GROUP, DeadLetter
from orchestrator.dlq.queues import QueueInfo
from orchestrator.sqs import MAX_BATCH

#: Each SendMessageBatch stays below this many bytes (bodies plus message attributes).
MAX_BATCH_BYTES = 256 * 1024


def send_entry(message: DeadLetter, entry_id: str, target: QueueInfo) -> dict[str, Any]:
    """A SendMessageBatch entry for the target: the body, the producer's attributes (the
    worker's ``reason``/``error``/``source_message_id`` dropped), the group and dedup ids."""
    entry: dict[str, Any] = {"Id": entry_id, "MessageBody": message.body}
    attributes = {
        name: _sendable(value)
        for name, value in message.attributes.items()
        if name not in WORKER_ATTRIBUTES
    }
    if attributes:
        entry["MessageAttributes"] = attributes
    group = _group_for(message, target)
    if group:
        entry["MessageGroupId"] = group
    if target.fifo:
        entry["MessageDeduplicationId"] = message.dedup_id or message.message_id
    return entry


def _sendable(value: Mapping[str, Any]) -> dict[str, Any]:
    kept = {"DataType": value["DataType"]}
    for name in ("StringValue", "BinaryValue"):
        if name in value:
            kept[name] = value[name]
    return kept


def _group_for(message: DeadLetter, target: QueueInfo) -> str | None:
    """The message's own MessageGroupId; for what the worker dead-lettered (which lost it), the
    group ``orchestrator send`` gives: ``AppId/BackendEnvironmentName`` (FIFO), ``AppId``."""
    placeholder = message.dead_lettered_by_worker and message.group_id == WORKER_FIFO_GROUP
    if message.group_id and not placeholder:
        return message.group_id
    if target.fifo:
        return producer.group_id(message.body)
    return producer.tenant_id(message.body) if message.dead_lettered_by_worker else None


def entry_size(entry: Mapping[str, Any]) -> int:
    """Bytes SQS counts for an entry: the body, and each attribute's name, type and value."""
    size = len(str(entry["MessageBody"]).encode())
    for name, value in entry.get("MessageAttributes", {}).items():
        data = value.get("BinaryValue", b"") or str(value.get("StringValue", "")).encode()
        size += len(name.encode()) + len(str(value["DataType"]).encode()) + len(data)
    return size


def pack(entries: list[dict[str, Any]], most: int = MAX_BATCH) -> Iterator[list[dict[str, Any]]]:
    """Batches of at most ``most`` (≤ 10) entries and fewer than 256 KiB each (an entry that
    alone is larger goes alone)."""
    batch: list[dict[str, Any]] = []
    size = 0
    for entry in entries:
        n = entry_size(entry)
        if batch and (len(batch) >= min(most, MAX_BATCH) or size + n >= MAX_BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(entry)
        size += n
    if batch:
        yield batch
