"""The default ledger: an embedded SQLite file (WAL), one worker process (or a few on one
host) per file. ``sqlite3`` errors become :class:`~orchestrator.errors.LedgerUnavailable`."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from orchestrator.clock import wall_time
from orchestrator.errors import LedgerUnavailable
from orchestrator.ledger.record import LedgerRecord

T = TypeVar("T")


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
            try:
                return function()
            except sqlite3.Error as exc:  # a full disk, a file locked too long, a closed file
                raise LedgerUnavailable(f"ledger (SQLite) failed: {exc}") from exc

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
