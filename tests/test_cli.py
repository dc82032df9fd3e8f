"""The command line: validate offline, send after validation, --help everywhere."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from orchestrator.cli import main
from tests.stack import Queues, drain, running_worker, send, storage_request


def write(tmp_path: Path, documents: list[Any]) -> str:
    path = tmp_path / "requests.jsonl"
    path.write_text("\n".join(json.dumps(d) for d in documents) + "\n")
    return str(path)


def test_validate_reports_each_problem_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path,
        [
            storage_request("ok-1", "a", "dev", "s"),
            {"request_id": "bad", "operation": "GetBackend", "params": {}},
        ],
    )
    assert main(["validate", path]) == 1
    captured = capsys.readouterr()
    assert "line 1: ok: ok-1" in captured.out
    assert "line 2: rejected (not_a_mutation)" in captured.err


def test_validate_accepts_a_json_array(tmp_path: Path) -> None:
    path = tmp_path / "requests.json"
    path.write_text(json.dumps([storage_request(f"r{i}", "a", "dev", "s") for i in range(3)]))
    assert main(["validate", str(path)]) == 0


async def test_send_enqueues_only_after_everything_validates(
    tmp_path: Path, sqs: Any, queues: Queues
) -> None:
    """1. A file with one invalid request: nothing is sent, exit 1.
    2. A valid file: every request is on the queue."""
    bad = write(tmp_path, [storage_request("s-1", "a", "dev", "s"), {"request_id": "x"}])
    args = ["send", bad, "--queue-url", queues.main]
    code = await _in_thread(args)
    assert code == 1
    good = write(tmp_path, [storage_request(f"s-{i}", "a", "dev", "s") for i in range(12)])
    assert await _in_thread(["send", good, "--queue-url", queues.main]) == 0
    received = await drain(sqs, queues.main, 12)
    assert sorted(b["request_id"] for b in received) == sorted(f"s-{i}" for i in range(12))


async def _in_thread(args: list[str]) -> int:
    import anyio

    return await anyio.to_thread.run_sync(main, args)


async def test_inspect_and_requests_read_the_ledger(
    tmp_path: Path, sqs: Any, queues: Queues, emulator: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """1. A worker runs one request that succeeds and one the API refuses (unknown app).
    2. `orchestrator inspect` prints each one's steps: job id and status, or the API's error.
    3. `orchestrator requests --status FAILED` lists only the failed one; an unknown id exits 1."""
    ledger = f"sqlite:///{tmp_path / 'ledger.db'}"
    ok, bad = (
        storage_request("ok-1", "app1", "dev", "s1"),
        storage_request("bad-1", "nope", "dev", "s"),
    )
    await send(sqs, queues.main, [ok, bad])
    async with running_worker(queues.settings(ledger=ledger)):
        events = {e["request_id"]: e for e in await drain(sqs, queues.results, 2)}
    capsys.readouterr()
    assert await _in_thread(["inspect", "ok-1", "--ledger", ledger, "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["status"] == "SUCCEEDED"
    assert record["steps"][0]["job_id"] == events["ok-1"]["steps"][0]["job_id"]
    assert await _in_thread(["inspect", "bad-1", "--ledger", ledger]) == 0
    shown = capsys.readouterr().out
    assert "bad-1: FAILED" in shown and "NotFoundException" in shown
    assert await _in_thread(["requests", "--status", "failed", "--ledger", ledger]) == 0
    listed = capsys.readouterr().out
    assert "bad-1" in listed and "ok-1" not in listed
    assert await _in_thread(["inspect", "never-sent", "--ledger", ledger]) == 1


@pytest.mark.parametrize(
    "command", ["run", "send", "validate", "inspect", "requests", "init-ledger", "demo", "emulator"]
)
def test_every_command_has_help(command: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", command, "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0 and "usage:" in result.stdout
