"""What a command is given: who runs it and with which clocks (:class:`Context`), and the
queues as configured (:class:`QueueUrls`). The CLI builds both; nothing here reads the
environment."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from orchestrator.clock import Clock, MonotonicClock, wall_time


@dataclass(frozen=True)
class Context:
    """Who runs a command, and the clocks and polling it uses."""

    operator: str
    clock: Clock = field(default_factory=MonotonicClock)
    now: Callable[[], float] = wall_time
    #: Long-poll wait of each receive: an empty answer then means the queue has no more.
    poll_wait: int = 1


@dataclass(frozen=True)
class QueueUrls:
    """The queues as configured: the DLQ, and the change queue (its RedrivePolicy names it)."""

    dlq: str | None = None
    change: str | None = None
