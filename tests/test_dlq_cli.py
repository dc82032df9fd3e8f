"""`orchestrator dlq`: ls, show, redrive, purge against moto's SQS over loopback.

Messages are put on the DLQ the way they get there in production: as the worker dead-letters
them (attributes ``reason``, ``error``, ``request_id``, ``source_message_id``; on a FIFO DLQ
group ``dlq``) or as SQS moves them after ``maxReceiveCount`` (no attributes of the worker).
Time is injected: a manual clock for pacing, a shifted wall clock for message ages.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import pytest
import structlog
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from structlog.testing import capture_logs

from orchestrator import dlq
from orchestrator.cli import main
from orchestrator.testing import Queues, create_queues, queue_counts, storage_request
from tests.clocks import ManualClock

SYSTEM = ["SentTimestamp", "ApproximateReceiveCount", "MessageGroupId", "MessageDeduplicationId"]


@pytest.fixture
async def sqs(moto_sqs: str) -> AsyncIterator[Any]:
    """One attempt per call: moto answers StartMessageMoveTask with a 500, which botocore's
    retries would only repeat (the CLI's own client retries as in production)."""
    config = AioConfig(retries={"mode": "standard", "total_max_attempts": 1})
    async with get_session().create_client("sqs", config=config) as client:
        yield client


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """The CLI configures structlog (stderr of the moment); put the test run's back after."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


def context(shift: float = 0.0, clock: ManualClock | None = None) -> dlq.Context:
    """Operator alice; the wall clock ``shift`` seconds ahead; moto needs no long poll."""
    return dlq.Context("alice", clock or ManualClock(), lambda: time.time() + shift, poll_wait=0)


def body(request_id: str, app: str = "app1", env: str = "dev", pad: int = 0) -> str:
    request = storage_request(request_id, app, env, "s" + "x" * pad)
    return json.dumps(request)


async def dead_letter(
    sqs: Any,
    dlq_url: str,
    request_id: str,
    reason: str = "invalid_params",
    **options: Any,
) -> None:
    """Put a message on the DLQ as the worker does (orchestrator/processor.py)."""
    source = options.pop("source", f"src-{request_id}")
    attributes = {
        "reason": reason,
        "error": f"{reason}: something about {request_id}",
        "request_id": request_id,
        "source_message_id": source,
        **options.pop("extra", {}),
    }
    params: dict[str, Any] = {
        "QueueUrl": dlq_url,
        "MessageBody": body(request_id, **options),
        "MessageAttributes": {
            name: {"DataType": "String", "StringValue": value} for name, value in attributes.items()
        },
    }
    if dlq_url.endswith(".fifo"):
        params |= {"MessageGroupId": "dlq", "MessageDeduplicationId": source}
    await sqs.send_message(**params)


async def moved_by_sqs(
    sqs: Any, dlq_url: str, request_id: str, attributes: dict[str, str], **fifo: str
) -> None:
    """A message SQS moved itself after maxReceiveCount: the producer's attributes only."""
    await sqs.send_message(
        QueueUrl=dlq_url,
        MessageBody=body(request_id),
        MessageAttributes={
            name: {"DataType": "String", "StringValue": value} for name, value in attributes.items()
        },
        **fifo,
    )


async def take_all(sqs: Any, url: str) -> dict[str, dict[str, Any]]:
    """Every message on a queue (received and deleted), by the body's request_id."""
    taken: dict[str, dict[str, Any]] = {}
    while True:
        response = await sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=0,
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=SYSTEM,
        )
        messages = response.get("Messages", [])
        if not messages:
            return taken
        for message in messages:
            taken[json.loads(message["Body"])["request_id"]] = message
            await sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def attributes_of(message: dict[str, Any]) -> dict[str, str]:
    return {k: v["StringValue"] for k, v in message.get("MessageAttributes", {}).items()}


async def cli(*args: str) -> int:
    return await anyio.to_thread.run_sync(main, list(args))


def audit_lines(stderr: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("logger") == "orchestrator.audit"]


# --- ls and show ---------------------------------------------------------------------------


async def test_ls_counts_by_reason_and_leaves_every_message_receivable(
    sqs: Any, queues: Queues, capsys: pytest.CaptureFixture[str]
) -> None:
    """1. The DLQ holds 3 invalid_params, 2 delivery_attempts_exhausted, 1 moved by SQS.
    2. `dlq ls --queue-url CHANGE_QUEUE` finds the DLQ through the RedrivePolicy and prints the
       count, the oldest message and the counts by reason over all 6 (not a sample).
    3. Nothing is left in flight: all 6 can be received at once; one audit line, no body."""
    for i in range(3):
        await dead_letter(sqs, queues.dlq, f"ls-a{i}", "invalid_params")
    for i in range(2):
        await dead_letter(sqs, queues.dlq, f"ls-b{i}", "delivery_attempts_exhausted")
    await moved_by_sqs(sqs, queues.dlq, "ls-c0", {"trace": "t"})
    capsys.readouterr()
    assert await cli("dlq", "ls", "--queue-url", queues.main, "--operator", "alice") == 0
    captured = capsys.readouterr()
    out = " ".join(captured.out.split())
    assert f"dead-letter queue {queues.dlq}" in out
    assert "~6 visible" in out and "oldest message:" in out
    assert (
        "by reason (all 6 messages): invalid_params 3 delivery_attempts_exhausted 2 none 1" in out
    )
    assert await queue_counts(sqs, queues.dlq) == (6, 0)
    assert len(await take_all(sqs, queues.dlq)) == 6
    [audit] = audit_lines(captured.err)
    assert audit["event"] == "dlq_ls" and audit["operator"] == "alice"
    assert audit["queue"] == queues.dlq and audit["sampled"] == 6 and audit["complete"] is True
    assert audit["reasons"] == {"invalid_params": 3, "delivery_attempts_exhausted": 2, "none": 1}
    assert "storage" not in captured.err  # no body (every body names create_backend_storage)


async def test_ls_says_when_the_counts_come_from_a_sample(sqs: Any, queues: Queues) -> None:
    """With --sample 2 of 5 messages the report says so, and the 5 stay receivable."""
    for i in range(5):
        await dead_letter(sqs, queues.dlq, f"sample-{i}")
    report = await dlq.ls(sqs, queues.dlq, context(), sample=2)
    assert report.sampled == 2 and not report.complete
    text = " ".join(dlq.render_report(report, time.time()).split())
    assert "oldest in the sample" in text and "a sample of 2 of ~5 (--sample N for more)" in text
    assert await queue_counts(sqs, queues.dlq) == (5, 0)


async def test_show_prints_bodies_and_attributes_and_deletes_nothing(
    sqs: Any, queues: Queues, capsys: pytest.CaptureFixture[str]
) -> None:
    """1. Two dead letters; `dlq show --json`: one JSON object per message with the body, the
       worker's attributes, SentTimestamp and the receive count.
    2. Visibility is back to 0 at once: both are receivable immediately (received a second
       time), none was deleted."""
    await dead_letter(sqs, queues.dlq, "show-1", "invalid_params", extra={"trace": "t-1"})
    await dead_letter(sqs, queues.dlq, "show-2", "too_large")
    before = int(time.time() * 1000)
    capsys.readouterr()
    assert await cli("dlq", "show", "--dlq-url", queues.dlq, "--json", "--limit", "5") == 0
    captured = capsys.readouterr()
    shown = {m["request_id"]: m for m in map(json.loads, captured.out.splitlines())}
    assert set(shown) == {"show-1", "show-2"}
    first = shown["show-1"]
    assert first["body"] == body("show-1") and first["reason"] == "invalid_params"
    assert first["error"] == "invalid_params: something about show-1"
    assert first["source_message_id"] == "src-show-1" and first["receive_count"] == 1
    assert first["attributes"]["trace"] == "t-1"
    assert abs(first["sent_timestamp"] - before) < 60_000
    assert await queue_counts(sqs, queues.dlq) == (2, 0)
    again = await take_all(sqs, queues.dlq)
    assert {k: v["Attributes"]["ApproximateReceiveCount"] for k, v in again.items()} == {
        "show-1": "2",
        "show-2": "2",
    }
    [audit] = audit_lines(captured.err)
    assert audit["event"] == "dlq_show" and sorted(audit["request_ids"]) == ["show-1", "show-2"]
    assert "storage" not in captured.err


# --- redrive -------------------------------------------------------------------------------


async def test_redrive_moves_everything_back_without_the_worker_attributes(
    sqs: Any, queues: Queues, capsys: pytest.CaptureFixture[str]
) -> None:
    """1. 12 dead letters (one carries a producer attribute), on a standard DLQ.
    2. `dlq redrive --queue-url`: moto has no StartMessageMoveTask, so it moves them by hand.
    3. The change queue has the 12 bodies unchanged: the producer's attribute and request_id
       kept, reason/error/source_message_id dropped, MessageGroupId = AppId (as `send` sets);
       the DLQ is empty; the audit line has counts and request ids, no body."""
    for i in range(12):
        extra = {"trace": "t-0"} if i == 0 else {}
        await dead_letter(sqs, queues.dlq, f"rd-{i}", app=f"app{i % 3}", extra=extra)
    capsys.readouterr()
    assert await cli("dlq", "redrive", "--queue-url", queues.main, "--operator", "bob") == 0
    captured = capsys.readouterr()
    assert "StartMessageMoveTask is not available" in captured.out
    assert "moved 12, skipped 0, failed 0" in captured.out
    back = await take_all(sqs, queues.main)
    assert sorted(back) == sorted(f"rd-{i}" for i in range(12))
    assert back["rd-0"]["Body"] == body("rd-0", app="app0")
    assert attributes_of(back["rd-0"]) == {"trace": "t-0", "request_id": "rd-0"}
    assert attributes_of(back["rd-4"]) == {"request_id": "rd-4"}
    assert back["rd-4"]["Attributes"]["MessageGroupId"] == "app1"
    assert await queue_counts(sqs, queues.dlq) == (0, 0)
    [audit] = audit_lines(captured.err)
    assert audit["event"] == "dlq_redrive" and audit["operator"] == "bob"
    assert audit["target"] == queues.main and audit["moved"] == 12 and audit["failed"] == {}
    assert sorted(audit["request_ids"]) == sorted(f"rd-{i}" for i in range(12))
    assert "storage" not in captured.err


async def test_redrive_filters_by_reason_request_id_and_age(sqs: Any, queues: Queues) -> None:
    """Each filtered redrive moves exactly what it selects and leaves the rest on the DLQ:
    1. --reason delivery_attempts_exhausted → r-3; 2. --request-id r-2 → r-2;
    3. --reason none (moved by SQS itself) → r-4;
    4. --older-than 2h: nothing when the messages are fresh; r-1 when the clock reads 3 h later;
       --newer-than 1h at that time: nothing. The audit lines name the filters."""
    await dead_letter(sqs, queues.dlq, "r-1", "invalid_params")
    await dead_letter(sqs, queues.dlq, "r-2", "invalid_params")
    await dead_letter(sqs, queues.dlq, "r-3", "delivery_attempts_exhausted")
    await moved_by_sqs(sqs, queues.dlq, "r-4", {"trace": "t-4"})

    async def redrive(filters: dlq.Filters, shift: float = 0.0) -> dlq.Summary:
        plan = dlq.Redrive(queues.dlq, queues.main, filters)
        summary = await dlq.redrive(sqs, plan, context(shift))
        assert summary.method == "receive/send/delete" and summary.ok
        return summary

    with capture_logs() as logged:
        first = await redrive(dlq.Filters(reasons=frozenset({"delivery_attempts_exhausted"})))
        assert (first.moved, dict(first.skipped)) == (1, {"filter": 3})
        assert list(await take_all(sqs, queues.main)) == ["r-3"]
        assert (await redrive(dlq.Filters(request_ids=frozenset({"r-2"})))).moved == 1
        assert list(await take_all(sqs, queues.main)) == ["r-2"]
        assert (await redrive(dlq.Filters(reasons=frozenset({dlq.NO_REASON})))).moved == 1
        moved = await take_all(sqs, queues.main)
        assert list(moved) == ["r-4"] and attributes_of(moved["r-4"]) == {"trace": "t-4"}
        assert (await redrive(dlq.Filters(older_than=7200))).moved == 0
        assert (await redrive(dlq.Filters(newer_than=3600), shift=3 * 3600)).moved == 0
        assert await queue_counts(sqs, queues.dlq) == (1, 0)
        assert (await redrive(dlq.Filters(older_than=7200), shift=3 * 3600)).moved == 1
        assert list(await take_all(sqs, queues.main)) == ["r-1"]
    assert await queue_counts(sqs, queues.dlq) == (0, 0)
    audits = [e for e in logged if e.get("logger") == "orchestrator.audit"]
    assert [a["filters"] for a in audits[:3]] == [
        {"reason": ["delivery_attempts_exhausted"]},
        {"request_id": ["r-2"]},
        {"reason": ["none"]},
    ]
    assert audits[-1]["filters"] == {"older_than_s": 7200} and audits[-1]["request_ids"] == ["r-1"]
    assert all(a["operator"] == "alice" and a["queue"] == queues.dlq for a in audits)


async def test_dry_runs_change_nothing(
    sqs: Any, queues: Queues, capsys: pytest.CaptureFixture[str]
) -> None:
    """`redrive --dry-run` lists what would move, `purge --all --dry-run` counts: afterwards
    the DLQ holds the same messages, all visible, and the change queue is empty."""
    for i in range(3):
        await dead_letter(sqs, queues.dlq, f"dry-{i}")
    capsys.readouterr()
    assert await cli("dlq", "redrive", "--queue-url", queues.main, "--dry-run") == 0
    out = capsys.readouterr().out
    assert sum(line.startswith("would move ") for line in out.splitlines()) == 3
    assert "request_id=dry-0" in out and "would move 3, skipped 0" in out
    assert await cli("dlq", "purge", "--dlq-url", queues.dlq, "--all", "--dry-run") == 0
    assert "(PurgeQueue): would delete 3" in capsys.readouterr().out
    assert await queue_counts(sqs, queues.dlq) == (3, 0)
    assert await queue_counts(sqs, queues.main) == (0, 0)
    assert sorted(await take_all(sqs, queues.dlq)) == ["dry-0", "dry-1", "dry-2"]


async def test_fifo_redrive_keeps_group_and_deduplication_ids(sqs: Any) -> None:
    """1. A FIFO DLQ holds one message SQS moved (group app1/dev, dedup fifo-a) and one the
       worker dead-lettered (group "dlq", dedup = its change-queue MessageId).
    2. Right away, nothing moves: both are inside the 5-minute deduplication window, where SQS
       could drop the sends silently. They stay on the DLQ.
    3. Ten minutes later (injected clock) both move by hand: fifo-a keeps its group and dedup
       id and its attribute; the worker's one gets its request's group back (app2/prod, as
       `orchestrator send` sets it) and keeps its dedup id, without the worker attributes."""
    fifo = await create_queues(sqs, fifo=True)
    await moved_by_sqs(
        sqs,
        fifo.dlq,
        "fifo-a",
        {"trace": "t-a"},
        MessageGroupId="app1/dev",
        MessageDeduplicationId="fifo-a",
    )
    await dead_letter(sqs, fifo.dlq, "fifo-b", app="app2", env="prod", source="src-b")
    plan = dlq.Redrive(fifo.dlq, fifo.main)
    early = await dlq.redrive(sqs, plan, context())
    assert (early.moved, dict(early.skipped)) == (0, {"fifo_dedup_window": 2})
    assert await queue_counts(sqs, fifo.dlq) == (2, 0)
    later = await dlq.redrive(sqs, plan, context(shift=600))
    assert (later.moved, later.method, later.ok) == (2, "receive/send/delete", True)
    back = await take_all(sqs, fifo.main)
    assert back["fifo-a"]["Attributes"]["MessageGroupId"] == "app1/dev"
    assert back["fifo-a"]["Attributes"]["MessageDeduplicationId"] == "fifo-a"
    assert attributes_of(back["fifo-a"]) == {"trace": "t-a"}
    assert back["fifo-b"]["Attributes"]["MessageGroupId"] == "app2/prod"
    assert back["fifo-b"]["Attributes"]["MessageDeduplicationId"] == "src-b"
    assert attributes_of(back["fifo-b"]) == {"request_id": "fifo-b"}
    assert await queue_counts(sqs, fifo.dlq) == (0, 0)


async def test_only_messages_the_target_accepted_are_deleted(sqs: Any, queues: Queues) -> None:
    """1. The target takes messages up to 1 KiB; the DLQ holds 4 small and 2 large ones.
    2. The batch is refused as a whole, so it is sent again one message at a time: the 4
       small ones move, the 2 large ones fail (counted by code) and stay on the DLQ, visible."""
    name = f"small-{uuid.uuid4().hex[:8]}"
    created = await sqs.create_queue(QueueName=name, Attributes={"MaximumMessageSize": "1024"})
    small = created["QueueUrl"]
    for i in range(4):
        await dead_letter(sqs, queues.dlq, f"fit-{i}")
    for i in range(2):
        await dead_letter(sqs, queues.dlq, f"big-{i}", pad=2000)
    summary = await dlq.redrive(sqs, dlq.Redrive(queues.dlq, small), context())
    assert summary.moved == 4 and sum(summary.failed.values()) == 2 and not summary.ok
    assert summary.error is None and summary.not_deleted == 0
    assert sorted(await take_all(sqs, small)) == [f"fit-{i}" for i in range(4)]
    assert await queue_counts(sqs, queues.dlq) == (2, 0)
    assert sorted(await take_all(sqs, queues.dlq)) == ["big-0", "big-1"]


async def test_batches_hold_at_most_10_entries_and_less_than_256_kib(
    sqs: Any, queues: Queues
) -> None:
    """Ten 60 KiB messages and five small ones are all moved, in SendMessageBatch calls of at
    most 10 entries and under 256 KiB each (recorded on the client as the calls are made)."""
    sent: list[list[dict[str, Any]]] = []
    sqs.meta.events.register(
        "before-parameter-build.sqs.SendMessageBatch",
        lambda params, **_: sent.append(params["Entries"]),
    )
    for i in range(10):
        await dead_letter(sqs, queues.dlq, f"large-{i}", pad=60 * 1024)
    for i in range(5):
        await dead_letter(sqs, queues.dlq, f"tiny-{i}")
    summary = await dlq.redrive(sqs, dlq.Redrive(queues.dlq, queues.main), context())
    assert summary.moved == 15 and summary.ok
    assert sum(len(batch) for batch in sent) == 15 and len(sent) >= 3
    for batch in sent:
        assert len(batch) <= 10
        assert sum(dlq.entry_size(entry) for entry in batch) < 256 * 1024
    assert len(await take_all(sqs, queues.main)) == 15


async def test_the_rate_cap_paces_sends_on_the_injected_clock(sqs: Any, queues: Queues) -> None:
    """25 messages at --rate 5: batches of 5, one second apart on the manual clock (4 s in
    all, no real sleeping); at no send has more been sent than 5/s since the first."""
    clock = ManualClock()
    sends: list[tuple[float, int]] = []
    sqs.meta.events.register(
        "before-parameter-build.sqs.SendMessageBatch",
        lambda params, **_: sends.append((clock.now(), len(params["Entries"]))),
    )
    for i in range(25):
        await dead_letter(sqs, queues.dlq, f"paced-{i}")
    selected = dlq.Filters(reasons=frozenset({"invalid_params"}))  # by hand, not a move task
    plan = dlq.Redrive(queues.dlq, queues.main, selected, rate=5)
    summary = await dlq.redrive(sqs, plan, context(clock=clock))
    assert summary.moved == 25 and summary.ok
    assert sends == [(1000.0 + second, 5) for second in range(5)]
    assert clock.slept == [1.0, 1.0, 1.0, 1.0]
    start, total = sends[0][0], 0
    for at, count in sends:
        assert total <= 5 * (at - start)
        total += count


async def test_limit_moves_at_most_that_many(sqs: Any, queues: Queues) -> None:
    for i in range(7):
        await dead_letter(sqs, queues.dlq, f"lim-{i}")
    summary = await dlq.redrive(sqs, dlq.Redrive(queues.dlq, queues.main, limit=3), context())
    assert summary.moved == 3
    assert len(await take_all(sqs, queues.main)) == 3
    assert await queue_counts(sqs, queues.dlq) == (4, 0)


class WithMoveTask:
    """moto's client, plus SQS's message move task, which moto lacks (its calls answer 500 "not
    implemented"). Only those two calls stand in: they move the messages with the real client
    over the same moto queues, and report RUNNING once before COMPLETED."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.started: list[dict[str, Any]] = []
        self._moved = 0
        self._polls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    async def _url(self, arn: str) -> str:
        found = await self._client.get_queue_url(QueueName=arn.rsplit(":", 1)[1])
        return str(found["QueueUrl"])

    async def start_message_move_task(self, **params: Any) -> dict[str, Any]:
        self.started.append(params)
        source, destination = (
            await self._url(params["SourceArn"]),
            await self._url(params["DestinationArn"]),
        )
        for message in (await take_all(self._client, source)).values():
            await self._client.send_message(QueueUrl=destination, MessageBody=message["Body"])
            self._moved += 1
        return {"TaskHandle": "task-1"}

    async def list_message_move_tasks(self, **params: Any) -> dict[str, Any]:
        self._polls += 1
        status = "RUNNING" if self._polls == 1 else "COMPLETED"
        return {"Results": [{"Status": status, "ApproximateNumberOfMessagesMoved": self._moved}]}


async def test_unfiltered_redrive_uses_sqs_move_task_where_the_api_has_it(
    sqs: Any, queues: Queues
) -> None:
    """1. Unfiltered, --rate 5: StartMessageMoveTask from the DLQ's ARN to the change queue's,
       at 5 messages/s; the command waits for the task (polling on the injected clock).
    2. The summary and the audit line report the task and its count; a dry run or a filter
       never starts a task."""
    for i in range(4):
        await dead_letter(sqs, queues.dlq, f"task-{i}")
    client, clock = WithMoveTask(sqs), ManualClock()
    dlq_arn = (await dlq.queue_info(sqs, queues.dlq)).arn
    main_arn = (await dlq.queue_info(sqs, queues.main)).arn
    with capture_logs() as logged:
        summary = await dlq.redrive(
            client, dlq.Redrive(queues.dlq, queues.main, rate=5), context(clock=clock)
        )
    assert client.started == [
        {"SourceArn": dlq_arn, "DestinationArn": main_arn, "MaxNumberOfMessagesPerSecond": 5}
    ]
    assert (summary.method, summary.moved, summary.task_handle) == (
        "StartMessageMoveTask",
        4,
        "task-1",
    )
    assert clock.slept == [dlq.MOVE_TASK_POLL]
    [audit] = [e for e in logged if e.get("logger") == "orchestrator.audit"]
    assert audit["method"] == "StartMessageMoveTask" and audit["task_handle"] == "task-1"
    assert len(await take_all(sqs, queues.main)) == 4
    await dead_letter(sqs, queues.dlq, "task-dry")
    dry = await dlq.redrive(client, dlq.Redrive(queues.dlq, queues.main, dry_run=True), context())
    assert dry.method == "receive/send/delete" and len(client.started) == 1


# --- purge ---------------------------------------------------------------------------------


async def test_purge_older_than_keeps_younger_messages(sqs: Any, queues: Queues) -> None:
    """1. Three messages, then (in a later millisecond) two more.
    2. purge --older-than the point between them (clock fixed): the 3 older ones are deleted,
       the 2 younger stay on the DLQ, visible; the audit line says so."""
    for i in range(3):
        await dead_letter(sqs, queues.dlq, f"old-{i}")
    old = await dlq.show(sqs, queues.dlq, context(), limit=10)
    newest_old = max(m.sent_at or 0.0 for m in old)
    # Waiting on the wall clock itself: the next messages must get a later SentTimestamp (ms).
    while time.time() <= newest_old + 0.001:  # noqa: ASYNC110
        await anyio.sleep(0.001)
    for i in range(2):
        await dead_letter(sqs, queues.dlq, f"young-{i}")
    every = await dlq.show(sqs, queues.dlq, context(), limit=10)
    oldest_young = min(m.sent_at or 0.0 for m in every if m.request_id.startswith("young"))
    assert oldest_young > newest_old
    split = (newest_old + oldest_young) / 2
    fixed = time.time() + 60
    ctx = dlq.Context("carol", ManualClock(), lambda: fixed, poll_wait=0)
    with capture_logs() as logged:
        summary = await dlq.purge(sqs, dlq.Purge(queues.dlq, older_than=fixed - split), ctx)
    assert summary.deleted == 3 and dict(summary.skipped) == {"younger": 2} and summary.ok
    assert await queue_counts(sqs, queues.dlq) == (2, 0)
    assert sorted(await take_all(sqs, queues.dlq)) == ["young-0", "young-1"]
    [audit] = [e for e in logged if e.get("logger") == "orchestrator.audit"]
    assert audit["event"] == "dlq_purge" and audit["operator"] == "carol"
    assert audit["deleted"] == 3 and sorted(audit["request_ids"]) == ["old-0", "old-1", "old-2"]


async def test_purge_all_needs_yes(
    sqs: Any, queues: Queues, capsys: pytest.CaptureFixture[str]
) -> None:
    """`purge --all` alone refuses (exit 2, one line) and deletes nothing; with --yes the DLQ
    is purged."""
    for i in range(2):
        await dead_letter(sqs, queues.dlq, f"all-{i}")
    capsys.readouterr()
    assert await cli("dlq", "purge", "--dlq-url", queues.dlq, "--all") == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("orchestrator: error:")]
    assert errors == ["orchestrator: error: --all deletes every message on the DLQ: add --yes"]
    assert await queue_counts(sqs, queues.dlq) == (2, 0)
    assert await cli("dlq", "purge", "--dlq-url", queues.dlq, "--all", "--yes") == 0
    assert await queue_counts(sqs, queues.dlq) == (0, 0)


# --- the pieces ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("30m", 1800), ("2h", 7200), ("7d", 604800), ("1w", 604800), ("1h30m", 5400)],
)
def test_durations(text: str, seconds: float) -> None:
    assert dlq.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "30", "2 hours", "h", "1h-5m", "-1h"])
def test_durations_need_a_number_and_a_unit(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        dlq.parse_duration(text)


def test_age_filters_are_strict_and_need_a_timestamp() -> None:
    def letter(sent_at: float | None) -> dlq.DeadLetter:
        return dlq.DeadLetter("m", "h", "{}", {}, sent_at, 1, None, None)

    older = dlq.Filters(older_than=3600)
    assert older.matches(letter(0.0), now=3601) and not older.matches(letter(0.0), now=3600)
    newer = dlq.Filters(newer_than=60)
    assert newer.matches(letter(100.0), now=159) and not newer.matches(letter(100.0), now=160)
    assert not older.matches(letter(None), now=1e9) and dlq.Filters().matches(letter(None), 0)
