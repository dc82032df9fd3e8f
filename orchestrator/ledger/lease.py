"""Leases held in the ledger: mutual exclusion across worker processes and replicas.

``async with leases.hold(key):`` waits (with jittered backoff) until ``key`` is free or expired
and releases it at the end. :meth:`Leases.run`, one task owned by the worker, renews every
lease the process holds every third of ``ttl``: one renewal loop for the process, not a task
per lease. A holder that dies stops renewing; its leases expire after ``ttl`` and another
worker may take over. Keys used: ``env:<AppId>/<BackendEnvironmentName>`` (one job in flight
per environment across replicas) and ``request:<request_id>`` (one delivery of a request
worked on at a time).
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import AsyncIterator

import anyio
from anyio.abc import TaskStatus

from orchestrator import logs
from orchestrator.backoff import RetryPolicy
from orchestrator.clock import Clock, MonotonicClock
from orchestrator.errors import LeaseLost, OrchestratorError
from orchestrator.ledger.record import Ledger

log = logs.get_logger("orchestrator.lease")


class Leases:
    def __init__(
        self,
        ledger: Ledger,
        owner: str,
        ttl: float,
        *,
        poll_cap: float = 1.0,
        clock: Clock | None = None,
    ) -> None:
        self._ledger = ledger
        self.owner = owner
        self.ttl = ttl
        #: A held lease is polled for, from 20 ms apart doubling to ``poll_cap``, without end
        #: (its holder renews it while working, or it expires).
        self._polling = RetryPolicy(max_attempts=None, base=0.02, cap=poll_cap)
        self._clock = clock or MonotonicClock()
        #: Keys held, with how many blocks of this process hold each (normally one).
        self._held: Counter[str] = Counter()

    @property
    def held(self) -> frozenset[str]:
        return frozenset(self._held)

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Renew the held leases every third of ``ttl`` until cancelled."""
        task_status.started()
        while True:
            await self._clock.sleep(self.ttl / 3)
            await self.renew()

    async def renew(self) -> None:
        for key in list(self._held):
            try:
                renewed = await self._ledger.acquire_lease(key, self.owner, self.ttl)
            except OrchestratorError as exc:  # the ledger unavailable: try again next round
                log.warning("lease_renewal_failed", lease=key, error=str(exc))
                continue
            if key not in self._held:  # released while the renewal was in flight: again
                await self._release(key)
            elif not renewed:
                log.error("lease_lost", lease=key, owner=self.owner)

    async def confirm(self, keys: list[str]) -> None:
        """Renew ``keys`` now, before an action only their holder may take (a mutation): a
        holder whose renewals were late and whose lease another worker has taken must not act
        on it. Raises :class:`LeaseLost`; each lease then has a full ``ttl`` ahead."""
        for key in keys:
            if not await self._ledger.acquire_lease(key, self.owner, self.ttl):
                log.error("lease_lost", lease=key, owner=self.owner)
                raise LeaseLost(f"lease {key} was taken by another worker")

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        await self._acquire(key)
        self._held[key] += 1
        try:
            yield
        finally:
            self._held[key] -= 1
            if not self._held[key]:
                del self._held[key]
                await self._release_quietly(key)

    async def _acquire(self, key: str) -> None:
        for attempt in self._polling.attempts():
            if await self._ledger.acquire_lease(key, self.owner, self.ttl):
                return
            if attempt.number == 1:
                log.info("lease_wait", lease=key)
            await attempt.backoff(self._clock)

    async def _release(self, key: str) -> None:
        with anyio.CancelScope(shield=True):
            await self._ledger.release_lease(key, self.owner)

    async def _release_quietly(self, key: str) -> None:
        """Release at the end of a block: a release that fails must not replace the block's
        own outcome (a JobFailed, a cancellation); the lease then expires after ``ttl``."""
        try:
            await self._release(key)
        except OrchestratorError as exc:
            log.warning("lease_release_failed", lease=key, error=str(exc))
