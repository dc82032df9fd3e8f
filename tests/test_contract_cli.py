"""The producer's commands: validate (text and --json, deprecations, the sender policy),
send (--dry-run, MessageIds), schema (--check), policy check."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest

from orchestrator.cli import main
from orchestrator.testing import Queues, auth_request, drain, queue_counts, storage_request
from tests.test_deprecations import request as auth_with

OLD = "ResourceConfig.UserPoolConfigs.ForgotPassword"


def write(tmp_path: Path, documents: list[Any]) -> str:
    path = tmp_path / "requests.json"
    path.write_text(json.dumps(documents))
    return str(path)


def test_validate_json_prints_one_result_per_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    camel = storage_request("camel", "a", "dev", "s")
    camel["params"]["resourceName"] = camel["params"].pop("ResourceName")
    path = write(tmp_path, [auth_with("old", "ForgotPassword"), camel])
    assert main(["validate", "--json", path]) == 1
    results = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["request_id"], r["ok"], r["reason"]) for r in results] == [
        ("old", True, None),
        ("camel", False, "invalid_params"),
    ]
    [warning] = results[0]["warnings"]
    assert warning["member"] == OLD and warning["replacement"].endswith("VerificationMessage")
    assert "resourceName: did you mean ResourceName?" in results[1]["error"]


def test_validate_warns_naming_the_replacement_and_reject_mode_rejects(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, [auth_with("old", "ForgotPassword")])
    assert main(["validate", path]) == 0
    err = capsys.readouterr().err
    assert f"warning: CreateBackendAuth: {OLD} is deprecated; use" in err
    assert "VerificationMessage" in err
    monkeypatch.setenv("ORCHESTRATOR_DEPRECATED", "reject")
    assert main(["validate", path]) == 1
    assert "rejected (deprecated_member)" in capsys.readouterr().err
    assert main(["validate", "--deprecated", "warn", path]) == 0  # the flag wins


def test_validate_checks_a_sender_against_the_policy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "p.json"
    rule = {
        "name": "ci",
        "senders": ["AROACI:*"],
        "apps": ["app1"],
        "environments": ["*"],
        "operations": ["Create*"],
    }
    policy.write_text(json.dumps({"rules": [rule]}))
    path = write(
        tmp_path,
        [auth_request("mine", "app1", "dev", "a"), auth_request("theirs", "app2", "dev", "a")],
    )
    args = ["validate", "--json", "--sender-policy", str(policy), path]
    assert main([*args, "--sender", "AROACI:build-7"]) == 1
    results = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["ok"], r["reason"]) for r in results] == [
        (True, None),
        (False, "sender_not_allowed"),
    ]
    assert main([*args, "--sender", "AIDAOTHER"]) == 1
    results = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {r["reason"] for r in results} == {"sender_not_allowed"}


def test_policy_check_accepts_a_good_file_and_refuses_a_broken_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(
        "rules:\n  - {name: ci, senders: ['*'], apps: ['*'], environments: ['*'],"
        " operations: ['Update*']}\n"
    )
    assert main(["policy", "check", str(good)]) == 0
    assert "ok (1 rule(s))" in capsys.readouterr().out
    broken = tmp_path / "broken.yaml"
    broken.write_text("rules:\n  - {name: ci}\n")
    assert main(["policy", "check", str(broken)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing keys" in err[0] and "broken.yaml" in err[0]


def test_schema_writes_the_files_and_check_finds_a_stale_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "schema"
    assert main(["schema", "--out", str(out)]) == 0
    assert main(["schema", "--out", str(out), "--check"]) == 0
    checked_in = Path(__file__).parents[1] / "schema"
    assert main(["schema", "--out", str(checked_in), "--check"]) == 0
    stale = out / "outcome-event.schema.json"
    stale.write_text(stale.read_text().replace("sender_not_allowed", "x"))
    capsys.readouterr()
    assert main(["schema", "--out", str(out), "--check"]) == 1
    assert "outcome-event.schema.json differs" in capsys.readouterr().err


async def test_send_dry_run_sends_nothing_and_send_prints_message_ids(
    tmp_path: Path, sqs: Any, queues: Queues, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, [storage_request(f"s-{i}", "app1", "dev", "s") for i in range(3)])
    dry = ["send", path, "--queue-url", queues.main, "--dry-run"]
    assert await anyio.to_thread.run_sync(main, dry) == 0
    out = capsys.readouterr().out
    assert out.count("would send s-") == 3 and "MessageGroupId=app1" in out
    assert await queue_counts(sqs, queues.main) == (0, 0)
    assert await anyio.to_thread.run_sync(main, ["send", path, "--queue-url", queues.main]) == 0
    printed = dict(
        line.split(": MessageId ")
        for line in capsys.readouterr().out.splitlines()
        if ": MessageId " in line
    )
    received = await drain(sqs, queues.main, 3, attributes=True)
    assert {m["MessageId"]: json.loads(m["Body"])["request_id"] for m in received} == {
        message_id: request_id for request_id, message_id in printed.items()
    }
