"""The fast path of an unfiltered redrive: SQS's own StartMessageMoveTask, started at the rate
cap and followed until it ends; where the endpoint lacks the API (moto, say), or ``--rate`` is
below the task's lowest (1/s), :func:`move_task` says so and the redrive moves by hand."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from orchestrator.clock import Clock
from orchestrator.dlq.queues import QueueInfo, call
from orchestrator.dlq.summary import Summary
from orchestrator.errors import OrchestratorError, ServerError

MOVE_TASK_POLL = 5.0
MOVE_TASK_MAX_RATE = 500
_UNSUPPORTED = {
    "UnknownOperationException",
    "InvalidAction",
    "UnsupportedOperation",
    "AWS.SimpleQueueService.UnsupportedOperation",
    "NotImplemented",
    "501",
}


async def move_task(
    client: Any,
    source: QueueInfo,
    target: QueueInfo,
    rate: float | None,
    clock: Clock,
    summary: Summary,
    out: Callable[[str], None],
) -> bool:
    """Run SQS's StartMessageMoveTask to completion; False when it cannot run here."""
    if rate is not None and rate < 1:
        return False  # below the move task's lowest rate: paced by hand
    handle = await _start(client, source, target, rate, out)
    if handle is None:
        return False
    summary.method = "StartMessageMoveTask"
    summary.task_handle = handle
    out(
        f"SQS move task started ({handle}); stop it with `aws sqs "
        f"cancel-message-move-task --task-handle {handle}`"
    )
    _record(await _wait_for_task(client, source.arn, clock), summary)
    return True


async def _start(
    client: Any,
    source: QueueInfo,
    target: QueueInfo,
    rate: float | None,
    out: Callable[[str], None],
) -> str | None:
    """The new task's handle; None (said on ``out``) where the endpoint lacks the API."""
    params: dict[str, Any] = {"SourceArn": source.arn, "DestinationArn": target.arn}
    if rate is not None:
        params["MaxNumberOfMessagesPerSecond"] = min(int(rate), MOVE_TASK_MAX_RATE)
    try:
        started = await call(client, "start_message_move_task", **params)
    except OrchestratorError as exc:
        if not _unsupported(exc):
            raise
        out("StartMessageMoveTask is not available on this endpoint: moving by hand")
        return None
    return str(started["TaskHandle"])


def _unsupported(error: OrchestratorError) -> bool:
    """The endpoint does not implement the call: an unknown-operation error code, or an HTTP
    error without any SQS error code (moto answers 500 with an HTML page)."""
    code = str(getattr(error, "code", ""))
    return code in _UNSUPPORTED or (isinstance(error, ServerError) and code.isdigit())


async def _wait_for_task(client: Any, source_arn: str, clock: Clock) -> dict[str, Any]:
    """The newest move task of the source queue (the one just started), once it has ended."""
    while True:
        listed = await call(client, "list_message_move_tasks", SourceArn=source_arn, MaxResults=1)
        task: dict[str, Any] = (listed.get("Results") or [{}])[0]
        if task.get("Status") not in ("RUNNING", "CANCELLING"):
            return task
        await clock.sleep(MOVE_TASK_POLL)


def _record(task: dict[str, Any], summary: Summary) -> None:
    """The ended task's count; unless it completed, what it left and why it stopped."""
    summary.moved = int(task.get("ApproximateNumberOfMessagesMoved", 0))
    if task.get("Status") != "COMPLETED":
        left = int(task.get("ApproximateNumberOfMessagesToMove", 0)) - summary.moved
        summary.failed[f"move_task_{str(task.get('Status', 'unknown')).lower()}"] += max(0, left)
        summary.error = f"move task {task.get('Status')}: {task.get('FailureReason', '')}"
