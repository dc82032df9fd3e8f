"""What a redrive or purge did, or with ``--dry-run`` would do (:class:`Summary`): the counts,
the failures, the advice; its audit fields, and how it and a dry run's messages are printed."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from orchestrator.dlq.audit import AUDIT_REQUEST_IDS, request_ids
from orchestrator.dlq.durations import format_age
from orchestrator.dlq.message import NO_REASON, DeadLetter


@dataclass
class Summary:
    """What a redrive or purge did (or, with ``dry_run``, would do)."""

    dry_run: bool = False
    method: str = "receive/send/delete"
    examined: int = 0
    moved: int = 0
    deleted: int = 0
    #: Left on the DLQ, by why: ``filter``, ``fifo_dedup_window``, ``younger``.
    skipped: Counter[str] = field(default_factory=Counter)
    #: Not moved or not deleted, by the error code SQS gave.
    failed: Counter[str] = field(default_factory=Counter)
    #: Sent to the target but still on the DLQ (the delete failed): they are on both queues.
    not_deleted: int = 0
    #: The first failure's message, for the operator.
    first_failure: str | None = None
    request_ids: list[str] = field(default_factory=list)
    task_handle: str | None = None
    error: str | None = None
    #: Advice for the operator, printed under the summary.
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.failed or self.not_deleted or self.error)

    def fail(self, code: str, message: str, count: int = 1) -> None:
        self.failed[code] += count
        self.first_failure = self.first_failure or f"{code}: {message}"

    def note(self, messages: Iterable[DeadLetter]) -> None:
        self.request_ids.extend(request_ids(messages))

    def audit_fields(self) -> dict[str, Any]:
        shown = self.request_ids[:AUDIT_REQUEST_IDS]
        fields = {
            "method": self.method,
            "examined": self.examined,
            "moved": self.moved,
            "deleted": self.deleted,
            "skipped": dict(self.skipped),
            "failed": dict(self.failed),
            "not_deleted": self.not_deleted,
            "request_ids": shown,
            "request_ids_not_listed": len(self.request_ids) - len(shown),
        }
        if self.task_handle:
            fields["task_handle"] = self.task_handle
        return fields


def render_summary(action: str, plan_url: str, summary: Summary, target: str | None = None) -> str:
    verb = {"redrive": ("moved", "would move"), "purge": ("deleted", "would delete")}[action]
    done = summary.moved if action == "redrive" else summary.deleted
    where = f"{plan_url} → {target}" if target else plan_url
    parts = [f"{verb[summary.dry_run]} {done}"]
    parts.append(f"skipped {summary.skipped.total()}{_breakdown(summary.skipped)}")
    parts.append(f"failed {summary.failed.total()}{_breakdown(summary.failed)}")
    if summary.not_deleted:
        parts.append(f"sent but not deleted {summary.not_deleted} (now on both queues)")
    lines = [f"{action} {where} ({summary.method}): " + ", ".join(parts)]
    lines += summary.notes
    if summary.first_failure:
        lines.append(f"first failure: {summary.first_failure}")
    if summary.error:
        lines.append(f"stopped: {summary.error}")
    return "\n".join(lines)


def _breakdown(counts: Counter[str]) -> str:
    if not counts:
        return ""
    return " (" + ", ".join(f"{name} {n}" for name, n in counts.most_common()) + ")"


def describe(verb: str, messages: list[DeadLetter], now: float, out: Callable[[str], None]) -> None:
    """One line per message for a dry run: ids, reason and age; never the body."""
    for message in messages:
        age = message.age(now)
        out(
            f"{verb} {message.message_id}: request_id={message.request_id or '-'} "
            f"reason={message.reason or NO_REASON} age={'?' if age is None else format_age(age)}"
        )
