"""Hypothesis-generated bodies through a running worker: hostile input never hurts neighbours."""

from __future__ import annotations

import json
import os
import uuid
from collections import Counter
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings

from orchestrator.emulator import EmulatorConfig, run_emulator
from orchestrator.errors import RequestRejected
from orchestrator.messages import parse_change_request
from orchestrator.testing import (
    create_queues,
    drain,
    queue_counts,
    running_worker,
    sqs_client,
    storage_request,
)
from tests.strategies import any_body, sqs_safe

#: `make fuzz` raises this (ORCHESTRATOR_FUZZ_WORKER_BODIES); `make test` runs 150.
GENERATED = int(os.environ.get("ORCHESTRATOR_FUZZ_WORKER_BODIES", "150"))
NEIGHBOURS = 30


def generated_bodies() -> list[str]:
    """Run Hypothesis over `any_body` and keep what SQS can carry."""
    bodies: list[str] = []

    @settings(
        max_examples=GENERATED,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(body=any_body)
    def collect(body: str | bytes) -> None:
        safe = sqs_safe(body)
        if safe is not None:
            bodies.append(safe)

    collect()
    return bodies


def is_valid(body: str) -> bool:
    try:
        parse_change_request(body)
    except RequestRejected:
        return False
    return True


async def _the_rest(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    """Whatever the queue still holds (until a receive comes back empty)."""
    got: list[dict[str, Any]] = []
    while messages := (
        await sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=1,
            MessageAttributeNames=["All"],
        )
    ).get("Messages", []):
        got += messages
    return got


@pytest.mark.timeout(120 + GENERATED // 2)
def test_generated_bodies_through_the_worker(
    moto_sqs: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """1. A few hundred Hypothesis bodies (random JSON, wrong types, model-shaped params with a
       corrupted member, 20,000-deep nesting, bodies near 256 KiB, arbitrary text) are sent
       interleaved with 30 valid change requests.
    2. The worker keeps running; every body gets exactly one outcome event; each invalid one is
       REJECTED and moved to the DLQ with a reason attribute; every valid neighbour SUCCEEDS;
       the queue ends empty."""
    hostile = generated_bodies()
    assert len(hostile) >= GENERATED // 2
    neighbours = [
        storage_request(f"ok-{uuid.uuid4().hex[:8]}", "app1", "dev", f"s{i}")
        for i in range(NEIGHBOURS)
    ]
    anyio.run(_through_the_worker, hostile, neighbours, monkeypatch)


async def _through_the_worker(
    hostile: list[str], neighbours: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    bodies = list(hostile)
    for index, neighbour in enumerate(neighbours):
        bodies.insert((index * len(bodies)) // len(neighbours), json.dumps(neighbour))
    invalid = [body for body in bodies if not is_valid(body)]
    config = EmulatorConfig(apps={"app1": ["dev"]}, job_duration=(0.05, 0.2), seed=9)
    async with sqs_client() as sqs, run_emulator(config, host="127.0.0.1", port=0) as emulator:
        monkeypatch.setenv("AWS_ENDPOINT_URL_AMPLIFYBACKEND", emulator.url)
        queues = await create_queues(sqs)
        for body in bodies:  # one by one: a batch may not exceed 256 KiB
            await sqs.send_message(QueueUrl=queues.main, MessageBody=body)
        async with running_worker(queues.settings(concurrency=16)):
            events = await drain(sqs, queues.results, len(bodies), deadline=240)
            dead = await drain(sqs, queues.dlq, len(invalid), deadline=60, attributes=True)
            assert await queue_counts(sqs, queues.main) == (0, 0)
            dead += await _the_rest(sqs, queues.dlq)  # more rejected than the oracle says?
            events += [json.loads(m["Body"]) for m in await _the_rest(sqs, queues.results)]
    # SQS is at-least-once: a send whose answer was lost (moto's server answers 500 now and
    # then under load) is retried by botocore and may land twice. A copy is not a loss and not
    # a wrong verdict, so each message counts once, by its message id or body.
    events = list({event["message_id"]: event for event in events}.values())
    outcomes = Counter(event["outcome"] for event in events)
    moved, expected = Counter(set(m["Body"] for m in dead)), Counter(set(invalid))
    assert moved == expected, (
        f"rejected, but valid to parse_change_request here: {list(moved - expected)[:3]}; "
        f"invalid here, not rejected: {list(expected - moved)[:3]}"
    )
    assert outcomes["REJECTED"] == len(invalid)
    assert all(m["MessageAttributes"]["reason"]["StringValue"] for m in dead)
    by_id = {event["request_id"]: event for event in events if event["request_id"]}
    assert all(by_id[n["request_id"]]["outcome"] == "SUCCEEDED" for n in neighbours)
