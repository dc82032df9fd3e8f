"""The audit line: one per command, on logger ``orchestrator.audit``, written also when the
command fails: who, which queue, the filters, the counts, the request ids; never a body."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any, Protocol

from orchestrator import logs
from orchestrator.dlq.context import Context
from orchestrator.dlq.message import DeadLetter

audit_log = logs.get_logger("orchestrator.audit")

#: Request ids named in one audit line at most (the rest are counted).
AUDIT_REQUEST_IDS = 200


def request_ids(messages: Iterable[DeadLetter]) -> list[str]:
    """How the audit names each message: its request id, else ``message:<MessageId>``."""
    return [m.request_id or f"message:{m.message_id}" for m in messages]


class Counted(Protocol):
    """What a command counted (:class:`orchestrator.dlq.summary.Summary`)."""

    error: str | None

    def audit_fields(self) -> dict[str, Any]: ...


@contextlib.contextmanager
def audited(
    event: str, ctx: Context, queue: str, summary: Counted | None = None, **fields: Any
) -> Iterator[dict[str, Any]]:
    """One audit line for the block, written also when it fails (with the error)."""
    try:
        yield fields
    except BaseException as exc:
        fields["error"] = str(exc) or type(exc).__name__
        raise
    finally:
        counts = summary.audit_fields() if summary else {}
        if summary and summary.error:
            fields.setdefault("error", summary.error)
        audit_log.info(event, operator=ctx.operator, queue=queue, **fields, **counts)
