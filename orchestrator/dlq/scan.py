"""Reading a queue without losing anything: :class:`Scan` receives each message once and keeps
what it received invisible (refreshed every half of the visibility) until it is deleted or the
scan ends, when all of it is made visible again (visibility 0), also on failure or cancellation;
:func:`peek` reads a few messages that way for ``ls``/``show``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

import anyio

from orchestrator.dlq.audit import audit_log
from orchestrator.dlq.context import Context
from orchestrator.dlq.message import DeadLetter
from orchestrator.dlq.queues import QueueInfo, call
from orchestrator.errors import OrchestratorError
from orchestrator.sqs import MAX_BATCH

#: Seconds a message read by ``ls``/``show``/``--dry-run`` stays hidden at most (if the command
#: dies before it makes the message visible again).
PEEK_VISIBILITY = 30
#: Seconds a message ``redrive``/``purge`` left on the DLQ stays hidden while the scan goes on
#: (so that it is examined once); refreshed every half of it, released at the end.
HOLD_VISIBILITY = 120
MAX_VISIBILITY = 43_200


class Scan:
    """Receives a queue's messages, each once. Every message received stays invisible until it
    is deleted (:meth:`delete`) or the scan ends: then all are made visible at once."""

    def __init__(self, client: Any, queue: QueueInfo, ctx: Context, visibility: int) -> None:
        self._client = client
        self._queue = queue
        self._ctx = ctx
        self._visibility = visibility
        self._held: dict[str, str] = {}  # message id → latest receipt handle
        self._seen: set[str] = set()
        self._refreshed = ctx.clock.now()
        #: The last receive found nothing: every message available was seen.
        self.exhausted = False

    async def __aenter__(self) -> Scan:
        return self

    async def __aexit__(self, *_: object) -> None:
        with anyio.CancelScope(shield=True):
            await self._set_visibility(0)
            self._held.clear()

    async def next_batch(self, wanted: int) -> list[DeadLetter]:
        """Up to ``wanted`` (≤ 10) messages not seen before; [] when there are no more."""
        await self._refresh_if_due()
        received = await self._receive(wanted)
        self.exhausted = not received
        for message in received:
            self._held[message.message_id] = message.receipt_handle
        fresh = [m for m in received if m.message_id not in self._seen]
        self._seen.update(m.message_id for m in fresh)
        return fresh

    async def delete(self, messages: Sequence[DeadLetter]) -> Counter[str]:
        """Delete messages (batches of 10); the failures by error code."""
        failed: Counter[str] = Counter()
        for chunk in _chunks(list(messages), MAX_BATCH):
            entries = [
                {"Id": str(i), "ReceiptHandle": self._held.get(m.message_id, m.receipt_handle)}
                for i, m in enumerate(chunk)
            ]
            response = await call(
                self._client, "delete_message_batch", QueueUrl=self._queue.url, Entries=entries
            )
            refused = {
                item["Id"]: item.get("Code", "unknown") for item in response.get("Failed", [])
            }
            failed.update(refused.values())
            for index, message in enumerate(chunk):
                if str(index) not in refused:
                    self._held.pop(message.message_id, None)
        return failed

    async def _receive(self, wanted: int) -> list[DeadLetter]:
        system = ["SentTimestamp", "ApproximateReceiveCount", "MessageGroupId"]
        if self._queue.fifo:
            system.append("MessageDeduplicationId")
        response = await call(
            self._client,
            "receive_message",
            QueueUrl=self._queue.url,
            MaxNumberOfMessages=max(1, min(MAX_BATCH, wanted)),
            WaitTimeSeconds=self._ctx.poll_wait,
            VisibilityTimeout=self._visibility,
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=system,
        )
        return [DeadLetter.from_sqs(raw) for raw in response.get("Messages", [])]

    async def _refresh_if_due(self) -> None:
        """Hide the held messages again before their visibility lapses (every half of it)."""
        now = self._ctx.clock.now()
        if now - self._refreshed < self._visibility / 2:
            return
        self._refreshed = now
        await self._set_visibility(self._visibility)

    async def _set_visibility(self, seconds: int) -> None:
        handles = list(self._held.values())
        for chunk in _chunks(handles, MAX_BATCH):
            entries = [
                {"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": seconds}
                for i, handle in enumerate(chunk)
            ]
            try:
                await call(
                    self._client,
                    "change_message_visibility_batch",
                    QueueUrl=self._queue.url,
                    Entries=entries,
                )
            except OrchestratorError as exc:  # they come back by themselves when it lapses
                audit_log.warning(
                    "dlq_visibility_not_changed", queue=self._queue.url, error=str(exc)
                )


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def peek(
    client: Any, queue: QueueInfo, ctx: Context, limit: int
) -> tuple[list[DeadLetter], bool]:
    """Up to ``limit`` messages, visible again as soon as they are read; and whether the read
    reached the end of the queue (the messages are all there is)."""
    got: list[DeadLetter] = []
    async with Scan(client, queue, ctx, PEEK_VISIBILITY) as scan:
        while len(got) < limit:
            batch = await scan.next_batch(limit - len(got))
            if not batch:
                break
            got.extend(batch)
    return got[:limit], scan.exhausted
