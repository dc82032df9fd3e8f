"""On-call commands over the ledger: ``inspect REQUEST_ID``, ``requests --status``, ``init-ledger``.

They read the same ledger the workers write (``ORCHESTRATOR_LEDGER``), so they answer "what
happened to request X?" without searching logs: each step's operation, environment, job id,
status, attempts, timestamps and error, and the outcome event that was sent. They only read:
a ledger that does not exist (a missing SQLite file, a missing DynamoDB table) is refused with
a :class:`ConfigurationError`, never created empty.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from aiobotocore.session import get_session
from rich.console import Console
from rich.table import Table

from orchestrator.errors import ConfigurationError
from orchestrator.ledger import IN_PROGRESS, Ledger, LedgerRecord, open_ledger
from orchestrator.ledger.table import create_table
from orchestrator.outcome import Outcome

#: Every status a ledger record can have (``requests --status``).
STATUSES = (IN_PROGRESS, *(outcome.value for outcome in Outcome))


def require_ledger(url: str) -> None:
    """Refuse a SQLite ledger whose file does not exist (opening it would create an empty one).
    A DynamoDB table is checked when it is opened (``DescribeTable``)."""
    if url.startswith("dynamodb://") or ("://" in url and not url.startswith("sqlite:///")):
        return  # open_ledger checks the table, or refuses the URL
    path = url.removeprefix("sqlite:///")
    if path == ":memory:":
        raise ConfigurationError(f"ledger {url}: an in-memory ledger has no records to read")
    if not Path(path).is_file():
        raise ConfigurationError(
            f"no ledger at {path}: the file does not exist (set --ledger or ORCHESTRATOR_LEDGER "
            "to the ledger the workers write)"
        )


async def inspect_request(url: str, request_id: str, out: TextIO, *, as_json: bool) -> int:
    """Print one request's timeline; exit status 1 when the ledger has never seen it."""
    require_ledger(url)
    async with open_ledger(url) as ledger:
        record = await ledger.get(request_id)
    if record is None:
        print(f"no request {request_id!r} in the ledger {url}", file=out)
        return 1
    if as_json:
        print(record.to_json(), file=out)
        return 0
    console = Console(file=out, width=160)
    console.print(_summary(record))
    console.print(_steps_table(record))
    if record.outcome:
        console.print(f"outcome event: {record.outcome}", soft_wrap=True, markup=False)
    return 0


async def list_requests(
    url: str, status: str | None, limit: int, out: TextIO, *, as_json: bool
) -> int:
    require_ledger(url)
    async with open_ledger(url) as ledger:
        records = await _find(ledger, status, limit)
    if as_json:
        for record in records:
            print(record.to_json(), file=out)
        return 0
    table = Table("request_id", "status", "updated", "deliveries", "steps", "error")
    for record in records:
        table.add_row(
            record.request_id,
            record.status,
            _time(record.updated_at),
            str(record.deliveries),
            " → ".join(f"{s.operation}:{s.status or s.phase}" for s in record.steps),
            _error(record),
        )
    Console(file=out, width=200).print(table)
    return 0


async def _find(ledger: Ledger, status: str | None, limit: int) -> list[LedgerRecord]:
    return await ledger.find(status.upper() if status else None, limit)


async def init_ledger(url: str, out: TextIO) -> int:
    """Create the DynamoDB ledger table (SQLite files create themselves)."""
    if not url.startswith("dynamodb://"):
        print(f"{url}: nothing to create (SQLite ledgers are created on first use)", file=out)
        return 0
    table = url.removeprefix("dynamodb://")
    async with get_session().create_client("dynamodb") as client:
        await create_table(client, table)
    print(f"created DynamoDB ledger table {table}", file=out)
    return 0


def _summary(record: LedgerRecord) -> str:
    return (
        f"request {record.request_id}: {record.status}, {record.deliveries} deliveries, "
        f"last written {_time(record.updated_at)}"
    )


def _steps_table(record: LedgerRecord) -> Table:
    table = Table(
        "#", "operation", "environment", "phase", "job_id", "status", "attempts", "started",
        "finished", "error", title="steps",
    )  # fmt: skip
    for number, step in enumerate(record.steps, 1):
        table.add_row(
            str(number),
            step.operation,
            step.environment or "",
            step.phase,
            step.job_id or "",
            step.status or "",
            str(step.attempts),
            step.started_at or "",
            step.finished_at or "",
            step.error or "",
        )
    return table


def _error(record: LedgerRecord) -> str:
    if record.outcome:
        return str(json.loads(record.outcome).get("error") or "")
    return next((step.error for step in record.steps if step.error), "")


def _time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")
