"""What the consumer hands each received message to: a :class:`Delivery`, made by a
:data:`Prepare` (the worker's is :meth:`orchestrator.processor.RequestProcessor.prepare`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from orchestrator.sqs import Message


class Delivery(Protocol):
    """A received message made ready to run: read once (a change request parsed, or the reason
    it is rejected), so that its fairness key needs no second look at the body."""

    @property
    def fairness_key(self) -> str: ...

    async def run(self) -> None:
        """Handle the message; returning means it may be deleted."""


#: Makes each received message a :class:`Delivery` (RequestProcessor.prepare).
Prepare = Callable[[Message], Delivery]
Handler = Callable[[Message], Awaitable[None]]


@dataclass(frozen=True)
class _Unkeyed:
    handler: Handler
    message: Message
    fairness_key: str = ""

    async def run(self) -> None:
        await self.handler(self.message)


def unkeyed(handler: Handler) -> Prepare:
    """A plain message handler as a :data:`Prepare`: every message under one fairness key."""
    return lambda message: _Unkeyed(handler, message)
