"""ListBackendJobs: the orders jobs are listed in, the NextToken cursor, one page.

AWS documents no order for ListBackendJobs, so the emulator can play three (``list_order``):

* ``newest``: newest first (by CreateTime, then creation sequence);
* ``oldest``: oldest first (the same key, ascending);
* ``unordered``: a stable order that is neither: ascending by a hash of the JobId salted with
  the seed the emulator had when the job was created (then the sequence, for ties).

Every order is a total order on an immutable key per job, so the cursor is simply the key of
the last job a page returned: the next page continues strictly past it. Pages therefore stay
stable while new jobs arrive (a new job lands wherever its key puts it: listed if that is
past the cursor, not otherwise), and no job that existed at the first page is skipped or
listed twice. ``NextToken`` is opaque (base64 of the order and the key) and names its order,
so a walk started before ``list_order`` changed continues in the order it began in; an
unreadable token is a BadRequestException.

:class:`EnvJobs` keeps one environment's jobs sorted for both keys (by time, by hash): a new
job is an append in the common case; history jobs are filed in one batch and sorted once.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import hashlib
import math
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

from orchestrator.emulator.errors import bad_request


class Listable(Protocol):
    """What a listing needs of a job (:class:`orchestrator.emulator.jobs.Job` has it)."""

    @property
    def seq(self) -> int: ...

    @property
    def created(self) -> float: ...

    @property
    def shuffle(self) -> int: ...

    @property
    def visible_at(self) -> float: ...


J = TypeVar("J", bound=Listable)

NEWEST, OLDEST, UNORDERED = "newest", "oldest", "unordered"
LIST_ORDERS = (NEWEST, OLDEST, UNORDERED)
Key = tuple[float, int]
_FILTERS = {"JobId": "job_id", "Operation": "operation", "Status": "status"}
_TOKEN_PREFIX = "jobs-v2"


def shuffle_key(salt: str, job_id: str) -> int:
    """The ``unordered`` rank of a job: 64 bits of a hash of the salt and its JobId."""
    digest = hashlib.blake2b(f"{salt}:{job_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def _by_time(job: J) -> Key:
    return (job.created, job.seq)


def _by_hash(job: J) -> Key:
    return (job.shuffle, job.seq)


class EnvJobs(Generic[J]):
    """One (app, environment)'s jobs, sorted ascending by each order's key."""

    def __init__(self) -> None:
        self.by_time: list[J] = []
        self.by_hash: list[J] = []

    def __len__(self) -> int:
        return len(self.by_time)

    def add(self, job: J) -> None:
        _insert(self.by_time, job, _by_time)
        bisect.insort(self.by_hash, job, key=_by_hash)

    def add_many(self, jobs: list[J]) -> None:
        self.by_time.extend(jobs)
        self.by_time.sort(key=_by_time)
        self.by_hash.extend(jobs)
        self.by_hash.sort(key=_by_hash)

    def ordered(self, order: str) -> tuple[list[J], Callable[[J], Key]]:
        """The list ascending by ``order``'s key, and that key."""
        if order == UNORDERED:
            return self.by_hash, _by_hash
        return self.by_time, _by_time


def _insert(jobs: list[J], job: J, key: Callable[[J], Key]) -> None:
    if not jobs or key(jobs[-1]) <= key(job):
        jobs.append(job)
    else:
        bisect.insort(jobs, job, key=key)


def page(
    jobs: EnvJobs[J],
    order: str,
    now: float,
    filters: dict[str, str],
    limit: int,
    token: str | None,
) -> tuple[list[J], str | None]:
    """One page of visible jobs matching ``filters``, and the token of the next page."""
    after: Key | None = None
    if token:
        order, after = _decode(token)
    ordered, key = jobs.ordered(order)
    wanted = [(_FILTERS[name], value) for name, value in filters.items()]
    found: list[J] = []
    for index in _indices(ordered, key, order, after):
        job = ordered[index]
        if job.visible_at > now or any(getattr(job, a) != v for a, v in wanted):
            continue
        found.append(job)
        if len(found) > limit:
            return found[:limit], _encode(order, key(found[limit - 1]))
    return found, None


def _indices(ordered: list[J], key: Callable[[J], Key], order: str, after: Key | None) -> range:
    """Positions to visit, in listing order, strictly past the cursor ``after``."""
    if order == NEWEST:
        stop = len(ordered) if after is None else bisect.bisect_left(ordered, after, key=key)
        return range(stop - 1, -1, -1)
    start = 0 if after is None else bisect.bisect_right(ordered, after, key=key)
    return range(start, len(ordered))


def _encode(order: str, key: Key) -> str:
    text = f"{_TOKEN_PREFIX}:{order}:{key[0]!r}:{key[1]}"
    return base64.urlsafe_b64encode(text.encode()).decode()


def _decode(token: str) -> tuple[str, Key]:
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
        prefix, order, primary, seq = text.split(":")
        if prefix == _TOKEN_PREFIX and order in LIST_ORDERS:
            rank = int(primary) if order == UNORDERED else float(primary)
            if math.isfinite(rank):
                return order, (rank, int(seq))
    except (ValueError, OverflowError, binascii.Error, UnicodeDecodeError):
        pass
    raise bad_request(f"invalid NextToken {token!r}")
