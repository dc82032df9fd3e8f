"""The dead-letter path loses nothing, and every request gets one outcome event.

Against moto's SQS (and DynamoDB) and the emulator over loopback: a DLQ that refuses a move
keeps the message on the change queue; a rejected request's outcome goes where it asked
(``reply_to``) and it has a ledger record; the last delivery before ``maxReceiveCount`` ends a
failing request FAILED ``delivery_attempts_exhausted`` and moves its message itself.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aiobotocore.session import get_session

from orchestrator.ledger import open_ledger
from orchestrator.testing import (
    Queues,
    auth_request,
    create_queues,
    drain,
    queue_counts,
    running_worker,
    send,
    wait_until,
)
from orchestrator.worker import Worker

INVALID = json.dumps({"request_id": "bad-1", "operation": "CreateBackendAuth", "params": {}})


async def delete_table(url: str) -> None:
    async with get_session().create_client("dynamodb") as client:
        await client.delete_table(TableName=url.removeprefix("dynamodb://"))


def sample(worker: Worker, name: str, **labels: str) -> float:
    value = worker.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


async def test_a_rejected_message_stays_on_the_queue_while_the_dlq_refuses_it(
    sqs: Any, queues: Queues, emulator: Any
) -> None:
    """1. Start a worker, then delete its DLQ and send one invalid request.
    2. The move fails: counted by reason, and the message is neither deleted nor reported.
    3. Recreate the DLQ: the message's next delivery moves it, with its reason."""
    dlq_name = queues.dlq.rsplit("/", 1)[1]
    async with running_worker(queues.settings(dlq_url=queues.dlq)) as (worker, _):
        await sqs.delete_queue(QueueUrl=queues.dlq)
        await send(sqs, queues.main, [INVALID])
        failures = "orchestrator_dlq_move_failures_total"
        await wait_until(lambda: sample(worker, failures, reason="invalid_params") >= 1)
        assert sum(await queue_counts(sqs, queues.main)) == 1  # kept, not deleted
        assert sample(worker, "orchestrator_dlq_moves_total", reason="invalid_params") == 0
        assert sample(worker, "orchestrator_sqs_deletes_total") == 0
        await sqs.create_queue(QueueName=dlq_name)
        [dead] = await drain(sqs, queues.dlq, 1, attributes=True, deadline=30)
        [event] = await drain(sqs, queues.results, 1)
    assert dead["Body"] == INVALID
    assert dead["MessageAttributes"]["reason"]["StringValue"] == "invalid_params"
    assert event["outcome"] == "REJECTED" and event["request_id"] == "bad-1"
    assert await queue_counts(sqs, queues.main) == (0, 0)


async def test_a_rejected_request_is_answered_at_its_reply_to_and_recorded(
    sqs: Any, queues: Queues, emulator: Any, tmp_path: Path
) -> None:
    """A rejected request names its own reply_to: the REJECTED event goes there (not to the
    results queue) and the ledger holds a REJECTED record for it; a body without a readable
    request id is recorded under its message id."""
    reply = (await sqs.create_queue(QueueName=f"{queues.results.rsplit('/', 1)[1]}-reply"))[
        "QueueUrl"
    ]
    bad = {"request_id": "bad-2", "operation": "CreateBackendAuth", "params": {}}
    ledger = f"sqlite:///{tmp_path / 'ledger.db'}"
    await send(sqs, queues.main, [{**bad, "reply_to": reply}, "not json"])
    async with running_worker(queues.settings(ledger=ledger)):
        [answer] = await drain(sqs, reply, 1)
        [other] = await drain(sqs, queues.results, 1)
        await drain(sqs, queues.dlq, 2, attributes=True)
    assert answer["request_id"] == "bad-2" and answer["reason"] == "invalid_params"
    assert other["outcome"] == "REJECTED" and other["reason"] == "invalid_json"
    assert await queue_counts(sqs, queues.results) == (0, 0)
    async with open_ledger(ledger) as store:
        records = {r.request_id: r for r in await store.find("REJECTED", 10)}
    assert set(records) == {"bad-2", f"message:{other['message_id']}"}
    assert json.loads(records["bad-2"].outcome or "{}")["reason"] == "invalid_params"


async def test_a_rejection_never_overwrites_an_earlier_request_with_its_id(
    sqs: Any, queues: Queues, emulator: Any, tmp_path: Path
) -> None:
    """A request id that SUCCEEDED, used again by an invalid body: still rejected and
    dead-lettered, but the ledger keeps the earlier request's record."""
    ledger = f"sqlite:///{tmp_path / 'ledger.db'}"
    good = auth_request("same-id", "app1", "dev", "auth-1")
    bad = {"request_id": "same-id", "operation": "CreateBackendAuth", "params": {}}
    async with running_worker(queues.settings(ledger=ledger)):
        await send(sqs, queues.main, [good])
        [first] = await drain(sqs, queues.results, 1)
        await send(sqs, queues.main, [bad])
        [second] = await drain(sqs, queues.results, 1)
        await drain(sqs, queues.dlq, 1)
    assert (first["outcome"], second["outcome"]) == ("SUCCEEDED", "REJECTED")
    async with open_ledger(ledger) as store:
        record = await store.get("same-id")
    assert record is not None and record.status == "SUCCEEDED"


async def test_the_last_delivery_reports_failed_and_moves_the_message_itself(
    sqs: Any, emulator: Any, ledger_table: str
) -> None:
    """maxReceiveCount 2 and a ledger table deleted under the running worker: the first
    delivery fails and is released; the second (the last SQS allows) reports FAILED
    delivery_attempts_exhausted and moves the body to the DLQ with that reason, so the
    producer is answered and the change queue ends empty. The emulator saw no mutation."""
    queues = await create_queues(sqs, max_receive_count=2)
    async with running_worker(queues.settings(ledger=ledger_table)) as (worker, _):
        await delete_table(ledger_table)
        await send(sqs, queues.main, [auth_request("doomed", "app1", "dev", "auth-d")])
        [event] = await drain(sqs, queues.results, 1, deadline=30)
        [dead] = await drain(sqs, queues.dlq, 1, attributes=True)
        exhausted = "delivery_attempts_exhausted"
        assert sample(worker, "orchestrator_dlq_moves_total", reason=exhausted) == 1
    assert (event["outcome"], event["reason"]) == ("FAILED", exhausted)
    assert "2 deliveries" in event["error"]
    assert json.loads(dead["Body"])["request_id"] == "doomed"
    assert dead["MessageAttributes"]["reason"]["StringValue"] == exhausted
    assert dead["MessageAttributes"]["request_id"]["StringValue"] == "doomed"
    assert await queue_counts(sqs, queues.main) == (0, 0)
    assert sum(emulator.stats()["mutations"].values()) == 0


async def test_a_failure_before_the_last_delivery_is_retried_not_reported(
    sqs: Any, emulator: Any, ledger_table: str
) -> None:
    """The same failure with deliveries to spare: the message is released for a later
    delivery, with no outcome event and nothing on the DLQ."""
    queues = await create_queues(sqs, max_receive_count=5)
    async with running_worker(queues.settings(ledger=ledger_table)) as (worker, _):
        await delete_table(ledger_table)
        await send(sqs, queues.main, [auth_request("later", "app1", "dev", "auth-l")])
        await wait_until(lambda: sample(worker, "orchestrator_messages_received_total") >= 1)
        released = {"operation": "ChangeMessageVisibility", "result": "ok"}
        await wait_until(lambda: sample(worker, "orchestrator_sqs_calls_total", **released) >= 1)
        assert sum(await queue_counts(sqs, queues.main)) == 1
    assert await queue_counts(sqs, queues.results) == (0, 0)
    assert await queue_counts(sqs, queues.dlq) == (0, 0)


async def test_a_corrected_request_under_a_rejected_id_runs(
    sqs: Any, queues: Queues, emulator: Any, tmp_path: Path
) -> None:
    """A rejection never ran anything: the producer fixes the body and re-sends it under the
    same request_id, and it runs (instead of re-sending the stored REJECTED outcome)."""
    ledger = f"sqlite:///{tmp_path / 'ledger.db'}"
    bad = {"request_id": "fixme", "operation": "CreateBackendAuth", "params": {}}
    async with running_worker(queues.settings(ledger=ledger)):
        await send(sqs, queues.main, [bad])
        [first] = await drain(sqs, queues.results, 1)
        await drain(sqs, queues.dlq, 1)
        await send(sqs, queues.main, [auth_request("fixme", "app1", "dev", "auth-f")])
        [second] = await drain(sqs, queues.results, 1)
    assert (first["outcome"], second["outcome"]) == ("REJECTED", "SUCCEEDED")
    assert sum(emulator.stats()["mutations"].values()) == 1
    async with open_ledger(ledger) as store:
        record = await store.get("fixme")
    assert record is not None and record.status == "SUCCEEDED" and record.deliveries == 1
