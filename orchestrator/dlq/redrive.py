"""``dlq redrive``: move messages from the DLQ back to a target queue (:class:`Redrive`, the
plan). Unfiltered, not a dry run, from a standard DLQ: SQS's move task (:mod:`.movetask`);
otherwise by hand: receive (:mod:`.scan`), choose (the filters, and the FIFO deduplication
window), then send and delete (:mod:`.send`), paced by :mod:`.pacing`."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from orchestrator.dlq.audit import audited
from orchestrator.dlq.context import Context
from orchestrator.dlq.filters import Filters
from orchestrator.dlq.message import DeadLetter
from orchestrator.dlq.movetask import move_task
from orchestrator.dlq.pacing import Pacer
from orchestrator.dlq.queues import QueueInfo, queue_info
from orchestrator.dlq.scan import HOLD_VISIBILITY, MAX_VISIBILITY, Scan
from orchestrator.dlq.send import send
from orchestrator.dlq.summary import Summary, describe
from orchestrator.errors import ConfigurationError
from orchestrator.sqs import MAX_BATCH

#: A FIFO queue drops a message whose deduplication id it saw in the last 5 minutes.
FIFO_DEDUP_WINDOW = 300.0


@dataclass(frozen=True)
class Redrive:
    dlq_url: str
    target_url: str
    filters: Filters = Filters()
    dry_run: bool = False
    #: Messages per second at most (None: as fast as SQS takes them).
    rate: float | None = None
    limit: int | None = None

    @property
    def selective(self) -> bool:
        return self.filters.active or self.limit is not None


async def redrive(
    client: Any, plan: Redrive, ctx: Context, out: Callable[[str], None] = lambda _: None
) -> Summary:
    """Move messages back from the DLQ. Unfiltered (and not a dry run) from a standard DLQ:
    SQS's own StartMessageMoveTask where the API has it; otherwise receive → send → delete."""
    summary = Summary(dry_run=plan.dry_run)
    described = {
        "target": plan.target_url,
        "filters": plan.filters.describe(),
        "dry_run": plan.dry_run,
        "rate": plan.rate,
        "limit": plan.limit,
    }
    with audited("dlq_redrive", ctx, plan.dlq_url, summary, **described):
        source = await queue_info(client, plan.dlq_url)
        target = await queue_info(client, plan.target_url)
        if source.arn == target.arn:
            raise ConfigurationError(f"{plan.target_url} is the DLQ itself: pick another --to")
        # A FIFO DLQ is moved by hand: what the worker dead-lettered carries its MessageGroupId
        # "dlq", which SQS's move task would keep; by hand the request's group is restored.
        if not plan.selective and not plan.dry_run and not source.fifo:
            if await move_task(client, source, target, plan.rate, ctx.clock, summary, out):
                return summary
        await _move_by_hand(client, source, target, plan, ctx, summary, out)
    return summary


def _hold_visibility(rate: float | None) -> int:
    """Long enough for a batch to be paced out and sent before it could reappear."""
    if rate is None:
        return HOLD_VISIBILITY
    return min(MAX_VISIBILITY, max(HOLD_VISIBILITY, math.ceil(3 * MAX_BATCH / rate) + 30))


async def _move_by_hand(
    client: Any,
    source: QueueInfo,
    target: QueueInfo,
    plan: Redrive,
    ctx: Context,
    summary: Summary,
    out: Callable[[str], None],
) -> None:
    pacer = Pacer(plan.rate, ctx.clock)
    async with Scan(client, source, ctx, _hold_visibility(plan.rate)) as scan:
        while summary.error is None:
            left = MAX_BATCH if plan.limit is None else plan.limit - summary.moved
            if left <= 0:
                break
            batch = await scan.next_batch(min(left, pacer.batch_size))
            if not batch:
                break
            chosen = _choose(batch, plan.filters, target, ctx.now(), summary)
            if plan.dry_run:
                _would_move(chosen, ctx.now(), summary, out)
            else:
                await send(client, scan, chosen, target, pacer, summary)
    _advise(source, summary)


def _advise(source: QueueInfo, summary: Summary) -> None:
    if summary.skipped["fifo_dedup_window"]:
        summary.notes.append(
            "note: messages less than 5 minutes on the DLQ were left for a FIFO target (SQS "
            "could drop them as duplicates): run the redrive again in a few minutes"
        )
    if source.fifo and summary.skipped.total():
        summary.notes.append(
            "note: on a FIFO DLQ the messages behind one that was left in its message group "
            "were not examined: `dlq ls` shows what is left"
        )


def _choose(
    batch: list[DeadLetter], filters: Filters, target: QueueInfo, now: float, summary: Summary
) -> list[DeadLetter]:
    chosen = []
    for message in batch:
        summary.examined += 1
        why = _left_because(message, filters, target, now)
        if why:
            summary.skipped[why] += 1
        else:
            chosen.append(message)
    return chosen


def _left_because(
    message: DeadLetter, filters: Filters, target: QueueInfo, now: float
) -> str | None:
    if not filters.matches(message, now):
        return "filter"
    age = message.age(now)
    if target.fifo and (age is None or age < FIFO_DEDUP_WINDOW):
        # Its deduplication id may have been used on the target within 5 minutes: SQS would
        # accept the send and drop the message, and the delete would then lose it.
        return "fifo_dedup_window"
    return None


def _would_move(
    chosen: list[DeadLetter], now: float, summary: Summary, out: Callable[[str], None]
) -> None:
    describe("would move", chosen, now, out)
    summary.moved += len(chosen)
    summary.note(chosen)
