"""The by-hand move of the messages a redrive chose: send them to the target in paced batches,
send a batch refused as a whole again one entry at a time, stop on a refusal that concerns the
queue, and delete from the DLQ only what the target accepted."""

from __future__ import annotations

from typing import Any

from orchestrator.dlq.entries import pack, send_entry
from orchestrator.dlq.message import DeadLetter
from orchestrator.dlq.pacing import Pacer
from orchestrator.dlq.queues import QueueInfo, call
from orchestrator.dlq.scan import Scan
from orchestrator.dlq.summary import Summary
from orchestrator.errors import OrchestratorError, TransientError

#: Error codes (parts of them) that refuse every message alike: no point going on.
_QUEUE_REFUSALS = ("NonExistentQueue", "QueueDoesNotExist", "AccessDenied", "KMS", "Security")


async def send(
    client: Any,
    scan: Scan,
    chosen: list[DeadLetter],
    target: QueueInfo,
    pacer: Pacer,
    summary: Summary,
) -> None:
    """Send in batches (≤ 10, < 256 KiB), then delete from the DLQ what the target accepted."""
    by_id = {str(index): message for index, message in enumerate(chosen)}
    entries = [send_entry(message, id_, target) for id_, message in by_id.items()]
    for batch in pack(entries, pacer.batch_size):
        await pacer.wait(len(batch))
        accepted = await _send_batch(client, target, batch, summary)
        await _delete_sent(scan, [by_id[id_] for id_ in accepted], summary)
        if summary.error:
            return


async def _send_batch(
    client: Any, target: QueueInfo, batch: list[dict[str, Any]], summary: Summary
) -> list[str]:
    """The entry ids the target accepted. A batch refused as a whole (a message too large for
    the target, say) is sent again one entry at a time, so that one message does not hold back
    the others; a refusal that concerns the queue (gone, access denied, SQS unreachable) stops
    the redrive (``summary.error``)."""
    try:
        response = await call(client, "send_message_batch", QueueUrl=target.url, Entries=batch)
    except OrchestratorError as exc:
        if _stops_everything(exc):
            summary.fail(_code(exc), f"SendMessageBatch to {target.url}: {exc}", len(batch))
            summary.error = f"the target refused: {exc}"
            return []
        if len(batch) == 1:
            summary.fail(_code(exc), f"SendMessageBatch to {target.url}: {exc}")
            return []
        accepted: list[str] = []
        for entry in batch:
            if summary.error:  # the queue itself refused: the rest would be refused too
                break
            accepted += await _send_batch(client, target, [entry], summary)
        return accepted
    for item in response.get("Failed", []):
        summary.fail(str(item.get("Code", "unknown")), str(item.get("Message", "")))
    return [str(item["Id"]) for item in response.get("Successful", [])]


def _stops_everything(error: OrchestratorError) -> bool:
    if isinstance(error, TransientError):
        return True
    return any(part in _code(error) for part in _QUEUE_REFUSALS)


def _code(error: OrchestratorError) -> str:
    return str(getattr(error, "code", "") or error.reason)


async def _delete_sent(scan: Scan, sent: list[DeadLetter], summary: Summary) -> None:
    summary.moved += len(sent)
    summary.note(sent)
    try:
        refused = await scan.delete(sent)
    except OrchestratorError as exc:
        summary.not_deleted += len(sent)
        summary.error = f"DeleteMessageBatch on the DLQ failed: {exc}"
        return
    summary.not_deleted += sum(refused.values())
