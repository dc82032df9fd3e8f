"""``dlq purge``: delete from the DLQ only the messages older than ``--older-than`` (received,
aged, deleted; the younger ones left visible), or with ``--all`` every message (PurgeQueue)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from orchestrator.dlq.audit import audited
from orchestrator.dlq.context import Context
from orchestrator.dlq.queues import QueueInfo, call, queue_info
from orchestrator.dlq.scan import HOLD_VISIBILITY, Scan
from orchestrator.dlq.summary import Summary, describe
from orchestrator.sqs import MAX_BATCH


@dataclass(frozen=True)
class Purge:
    dlq_url: str
    #: Delete only messages older than this (seconds); None: every message (PurgeQueue).
    older_than: float | None
    dry_run: bool = False


async def purge(
    client: Any, plan: Purge, ctx: Context, out: Callable[[str], None] = lambda _: None
) -> Summary:
    summary = Summary(dry_run=plan.dry_run)
    described = {"older_than_s": plan.older_than, "all": plan.older_than is None}
    with audited("dlq_purge", ctx, plan.dlq_url, summary, dry_run=plan.dry_run, **described):
        queue = await queue_info(client, plan.dlq_url)
        if plan.older_than is None:
            await _purge_all(client, queue, plan, summary)
        else:
            await _purge_older(client, queue, plan.older_than, plan.dry_run, ctx, summary, out)
    return summary


async def _purge_all(client: Any, queue: QueueInfo, plan: Purge, summary: Summary) -> None:
    summary.method = "PurgeQueue"
    summary.deleted = queue.visible + queue.in_flight + queue.delayed  # approximate
    if not plan.dry_run:
        await call(client, "purge_queue", QueueUrl=queue.url)


async def _purge_older(
    client: Any,
    queue: QueueInfo,
    older_than: float,
    dry_run: bool,
    ctx: Context,
    summary: Summary,
    out: Callable[[str], None],
) -> None:
    summary.method = "receive/delete"
    async with Scan(client, queue, ctx, HOLD_VISIBILITY) as scan:
        while batch := await scan.next_batch(MAX_BATCH):
            summary.examined += len(batch)
            now = ctx.now()
            old = [m for m in batch if (m.age(now) or 0.0) > older_than]
            if len(old) < len(batch):
                summary.skipped["younger"] += len(batch) - len(old)
            if dry_run:
                describe("would delete", old, now, out)
                failed: Counter[str] = Counter()
            else:
                failed = await scan.delete(old)
            summary.failed.update(failed)
            summary.deleted += len(old) - sum(failed.values())
            summary.note(old)
