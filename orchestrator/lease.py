"""Leases held in the ledger: mutual exclusion across worker processes and replicas.

``async with held(ledger, key, owner, ttl):`` waits (with jittered backoff) until ``key`` is
free or expired, keeps it renewed every third of ``ttl`` while the block runs, and releases it
at the end. A holder that dies stops renewing; its lease expires after ``ttl`` and another
worker may take over. Keys used: ``env:<AppId>/<BackendEnvironmentName>`` (one job in flight
per environment across replicas) and ``request:<request_id>`` (one delivery of a request
worked on at a time).
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import AsyncIterator

import anyio
import structlog

from orchestrator.ledger import Ledger

log = structlog.get_logger().bind(logger="orchestrator.lease")


@contextlib.asynccontextmanager
async def held(
    ledger: Ledger, key: str, owner: str, ttl: float, *, poll_cap: float = 1.0
) -> AsyncIterator[None]:
    await _acquire(ledger, key, owner, ttl, poll_cap)
    try:
        async with _unwrapped(), anyio.create_task_group() as renewals:
            renewals.start_soon(_renew, ledger, key, owner, ttl)
            try:
                yield
            finally:
                renewals.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            await ledger.release_lease(key, owner)


@contextlib.asynccontextmanager
async def _unwrapped() -> AsyncIterator[None]:
    """Let the block's own error through as itself, not inside the renewal group's wrapper.

    The renewal task never fails (it only logs), so a group holds at most the body's error.
    """
    try:
        yield
    except BaseExceptionGroup as group:
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise


async def _acquire(ledger: Ledger, key: str, owner: str, ttl: float, poll_cap: float) -> None:
    delay = 0.02
    waited = False
    while not await ledger.acquire_lease(key, owner, ttl):
        if not waited:
            log.info("lease_wait", lease=key)
            waited = True
        await anyio.sleep(random.uniform(0, delay))
        delay = min(poll_cap, delay * 2)


async def _renew(ledger: Ledger, key: str, owner: str, ttl: float) -> None:
    while True:
        await anyio.sleep(ttl / 3)
        if not await ledger.acquire_lease(key, owner, ttl):
            log.error("lease_lost", lease=key, owner=owner)
