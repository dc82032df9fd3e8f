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

Backends implement :class:`Ledger`: :class:`SqliteLedger` (default, a file, WAL) here and
DynamoDB (conditional writes, many replicas) in :mod:`orchestrator.ledger_dynamodb`;
:func:`open_ledger` picks one from a URL.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import anyio

from orchestrator.clock import wall_time
from orchestrator.errors import ConfigurationError
from orchestrator.outcome import StepRecord
from orchestrator.tracing import Tracer

T = TypeVar("T")

IN_PROGRESS = "IN_PROGRESS"
#: A rejected request's minimal record: it never ran, so a corrected request under the same id
#: begins anew over it (:meth:`LedgerRecord.begun`).
REJECTED = "REJECTED"


@dataclass
class LedgerRecord:
    request_id: str
    status: str = IN_PROGRESS
    deliveries: int = 1
    steps: list[StepRecord] = field(default_factory=list)
    outcome: str | None = None
    updated_at: float = field(default_factory=wall_time)

    def to_json(self) -> str:
        # vars(), not dataclasses.asdict: the fields are plain values, and asdict's deep copy
        # was most of a ledger write's CPU.
        document = {**vars(self), "steps": [vars(step) for step in self.steps]}
        return json.dumps(document, separators=(",", ":"))

    @classmethod
    def begun(
        cls, request_id: str, operations: list[str], found: LedgerRecord | None
    ) -> LedgerRecord:
        """The record a delivery works on: ``found`` with one more delivery, or a new one (also
        over a REJECTED record: that request never ran)."""
        if found is None or found.status == REJECTED:
            return cls(request_id, steps=[StepRecord(op) for op in operations])
        found.deliveries += 1
        return found

    @classmethod
    def from_json(cls, text: str) -> LedgerRecord:
        data = json.loads(text)
        data["steps"] = [StepRecord(**step) for step in data.get("steps", [])]
        return cls(**data)


class Ledger(Protocol):
    async def begin(self, request_id: str, operations: list[str]) -> LedgerRecord:
        """The request's record, created if new; counts one more delivery."""
        ...

    async def save(self, record: LedgerRecord) -> None: ...

    async def get(self, request_id: str) -> LedgerRecord | None: ...

    async def peek(self, request_id: str) -> LedgerRecord | None:
        """The record as it stands, read by a bystander: unlike :meth:`get`, it never becomes
        the version this process's next :meth:`save` of that request is conditioned on (the
        fence reads other requests' records, which another replica may be writing)."""
        ...

    async def find(self, status: str | None, limit: int) -> list[LedgerRecord]: ...

    async def acquire_lease(self, key: str, owner: str, ttl: float) -> bool:
        """Take (or renew) ``key`` for ``owner`` unless another owner holds it unexpired."""
        ...

    async def release_lease(self, key: str, owner: str) -> None: ...

    async def put_tag(self, key: str, value: str, *, only_new: bool = False) -> str:
        """Store ``value`` under ``key`` (only if ``key`` has none, with ``only_new``); the
        value stored afterwards. Tags: ``job:<JobId>`` (the step that owns a job) and
        ``env:<AppId>/<BackendEnvironmentName>`` (the step that last mutated there)."""
        ...

    async def get_tag(self, key: str) -> str | None: ...

    async def close(self) -> None: ...


class SqliteLedger:
    """Embedded SQLite (WAL): one row per request, safe across restarts and kill -9 (a
    committed write is in the OS's hands; only losing the machine can lose the last ones)."""

    def __init__(self, path: str, *, clock: Callable[[], float] = wall_time) -> None:
        self._clock = clock
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS requests (request_id TEXT PRIMARY KEY, status TEXT NOT"
            " NULL, updated_at REAL NOT NULL, record TEXT NOT NULL)"
        )
        self._db.execute("CREATE INDEX IF NOT EXISTS by_status ON requests (status, updated_at)")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS leases (key TEXT PRIMARY KEY, owner TEXT NOT NULL,"
            " expires_at REAL NOT NULL)"
        )
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS tags (key TEXT PRIMARY KEY, value TEXT NOT NULL,"
            " updated_at REAL NOT NULL)"
        )

    async def _run(self, function: Callable[[], T]) -> T:
        # On the event loop, not in a worker thread: in WAL mode with synchronous=NORMAL a
        # commit does not fsync, so a statement takes tens of microseconds, and handing it to
        # a thread cost more CPU than running it (the thread hops were ~30% of the worker's CPU
        # in `python -m bench --scenario overhead`). The lock keeps it safe for callers on
        # other threads (the CLI's inspect commands).
        with self._lock:
            return function()

    async def begin(self, request_id: str, operations: list[str]) -> LedgerRecord:
        def begin() -> LedgerRecord:
            row = self._db.execute(
                "SELECT record FROM requests WHERE request_id = ?", (request_id,)
            ).fetchone()
            found = LedgerRecord.from_json(row[0]) if row else None
            record = LedgerRecord.begun(request_id, operations, found)
            self._write(record)
            return record

        return await self._run(begin)

    def _write(self, record: LedgerRecord) -> None:
        record.updated_at = wall_time()
        self._db.execute(
            "INSERT INTO requests (request_id, status, updated_at, record) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (request_id) DO UPDATE SET status = excluded.status,"
            " updated_at = excluded.updated_at, record = excluded.record",
            (record.request_id, record.status, record.updated_at, record.to_json()),
        )

    async def save(self, record: LedgerRecord) -> None:
        await self._run(lambda: self._write(record))

    async def get(self, request_id: str) -> LedgerRecord | None:
        def get() -> LedgerRecord | None:
            row = self._db.execute(
                "SELECT record FROM requests WHERE request_id = ?", (request_id,)
            ).fetchone()
            return LedgerRecord.from_json(row[0]) if row else None

        return await self._run(get)

    async def peek(self, request_id: str) -> LedgerRecord | None:
        return await self.get(request_id)  # no versions here: the file is the one writer

    async def find(self, status: str | None, limit: int) -> list[LedgerRecord]:
        def find() -> list[LedgerRecord]:
            query = "SELECT record FROM requests"
            args: tuple[Any, ...] = ()
            if status:
                query, args = query + " WHERE status = ?", (status,)
            rows = self._db.execute(query + " ORDER BY updated_at DESC LIMIT ?", (*args, limit))
            return [LedgerRecord.from_json(row[0]) for row in rows]

        return await self._run(find)

    async def acquire_lease(self, key: str, owner: str, ttl: float) -> bool:
        def acquire() -> bool:
            now = self._clock()
            cursor = self._db.execute(
                "INSERT INTO leases (key, owner, expires_at) VALUES (?, ?, ?)"
                " ON CONFLICT (key) DO UPDATE SET owner = excluded.owner,"
                " expires_at = excluded.expires_at"
                " WHERE leases.owner = excluded.owner OR leases.expires_at < ?",
                (key, owner, now + ttl, now),
            )
            return cursor.rowcount == 1

        return await self._run(acquire)

    async def release_lease(self, key: str, owner: str) -> None:
        await self._run(
            lambda: self._db.execute("DELETE FROM leases WHERE key = ? AND owner = ?", (key, owner))
        )

    async def put_tag(self, key: str, value: str, *, only_new: bool = False) -> str:
        conflict = "NOTHING" if only_new else "UPDATE SET value = excluded.value"

        def put() -> str:
            self._db.execute(
                f"INSERT INTO tags (key, value, updated_at) VALUES (?, ?, ?)"
                f" ON CONFLICT (key) DO {conflict}",
                (key, value, self._clock()),
            )
            row = self._db.execute("SELECT value FROM tags WHERE key = ?", (key,)).fetchone()
            return str(row[0])

        return await self._run(put)

    async def get_tag(self, key: str) -> str | None:
        def get() -> str | None:
            row = self._db.execute("SELECT value FROM tags WHERE key = ?", (key,)).fetchone()
            return None if row is None else str(row[0])

        return await self._run(get)

    async def close(self) -> None:
        await self._run(self._db.close)


@contextlib.asynccontextmanager
async def open_ledger(url: str) -> AsyncIterator[Ledger]:
    """The ledger a URL names, closed (shielded from cancellation) on exit.

    ``sqlite:///relative.db``, ``sqlite:////absolute.db``, ``sqlite:///:memory:``, or
    ``dynamodb://TABLE`` (region, endpoint and credentials from AWS's own configuration).
    """
    if url.startswith("dynamodb://"):
        from orchestrator.ledger_dynamodb import open_dynamodb_ledger

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


#: A SQLite write slower than this (seconds) is an event of the request's span (a disk that
#: stalls, a lock held by another process); faster ones leave nothing.
SLOW_LOCAL_WRITE = 0.01


class TracedLedger:
    """A ledger whose writes of a request's progress (``begin``, ``save``, ``put_tag``) show in
    the request's trace: on DynamoDB each is a CLIENT span (``ledger save``: a network call
    that can be slow or throttled); on SQLite, a local write of ~0.1 ms, only a write slower
    than ``slow`` seconds is an event of the current span, with its duration (six events a
    request cost more CPU than the writes, and say nothing an on-call engineer would act on).
    Reads and leases pass straight through (a lease wait polls). Only used with tracing on."""

    def __init__(
        self, inner: Ledger, tracer: Tracer, url: str, slow: float = SLOW_LOCAL_WRITE
    ) -> None:
        self._inner = inner
        self._tracer = tracer
        self._remote = url.startswith("dynamodb://")
        self._system = "aws.dynamodb" if self._remote else "sqlite"
        self._slow = slow

    async def _write(self, operation: str, write: Callable[[], Awaitable[T]]) -> T:
        if self._remote:
            with self._tracer.ledger(operation, self._system):
                return await write()
        started = time.perf_counter()
        try:
            return await write()
        finally:
            elapsed = time.perf_counter() - started
            if elapsed >= self._slow:
                self._tracer.event(
                    f"ledger {operation}",
                    {"db.system.name": "sqlite", "duration_s": round(elapsed, 6)},
                )

    async def begin(self, request_id: str, operations: list[str]) -> LedgerRecord:
        return await self._write("begin", lambda: self._inner.begin(request_id, operations))

    async def save(self, record: LedgerRecord) -> None:
        await self._write("save", lambda: self._inner.save(record))

    async def put_tag(self, key: str, value: str, *, only_new: bool = False) -> str:
        return await self._write(
            "put_tag", lambda: self._inner.put_tag(key, value, only_new=only_new)
        )

    async def get(self, request_id: str) -> LedgerRecord | None:
        return await self._inner.get(request_id)

    async def peek(self, request_id: str) -> LedgerRecord | None:
        return await self._inner.peek(request_id)

    async def find(self, status: str | None, limit: int) -> list[LedgerRecord]:
        return await self._inner.find(status, limit)

    async def acquire_lease(self, key: str, owner: str, ttl: float) -> bool:
        return await self._inner.acquire_lease(key, owner, ttl)

    async def release_lease(self, key: str, owner: str) -> None:
        await self._inner.release_lease(key, owner)

    async def get_tag(self, key: str) -> str | None:
        return await self._inner.get_tag(key)

    async def close(self) -> None:
        await self._inner.close()


def traced(ledger: Ledger, tracer: Tracer, url: str) -> Ledger:
    """``ledger`` with its progress writes traced, or itself unchanged with tracing off."""
    return TracedLedger(ledger, tracer, url) if tracer.enabled else ledger
