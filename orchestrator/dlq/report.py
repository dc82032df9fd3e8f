"""``dlq ls`` and ``dlq show``: what is on the DLQ, read without deleting anything. ``ls``
reports the counts, the oldest message and the counts by ``reason`` (:class:`QueueReport`);
``show`` the messages themselves, as text or one JSON object each."""

from __future__ import annotations

import base64
import json
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from orchestrator.dlq.audit import AUDIT_REQUEST_IDS, audited, request_ids
from orchestrator.dlq.context import Context
from orchestrator.dlq.durations import format_age
from orchestrator.dlq.message import NO_REASON, DeadLetter
from orchestrator.dlq.queues import QueueInfo, queue_info
from orchestrator.dlq.scan import peek


@dataclass(frozen=True)
class QueueReport:
    queue: QueueInfo
    sampled: int
    #: The sample is the whole queue (the read reached its end).
    complete: bool
    oldest_sent_at: float | None
    reasons: dict[str, int]


async def ls(client: Any, dlq_url: str, ctx: Context, *, sample: int) -> QueueReport:
    """Counts, the oldest message, and counts by ``reason`` (from up to ``sample`` messages)."""
    with audited("dlq_ls", ctx, dlq_url, sample=sample) as audit:
        queue = await queue_info(client, dlq_url)
        messages, complete = await peek(client, queue, ctx, sample)
        reasons = Counter(m.reason or NO_REASON for m in messages)
        sent = [m.sent_at for m in messages if m.sent_at is not None]
        report = QueueReport(
            queue, len(messages), complete, min(sent, default=None), dict(reasons.most_common())
        )
        audit.update(
            visible=queue.visible,
            in_flight=queue.in_flight,
            sampled=report.sampled,
            complete=complete,
            reasons=report.reasons,
        )
    return report


async def show(client: Any, dlq_url: str, ctx: Context, *, limit: int) -> list[DeadLetter]:
    """Up to ``limit`` messages, read without deleting (visible again at once)."""
    with audited("dlq_show", ctx, dlq_url, limit=limit) as audit:
        queue = await queue_info(client, dlq_url)
        messages, _ = await peek(client, queue, ctx, limit)
        ids = request_ids(messages)
        audit.update(shown=len(messages), request_ids=ids[:AUDIT_REQUEST_IDS])
    return messages


def render_report(report: QueueReport, now: float) -> str:
    q = report.queue
    lines = [
        f"dead-letter queue {q.url}",
        f"  messages: ~{q.visible} visible, ~{q.in_flight} in flight, ~{q.delayed} delayed",
    ]
    scope = (
        f"all {report.sampled} messages"
        if report.complete
        else f"a sample of {report.sampled} of ~{q.visible} (--sample N for more)"
    )
    if report.oldest_sent_at is not None:
        oldest = "oldest message" if report.complete else "oldest in the sample"
        lines.append(f"  {oldest}: {_when(report.oldest_sent_at, now)}")
    if report.reasons:
        lines.append(f"  by reason ({scope}):")
        width = max(len(reason) for reason in report.reasons)
        lines += [f"    {r:<{width}}  {n}" for r, n in report.reasons.items()]
    return "\n".join(lines)


def render_message(message: DeadLetter, now: float) -> str:
    sent = _when(message.sent_at, now) if message.sent_at is not None else "unknown"
    lines = [
        f"message {message.message_id}: sent {sent}, "
        f"received {message.receive_count}× (this read included)"
    ]
    for name, value in sorted(_attribute_values(message).items()):
        lines.append(f"  {name}: {value}")
    if message.group_id:
        lines.append(f"  MessageGroupId: {message.group_id}")
    if message.dedup_id:
        lines.append(f"  MessageDeduplicationId: {message.dedup_id}")
    lines.append(f"  body: {message.body}")
    return "\n".join(lines)


def message_json(message: DeadLetter) -> str:
    """One message as one JSON object (``show --json``)."""
    document = {
        "message_id": message.message_id,
        "sent_timestamp": None if message.sent_at is None else round(message.sent_at * 1000),
        "sent_at": None if message.sent_at is None else _iso(message.sent_at),
        "receive_count": message.receive_count,
        "reason": message.reason,
        "error": message.attribute("error"),
        "request_id": message.request_id,
        "source_message_id": message.attribute("source_message_id"),
        "attributes": _attribute_values(message),
        "message_group_id": message.group_id,
        "message_deduplication_id": message.dedup_id,
        "body": message.body,
    }
    return json.dumps(document, ensure_ascii=False)


def _attribute_values(message: DeadLetter) -> dict[str, str]:
    values = {}
    for name, value in message.attributes.items():
        if "StringValue" in value:
            values[name] = str(value["StringValue"])
        elif "BinaryValue" in value:
            values[name] = "base64:" + base64.b64encode(bytes(value["BinaryValue"])).decode()
    return values


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


def _when(epoch: float, now: float) -> str:
    return f"{_iso(epoch)} ({format_age(now - epoch)} ago)"
