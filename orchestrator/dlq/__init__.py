"""On-call commands for the dead-letter queue: ``orchestrator dlq ls | show | redrive | purge``.

Safe by default:

* reading (``ls``, ``show``, any ``--dry-run``) never deletes. A message read is kept invisible
  only while the read lasts (:data:`PEEK_VISIBILITY`, refreshed if the read is long) and is
  made visible again (visibility 0) as soon as the read is over, also when it fails;
* ``redrive`` deletes a message from the DLQ only once the target queue has accepted it;
* ``purge`` deletes only messages older than ``--older-than``, or everything with
  ``--all --yes`` (PurgeQueue);
* every command writes one audit line (logger ``orchestrator.audit``): who, which queue, the
  filters, the counts, the request ids; never a message body.

What the worker leaves on a message it dead-letters is told in :mod:`.message`.

The functions take an aiobotocore SQS client, a monotonic :class:`~orchestrator.clock.Clock`
(pacing, visibility refreshes) and a wall clock ``now`` (message ages) in a :class:`Context`,
so the tests run them against moto's server without sleeping.

Modules: :mod:`.context` (who runs a command, the queues as configured), :mod:`.queues`
(resolving the DLQ and the target, queue attributes, the SQS call), :mod:`.message` (a dead
letter), :mod:`.scan` (reading with visibility held and restored), :mod:`.audit` (the audit
line), :mod:`.summary` (what a redrive or purge did), :mod:`.report` (``ls``, ``show``),
:mod:`.filters`, :mod:`.redrive` (the plan and the by-hand move), :mod:`.movetask`
(StartMessageMoveTask), :mod:`.send` (send, then delete what was accepted), :mod:`.entries`
(what is sent, batches), :mod:`.pacing` (``--rate``), :mod:`.purge`, :mod:`.durations`,
:mod:`.commands` (what the CLI runs).
"""

from orchestrator.dlq.audit import AUDIT_REQUEST_IDS, audit_log
from orchestrator.dlq.commands import ls_command, purge_command, redrive_command, show_command
from orchestrator.dlq.context import Context, QueueUrls
from orchestrator.dlq.durations import format_age, parse_duration
from orchestrator.dlq.entries import MAX_BATCH_BYTES, entry_size, pack, send_entry
from orchestrator.dlq.filters import Filters
from orchestrator.dlq.message import NO_REASON, WORKER_ATTRIBUTES, WORKER_FIFO_GROUP, DeadLetter
from orchestrator.dlq.movetask import MOVE_TASK_MAX_RATE, MOVE_TASK_POLL
from orchestrator.dlq.pacing import Pacer
from orchestrator.dlq.purge import Purge, purge
from orchestrator.dlq.queues import (
    QueueInfo,
    queue_info,
    require_queue,
    resolve_dlq,
    resolve_target,
)
from orchestrator.dlq.redrive import FIFO_DEDUP_WINDOW, Redrive, redrive
from orchestrator.dlq.report import (
    QueueReport,
    ls,
    message_json,
    render_message,
    render_report,
    show,
)
from orchestrator.dlq.scan import HOLD_VISIBILITY, MAX_VISIBILITY, PEEK_VISIBILITY, Scan, peek
from orchestrator.dlq.summary import Summary, render_summary

__all__ = [
    "AUDIT_REQUEST_IDS",
    "FIFO_DEDUP_WINDOW",
    "HOLD_VISIBILITY",
    "MAX_BATCH_BYTES",
    "MAX_VISIBILITY",
    "MOVE_TASK_MAX_RATE",
    "MOVE_TASK_POLL",
    "NO_REASON",
    "PEEK_VISIBILITY",
    "WORKER_ATTRIBUTES",
    "WORKER_FIFO_GROUP",
    "Context",
    "DeadLetter",
    "Filters",
    "Pacer",
    "Purge",
    "QueueInfo",
    "QueueReport",
    "QueueUrls",
    "Redrive",
    "Scan",
    "Summary",
    "audit_log",
    "entry_size",
    "format_age",
    "ls",
    "ls_command",
    "message_json",
    "pack",
    "parse_duration",
    "peek",
    "purge",
    "purge_command",
    "queue_info",
    "redrive",
    "redrive_command",
    "render_message",
    "render_report",
    "render_summary",
    "require_queue",
    "resolve_dlq",
    "resolve_target",
    "send_entry",
    "show",
    "show_command",
]
