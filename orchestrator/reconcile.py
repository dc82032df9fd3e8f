"""Finding the job that an ambiguous or interrupted mutation made, on any AmplifyBackend.

A mutation whose answer was lost (5xx, dropped connection, a worker killed mid-call) may or may
not have made a job. It is sent again only when the evidence says it did not; otherwise the
job it made is adopted, or, when nothing can be established, the request ends FAILED
``effect_unknown`` (at most once when in doubt).

The service documents neither the order of ListBackendJobs nor the format of ``CreateTime``
(the model says ``string``), so nothing here relies on either:

* jobs are listed with the ``Operation`` filter, every page walked; a walk stops early only when
  the timestamps seen so far establish the order (at least :data:`ORDER_EVIDENCE` of them, all
  non-increasing or all non-decreasing) and the last one lies outside the call's window;
* when the filtered walk shows no job of the operation at all, an unfiltered walk confirms it
  (a server that spells operations differently must not look like "no job");
* a *candidate* is a job of the same operation created within the call's window, widened by the
  clock skew and by the timestamp's resolution (epoch seconds are truncated to the second);
* a job claimed in the ledger (tag ``job:<JobId>``) by another step is never a candidate; one
  claimed by this step is adopted at once;
* verdicts: one unclaimed candidate → claimed and adopted; none, with every same-operation
  timestamp readable, the listing complete and the job visibility grace passed since the call
  could last have reached the service → *absent* (safe to send); otherwise *unknown*, naming the
  candidates (several unclaimed candidates, unreadable timestamps, the listing failing).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from orchestrator import defaults, logs, servicemodel
from orchestrator.amplify import AmplifyApi
from orchestrator.clock import Clock, MonotonicClock, wall_time
from orchestrator.errors import ApiRejected, OrchestratorError
from orchestrator.ledger import Ledger
from orchestrator.timestamps import parse_timestamp, resolution

log = logs.get_logger("orchestrator.reconcile")
#: Timestamps, all in one order, needed before that order is believed.
ORDER_EVIDENCE = 8


@dataclass(frozen=True)
class ReconcileSettings:
    #: How far the service's clock may be from ours (seconds).
    clock_skew: float = defaults.CLOCK_SKEW
    #: How long a new job may stay unlisted (the tracker's ``list_grace``).
    visibility_grace: float = defaults.LIST_GRACE
    #: The longest an interrupted call can have taken to reach the service (connect + read).
    call_timeout: float = 35.0
    #: First look after the failure; later looks back off, doubling, up to the grace.
    first_delay: float = 1.0
    page_size: int = defaults.LIST_PAGE_SIZE


@dataclass(frozen=True)
class Attempt:
    """A call whose effect is in question: which step made it, and when (our wall clock)."""

    app_id: str
    environment: str
    operation: str
    owner: str
    began: float
    #: When the caller stopped waiting for it (the error came back, or it let go); None when
    #: unknown (the worker died): then the call may have landed up to ``call_timeout`` later.
    until: float | None = None


class Verdict(StrEnum):
    FOUND = "found"
    ABSENT = "absent"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Finding:
    verdict: Verdict
    job: dict[str, Any] | None = None
    candidates: tuple[str, ...] = ()
    why: str = ""


@dataclass
class _Scan:
    same_operation: list[dict[str, Any]] = field(default_factory=list)
    listed: int = 0


class Reconciler:
    def __init__(
        self,
        api: AmplifyApi,
        ledger: Ledger,
        settings: ReconcileSettings | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._api = api
        self._ledger = ledger
        self._s = settings or ReconcileSettings()
        self._clock = clock or MonotonicClock()

    async def find(self, attempt: Attempt) -> Finding:
        """Look until the job is found, proven absent, or cannot be established."""
        latest = attempt.until if attempt.until is not None else attempt.began
        if attempt.until is None:
            latest += self._s.call_timeout
        visible_by = latest + self._s.visibility_grace
        delay = self._s.first_delay
        while True:
            await self._clock.sleep(max(0.0, min(delay, visible_by - wall_time())))
            finding = await self.look(attempt)
            if finding.verdict is not Verdict.ABSENT or wall_time() >= visible_by:
                return finding
            delay *= 2

    async def look(self, attempt: Attempt) -> Finding:
        """One look at the listing."""
        try:
            scan = await self._scan(attempt, filtered=True)
            if not scan.same_operation:
                scan = await self._scan(attempt, filtered=False)
        except OrchestratorError as exc:
            return Finding(Verdict.UNKNOWN, why=f"ListBackendJobs failed: {exc}")
        return await self._judge(attempt, scan)

    async def _judge(self, attempt: Attempt, scan: _Scan) -> Finding:
        window = _Window.of(attempt, self._s.clock_skew)
        unreadable: list[str] = []
        candidates: list[dict[str, Any]] = []
        for job in scan.same_operation:
            placed = window.places(job.get("CreateTime"))
            if placed is None:
                unreadable.append(str(job.get("JobId")))
            elif placed:
                candidates.append(job)
        free: list[dict[str, Any]] = []
        for job in candidates:
            owner = await self._ledger.get_tag(f"job:{job.get('JobId')}")
            if owner == attempt.owner:
                return Finding(Verdict.FOUND, job)
            if owner is None:
                free.append(job)
        ids = tuple(str(job.get("JobId")) for job in free)
        if unreadable:
            return Finding(Verdict.UNKNOWN, candidates=ids + tuple(unreadable), why="unreadable")
        if len(free) > 1:
            return Finding(Verdict.UNKNOWN, candidates=ids, why="several candidates")
        if free:
            return await self._claim(attempt, free[0])
        return Finding(Verdict.ABSENT)

    async def _claim(self, attempt: Attempt, job: dict[str, Any]) -> Finding:
        owner = await self._ledger.put_tag(f"job:{job.get('JobId')}", attempt.owner, only_new=True)
        if owner != attempt.owner:  # claimed by another step in the meantime: not ours
            return Finding(Verdict.ABSENT)
        return Finding(Verdict.FOUND, job)

    async def _scan(self, attempt: Attempt, *, filtered: bool) -> _Scan:
        scan = _Scan()
        order = _Order()
        window = _Window.of(attempt, self._s.clock_skew)
        pager = self._api.list_jobs(
            attempt.app_id,
            attempt.environment,
            page_size=self._s.page_size,
            operation=attempt.operation if filtered else None,
        )
        async with contextlib.aclosing(pager):
            try:
                async for page in pager:
                    for job in page:
                        scan.listed += 1
                        if same_operation(job, attempt.operation):
                            scan.same_operation.append(job)
                        order.see(job.get("CreateTime"))
                    if order.beyond(window):
                        break
            except ApiRejected as exc:
                if exc.code != "NotFoundException":  # no such environment: no job either
                    raise
        return scan


@dataclass(frozen=True)
class _Window:
    since: float
    until: float | None

    @classmethod
    def of(cls, attempt: Attempt, skew: float) -> _Window:
        until = attempt.until
        return cls(attempt.began - skew, None if until is None else until + skew)

    def places(self, stamp: object) -> bool | None:
        """Whether a job created at ``stamp`` may have been made by the call (None: unreadable)."""
        created = parse_timestamp(stamp)
        if created is None:
            return None
        latest = created + resolution(stamp)
        return latest >= self.since and (self.until is None or created <= self.until)


@dataclass
class _Order:
    """The order of the listing, as far as the timestamps seen establish it."""

    count: int = 0
    last: float = 0.0
    descending: bool = True
    ascending: bool = True

    def see(self, stamp: object) -> None:
        created = parse_timestamp(stamp)
        if created is None:  # an unreadable timestamp establishes nothing
            self.descending = self.ascending = False
            return
        if self.count:
            self.descending &= created <= self.last
            self.ascending &= created >= self.last
        self.count, self.last = self.count + 1, created

    def beyond(self, window: _Window) -> bool:
        """True when every job still to come lies outside the window."""
        if self.count < ORDER_EVIDENCE:
            return False
        if self.descending:  # newest first: the rest are older still
            return self.last + 1.0 < window.since
        if self.ascending and window.until is not None:  # oldest first: the rest are newer
            return self.last > window.until
        return False


def _normalise(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def same_operation(job: dict[str, Any], operation: str) -> bool:
    """A listed job's ``Operation`` names ``operation`` (API or boto3 spelling, any case)."""
    listed = _normalise(str(job.get("Operation", "")))
    return listed in {_normalise(operation), _normalise(servicemodel.method_name(operation))}
