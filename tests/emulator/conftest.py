"""Fixtures: emulators on loopback (threaded for boto3, in-loop for aiobotocore) and clients.

Every client is created with retries off (one attempt), so throttling and faults surface as
they happen, and is closed at teardown (the run treats unclosed sockets as errors).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import boto3
import pytest
from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession, get_session
from botocore.config import Config

from orchestrator.emulator import EmulatorHandle, EmulatorThread, run_emulator
from tests.emulator.support import CREDENTIALS, ONE_ATTEMPT, config
from tests.emulator.world import remember, setup_steps


@pytest.fixture(scope="session")
def boto_session() -> boto3.session.Session:
    return boto3.session.Session()


@pytest.fixture
def start_emulator() -> Iterator[Callable[..., EmulatorThread]]:
    """Start an EmulatorThread with BASE knobs overridden by keyword arguments."""
    started: list[EmulatorThread] = []

    def start(**knobs: Any) -> EmulatorThread:
        emu = EmulatorThread(config(**knobs)).start()
        started.append(emu)
        return emu

    yield start
    for emu in started:
        emu.stop()


@pytest.fixture
def make_client(boto_session: boto3.session.Session) -> Iterator[Callable[..., Any]]:
    clients: list[Any] = []

    def make(emu: EmulatorThread, **options: Any) -> Any:
        client = boto_session.client(
            "amplifybackend",
            endpoint_url=emu.url,
            config=Config(retries=ONE_ATTEMPT, **options),
            **CREDENTIALS,
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def emu(start_emulator: Callable[..., EmulatorThread]) -> EmulatorThread:
    return start_emulator()


@pytest.fixture
def client(make_client: Callable[..., Any], emu: EmulatorThread) -> Any:
    return make_client(emu)


@pytest.fixture
def world(client: Any) -> dict[str, str]:
    """Build the test world through the API; returns the JobId and SessionId it left."""
    ids: dict[str, str] = {}
    for method, params in setup_steps():
        remember(ids, getattr(client, method)(**params))
    return ids


@pytest.fixture
async def aemu() -> AsyncIterator[EmulatorHandle]:
    async with run_emulator(config()) as handle:
        yield handle


@pytest.fixture(scope="session")
def aio_session() -> AioSession:
    """One aiobotocore session for the run: its loader caches the service model."""
    return get_session()


@pytest.fixture
async def aclient(aemu: EmulatorHandle, aio_session: AioSession) -> AsyncIterator[Any]:
    async with aio_session.create_client(
        "amplifybackend",
        endpoint_url=aemu.url,
        config=AioConfig(retries=ONE_ATTEMPT),
        **CREDENTIALS,
    ) as client:
        yield client


@pytest.fixture
async def aworld(aclient: Any) -> dict[str, str]:
    """The same world as ``world``, built with aiobotocore."""
    ids: dict[str, str] = {}
    for method, params in setup_steps():
        remember(ids, await getattr(aclient, method)(**params))
    return ids
