"""Background samplers: event-loop lag and SQS queue depth."""

from __future__ import annotations

import time

import anyio

from orchestrator import logs
from orchestrator.errors import OrchestratorError
from orchestrator.metrics import Metrics
from orchestrator.sqs import Sqs

log = logs.get_logger("orchestrator.monitor")
_STATES = {
    "ApproximateNumberOfMessages": "visible",
    "ApproximateNumberOfMessagesNotVisible": "in_flight",
    "ApproximateNumberOfMessagesDelayed": "delayed",
}


async def watch_loop_lag(metrics: Metrics, period: float = 0.25) -> None:
    """Sleep ``period`` again and again; how much later than asked we wake is the loop lag."""
    while True:
        started = time.perf_counter()
        await anyio.sleep(period)
        metrics.loop_lag.observe(max(0.0, time.perf_counter() - started - period))


async def sample_queue_depth(
    sqs: Sqs, metrics: Metrics, queues: dict[str, str], period: float = 15.0
) -> None:
    """GetQueueAttributes on each queue (label -> URL) every ``period`` seconds."""
    while True:
        for label, url in queues.items():
            try:
                depth = await sqs.depth(url)
            except OrchestratorError as exc:
                log.warning("queue_depth_failed", queue=label, error=str(exc))
                continue
            for attribute, state in _STATES.items():
                metrics.queue_messages.labels(label, state).set(depth[attribute])
        await anyio.sleep(period)
