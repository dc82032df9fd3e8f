"""A request's ledger record and the :class:`Ledger` protocol every backend implements."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Protocol

from orchestrator.clock import wall_time
from orchestrator.outcome import StepRecord

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
    #: The backend's version of the record as this object last read or wrote it (DynamoDB's
    #: conditional writes: a save is conditioned on it); None for a record not yet stored, and
    #: on SQLite. Not part of the stored document.
    version: int | None = field(default=None, compare=False, repr=False)

    def to_json(self) -> str:
        # vars(), not dataclasses.asdict: the fields are plain values, and asdict's deep copy
        # was most of a ledger write's CPU.
        document = {**vars(self), "steps": [vars(step) for step in self.steps]}
        del document["version"]
        return json.dumps(document, separators=(",", ":"))

    @classmethod
    def begun(
        cls, request_id: str, operations: list[str], found: LedgerRecord | None
    ) -> LedgerRecord:
        """The record a delivery works on: ``found`` with one more delivery, or a new one (also
        over a REJECTED record: that request never ran)."""
        if found is None or found.status == REJECTED:
            fresh = cls(request_id, steps=[StepRecord(op) for op in operations])
            fresh.version = found.version if found else None  # replaces the stored one
            return fresh
        found.deliveries += 1
        return found

    @classmethod
    def from_json(cls, text: str, version: int | None = None) -> LedgerRecord:
        data = json.loads(text)
        data["steps"] = [StepRecord(**step) for step in data.get("steps", [])]
        return cls(**data, version=version)


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
