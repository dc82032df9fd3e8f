"""The job ledger: each request's progress, written before and after every mutating call.

A redelivered message (worker crash, release at shutdown, visibility lapse) finds its request
here and resumes: completed steps are skipped, a dispatched step's job is tracked again
without calling the API, a step caught between "about to call" and "got a JobId" is reconciled
through ListBackendJobs before anything is sent again, and a finished request re-sends its
stored outcome event unchanged.

One record per request (the unit every backend can write atomically):
``request_id, status (IN_PROGRESS | SUCCEEDED | FAILED), deliveries, steps, outcome, updated_at``
where each step is ``operation, phase, job_id, environment, dispatch_began, dispatch_until,
status, error, started_at, finished_at, attempts`` and ``phase`` is PENDING → DISPATCHING →
DISPATCHED → DONE.

Besides records, two kinds of *tags* (key → value): ``job:<JobId>`` names the step that owns a
job (``<request_id>#<step index>``; written once, never overwritten), so reconciliation never
adopts another request's job; ``env:<AppId>/<BackendEnvironmentName>`` names the step that last
mutated the environment, so the next mutation there first makes sure that step's job is over
(:mod:`orchestrator.fence`).

The package: :mod:`~orchestrator.ledger.record` (the record and the :class:`Ledger` protocol),
:mod:`~orchestrator.ledger.sqlite` (the default: a file, WAL), :mod:`~orchestrator.ledger.dynamodb`
(conditional writes, many replicas; the table definition), :mod:`~orchestrator.ledger.lease`
(leases held in either), :mod:`~orchestrator.ledger.traced` (writes in the request's trace);
:func:`open_ledger` picks a backend from a URL.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import anyio

from orchestrator.errors import ConfigurationError
from orchestrator.ledger.lease import Leases
from orchestrator.ledger.record import IN_PROGRESS, REJECTED, Ledger, LedgerRecord
from orchestrator.ledger.sqlite import SqliteLedger
from orchestrator.ledger.traced import SLOW_LOCAL_WRITE, TracedLedger, traced

__all__ = [
    "IN_PROGRESS",
    "REJECTED",
    "SLOW_LOCAL_WRITE",
    "Ledger",
    "LedgerRecord",
    "Leases",
    "SqliteLedger",
    "TracedLedger",
    "open_ledger",
    "traced",
]


@contextlib.asynccontextmanager
async def open_ledger(url: str) -> AsyncIterator[Ledger]:
    """The ledger a URL names, closed (shielded from cancellation) on exit.

    ``sqlite:///relative.db``, ``sqlite:////absolute.db``, ``sqlite:///:memory:``, or
    ``dynamodb://TABLE`` (region, endpoint and credentials from AWS's own configuration).
    """
    if url.startswith("dynamodb://"):
        from orchestrator.ledger.dynamodb import open_dynamodb_ledger

        async with open_dynamodb_ledger(url.removeprefix("dynamodb://")) as dynamo:
            yield dynamo
        return
    if "://" in url and not url.startswith("sqlite:///"):
        raise ConfigurationError(
            f"unsupported ledger URL {url!r} (use sqlite:///PATH or dynamodb://TABLE)"
        )
    ledger = SqliteLedger(url.removeprefix("sqlite:///"))
    try:
        yield ledger
    finally:
        with anyio.CancelScope(shield=True):
            await ledger.close()
