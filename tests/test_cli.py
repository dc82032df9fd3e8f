"""The command line: validate offline, send after validation, --help everywhere."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

import anyio
import pytest

from orchestrator.cli import fatal_error, main
from orchestrator.errors import ConfigurationError, ConnectionFailure
from orchestrator.ledger import LedgerRecord, open_ledger
from orchestrator.settings import Settings
from orchestrator.testing import Queues, drain, running_worker, send, storage_request


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
    "command",
    [
        "run",
        "send",
        "validate",
        "inspect",
        "requests",
        "init-ledger",
        "demo",
        "emulator",
        "dlq",
        "dlq ls",
        "dlq show",
        "dlq redrive",
        "dlq purge",
        "schema",
        "policy",
        "policy check",
    ],
)
def test_every_command_has_help(command: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", *command.split(), "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0 and "usage:" in result.stdout


# --- the edges: one line on stderr, exit 2, never a traceback --------------------------------


def run_cli(args: list[str], **environment: str) -> subprocess.CompletedProcess[str]:
    """``orchestrator ARGS`` as a process, with ``environment`` as its only ORCHESTRATOR_*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRATOR_")}
    env.update(environment)
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=90,
        check=False,
    )


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single line a failed command printed, after checking: exit 2, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("orchestrator: error: "), result.stderr
    return lines[0]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({}, "ORCHESTRATOR_QUEUE_URL (--queue-url) is required"),
        ({"ORCHESTRATOR_CONCURRENCY": "lots"}, "invalid ORCHESTRATOR_CONCURRENCY='lots'"),
        ({"ORCHESTRATOR_LOG_FORMAT": "xml"}, "invalid ORCHESTRATOR_LOG_FORMAT"),
    ],
)
def test_run_with_unusable_settings_exits_2_on_one_line(
    environment: dict[str, str], expected: str
) -> None:
    if environment:
        environment = {"ORCHESTRATOR_QUEUE_URL": "http://127.0.0.1:1/1/q", **environment}
    assert expected in one_error_line(run_cli(["run"], **environment))


async def test_a_configuration_error_inside_the_worker_exits_2_on_one_line(
    tmp_path: Path, queues: Queues
) -> None:
    """Raised inside the worker's task groups (so wrapped in exception groups): a ledger URL
    the worker cannot use, and a queue without a RedrivePolicy and no ORCHESTRATOR_DLQ_URL."""
    common = {"ORCHESTRATOR_METRICS_PORT": "off"}
    bad_ledger = await anyio.to_thread.run_sync(
        lambda: run_cli(
            ["run"],
            ORCHESTRATOR_QUEUE_URL=queues.main,
            ORCHESTRATOR_LEDGER="postgres://x",
            **common,
        )
    )
    assert "unsupported ledger URL 'postgres://x'" in one_error_line(bad_ledger)
    no_dlq = await anyio.to_thread.run_sync(
        lambda: run_cli(
            ["run"],
            ORCHESTRATOR_QUEUE_URL=queues.results,
            ORCHESTRATOR_LEDGER=f"sqlite:///{tmp_path / 'l.db'}",
            **common,
        )
    )
    assert "no dead-letter queue" in one_error_line(no_dlq)


def test_an_unreachable_sqs_at_start_exits_2_naming_sqs(tmp_path: Path) -> None:
    """SQS's endpoint (AWS_ENDPOINT_URL_SQS) is a closed port: one line that names SQS."""
    port = closed_port()
    result = run_cli(
        ["run"],
        AWS_ENDPOINT_URL_SQS=f"http://127.0.0.1:{port}",
        ORCHESTRATOR_QUEUE_URL=f"http://127.0.0.1:{port}/123456789012/changes",
        ORCHESTRATOR_LEDGER=f"sqlite:///{tmp_path / 'ledger.db'}",
        ORCHESTRATOR_METRICS_PORT="off",
    )
    line = one_error_line(result)
    assert "cannot reach SQS" in line and "AmplifyBackend" not in line


def test_configuration_errors_are_found_in_nested_exception_groups() -> None:
    """A ConfigurationError two task groups deep (beside tasks that get cancelled), as
    ``anyio.run`` raises it, is reported on its own line with exit 2; so is an error of the
    orchestrator's tree; a group holding an unexpected error is not hidden (None: traceback)."""

    def nested(error: BaseException) -> BaseException:
        async def worker() -> None:
            async with anyio.create_task_group() as outer:
                outer.start_soon(anyio.sleep_forever)
                async with anyio.create_task_group() as inner:
                    inner.start_soon(anyio.sleep_forever)
                    raise error

        with pytest.raises(BaseExceptionGroup) as raised:
            anyio.run(worker)
        return raised.value

    wrapped = nested(ConfigurationError("no dead-letter queue: set ORCHESTRATOR_DLQ_URL"))
    assert isinstance(wrapped.exceptions[0], BaseExceptionGroup)
    assert fatal_error(wrapped, "run") == ("no dead-letter queue: set ORCHESTRATOR_DLQ_URL", 2)
    assert fatal_error(nested(ConnectionFailure("cannot reach SQS: x")), "run") == (
        "cannot reach SQS: x",
        2,
    )
    assert fatal_error(nested(TypeError("a bug")), "run") is None


@pytest.mark.parametrize("command", [["inspect", "some-request"], ["requests"]])
def test_on_call_commands_refuse_a_missing_sqlite_ledger_and_do_not_create_it(
    tmp_path: Path, command: list[str]
) -> None:
    path = tmp_path / "nowhere" / "ledger.db"
    line = one_error_line(run_cli([*command, "--ledger", f"sqlite:///{path}"]))
    assert f"no ledger at {path}" in line
    assert not path.exists() and not path.parent.exists()


async def test_on_call_commands_refuse_a_missing_dynamodb_table(
    moto_sqs: str, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert await _in_thread(["inspect", "r-1", "--ledger", "dynamodb://no-such-table"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("orchestrator: error: ledger table 'no-such-table'")


async def test_requests_lists_rejected_requests(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`requests --status REJECTED` (any case) lists the REJECTED records only; an unknown
    status is refused by argparse."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    async with open_ledger(url) as ledger:
        await ledger.save(LedgerRecord("message:m-1", status="REJECTED"))
        await ledger.save(LedgerRecord("failed-1", status="FAILED"))
    capsys.readouterr()
    assert await _in_thread(["requests", "--status", "rejected", "--ledger", url, "--json"]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["request_id"], r["status"]) for r in listed] == [("message:m-1", "REJECTED")]
    with pytest.raises(SystemExit) as refused:
        main(["requests", "--status", "LOST", "--ledger", url])
    assert refused.value.code == 2


def test_run_help_states_the_default_and_variable_of_every_setting() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "run", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    text = " ".join(result.stdout.split())
    assert "(default 32) [env ORCHESTRATOR_CONCURRENCY]" in text
    assert "(required) [env ORCHESTRATOR_QUEUE_URL]" in text
    assert "(default true) [env ORCHESTRATOR_APP_FAIRNESS]" in text
    for f in fields(Settings):
        flag = f"--{f.name.replace('_', '-')} {f.name.upper()} "
        described = text.split(flag)[-1].split(f"[env ORCHESTRATOR_{f.name.upper()}]")[0]
        meaning, _, default = described.rpartition(" (")
        assert len(meaning) > len(f.name) and meaning != f.name.replace("_", " "), f.name
        if f.default is MISSING and f.default_factory is MISSING:
            assert default == "required) ", f.name
        elif f.default not in (None, MISSING) and not isinstance(f.default, bool):
            assert default == f"default {f.default}) ", f.name
        else:
            assert default.startswith("default"), f.name
