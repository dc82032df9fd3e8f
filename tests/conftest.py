"""Shared fixtures: AWS settings pointing at loopback, moto's SQS server, the emulator."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiobotocore.session import get_session
from moto.server import ThreadedMotoServer

from orchestrator.emulator import EmulatorConfig, run_emulator
from orchestrator.ledger.table import create_table
from orchestrator.testing import Queues, create_queues, sqs_client

_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}


@pytest.fixture(scope="session", autouse=True)
def aws_environment() -> Iterator[None]:
    """Fake credentials and a region: nothing in the test run can reach real AWS."""
    saved = {name: os.environ.get(name) for name in _AWS}
    os.environ.update(_AWS)
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="session")
def moto_sqs(aws_environment: None) -> Iterator[str]:
    """moto's server on a free loopback port, as the SQS and DynamoDB endpoint of every client."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    names = ("AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL_DYNAMODB")
    previous = {name: os.environ.get(name) for name in names}
    os.environ.update(dict.fromkeys(names, url))
    yield url
    server.stop()
    for name, value in previous.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture
async def ledger_table(moto_sqs: str) -> str:
    """A fresh DynamoDB ledger table on moto's server; its ``dynamodb://`` URL."""
    table = f"ledger-{uuid.uuid4().hex[:10]}"
    async with get_session().create_client("dynamodb") as client:
        await create_table(client, table)
    return f"dynamodb://{table}"


@pytest.fixture
async def sqs(moto_sqs: str) -> AsyncIterator[Any]:
    async with sqs_client() as client:
        yield client


@pytest.fixture
async def queues(sqs: Any) -> Queues:
    return await create_queues(sqs)


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    """Override in a module (or parametrise) to change the emulator's knobs."""
    return EmulatorConfig(apps={"app1": ["dev", "prod"], "app2": ["dev"]}, seed=7)


@pytest.fixture
async def emulator(
    emulator_config: EmulatorConfig, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Any]:
    async with run_emulator(emulator_config, host="127.0.0.1", port=0) as emu:
        monkeypatch.setenv("AWS_ENDPOINT_URL_AMPLIFYBACKEND", emu.url)
        yield emu
