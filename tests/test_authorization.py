"""Sender authorization: the policy file, the glob matching, the decision per request."""

from __future__ import annotations

import fnmatch
import glob
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.authorization import SenderPolicy, load_policy, parse_policy
from orchestrator.errors import ConfigurationError
from orchestrator.messages import ChangeRequest, Step
from orchestrator.testing import Queues, auth_request, drain, running_worker, send, storage_request

SENDER = "AROAEXAMPLEID:deploy-42"


def rule(**overrides: Any) -> dict[str, Any]:
    base = {
        "name": "deploy-bot",
        "senders": ["AROAEXAMPLEID:deploy-*"],
        "apps": ["d1a2b3", "web-*"],
        "environments": ["*"],
        "operations": ["Create*", "Update*", "CloneBackend"],
    }
    return {**base, **overrides}


def policy(*rules: dict[str, Any]) -> SenderPolicy:
    return parse_policy({"rules": list(rules)})


def request(*steps: tuple[str, str, str]) -> ChangeRequest:
    return ChangeRequest(
        "r1",
        tuple(Step(op, {"AppId": app, "BackendEnvironmentName": env}) for op, app, env in steps),
    )


def test_a_rule_must_match_the_sender_and_every_step() -> None:
    p = policy(rule())
    allowed = p.decide(SENDER, request(("CreateBackendAuth", "web-shop", "dev")))
    assert (allowed.allowed, allowed.rule) == (True, "deploy-bot")
    other_sender = p.decide("AIDAOTHER", request(("CreateBackendAuth", "web-shop", "dev")))
    assert not other_sender.allowed and "no rule names sender AIDAOTHER" in other_sender.why
    mixed = p.decide(
        SENDER,
        request(("CreateBackendAuth", "web-shop", "dev"), ("CreateBackendAuth", "ops-app", "dev")),
    )
    assert not mixed.allowed and "step 1 (CreateBackendAuth on ops-app/dev)" in mixed.why
    assert not p.decide(SENDER, request(("ImportBackendAuth", "web-shop", "dev"))).allowed
    assert not p.decide(None, request(("CreateBackendAuth", "web-shop", "dev"))).allowed


def test_one_rule_must_allow_all_steps_not_two_rules_together() -> None:
    p = policy(
        rule(name="auth", operations=["CreateBackendAuth"]),
        rule(name="storage", operations=["CreateBackendStorage"]),
    )
    both = request(("CreateBackendAuth", "web-a", "dev"), ("CreateBackendStorage", "web-a", "dev"))
    decision = p.decide(SENDER, both)
    assert not decision.allowed and "no single rule of auth, storage" in decision.why
    assert p.decide(SENDER, request(("CreateBackendStorage", "web-a", "dev"))).rule == "storage"


def test_environments_restrict_and_app_wide_calls_match_star_only() -> None:
    p = policy(rule(environments=["dev", "staging-*"]))
    assert p.decide(SENDER, request(("UpdateBackendAuth", "web-a", "staging-2"))).allowed
    assert not p.decide(SENDER, request(("UpdateBackendAuth", "web-a", "prod"))).allowed
    assert not p.decide(SENDER, request(("CreateBackendConfig", "web-a", ""))).allowed
    assert policy(rule()).decide(SENDER, request(("CreateBackendConfig", "web-a", ""))).allowed


def test_destructive_operations_need_a_rule_that_names_them_exactly() -> None:
    wide = policy(rule(operations=["*"]))
    assert not wide.decide(SENDER, request(("DeleteBackend", "web-a", "dev"))).allowed
    assert (
        not policy(rule(operations=["Delete*"]))
        .decide(SENDER, request(("DeleteBackend", "web-a", "dev")))
        .allowed
    )
    named = policy(rule(operations=["Create*", "DeleteBackend"]))
    assert named.decide(SENDER, request(("DeleteBackend", "web-a", "dev"))).allowed
    assert wide.decide(SENDER, request(("CreateBackendAuth", "web-a", "dev"))).allowed


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({}, "expected one key, `rules`"),
        ({"rules": []}, "non-empty list"),
        ({"rules": [rule()], "extra": 1}, "expected one key"),
        ({"rules": ["x"]}, "must be a mapping"),
        ({"rules": [rule(apps=[])]}, "apps must be a non-empty list"),
        ({"rules": [rule(senders="AIDA*")]}, "senders must be a non-empty list"),
        ({"rules": [rule(name="has space")]}, "name must be"),
        ({"rules": [rule(operations=["CreateBakend*"])]}, "matches no AmplifyBackend mutation"),
        ({"rules": [rule(operations=["create_backend_auth"])]}, "matches no AmplifyBackend"),
        ({"rules": [rule(), rule()]}, "duplicate rule names"),
        ({"rules": [{**rule(), "apps_": ["x"]}]}, "unknown keys ['apps_']"),
        ({"rules": [{k: v for k, v in rule().items() if k != "senders"}]}, "missing keys"),
    ],
)
def test_a_broken_policy_is_a_configuration_error(document: Any, message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_policy(document, "p.yaml")
    assert message in str(caught.value) and "p.yaml" in str(caught.value)


def test_policy_files_in_yaml_and_json(tmp_path: Path) -> None:
    yaml_file = tmp_path / "policy.yaml"
    yaml_file.write_text(
        "rules:\n  - name: ci\n    senders: ['AIDA*']\n    apps: ['*']\n"
        "    environments: ['*']\n    operations: ['Update*']\n"
    )
    json_file = tmp_path / "policy.json"
    json_file.write_text(json.dumps({"rules": [rule()]}))
    assert [r.name for r in load_policy(str(yaml_file)).rules] == ["ci"]
    assert [r.name for r in load_policy(str(json_file)).rules] == ["deploy-bot"]
    (tmp_path / "bad.yaml").write_text("rules: [unclosed")
    for broken, message in [("bad.yaml", "not valid YAML"), ("missing.yaml", "No such file")]:
        with pytest.raises(ConfigurationError, match=message):
            load_policy(str(tmp_path / broken))


identifiers = st.text(st.characters(codec="ascii", exclude_categories=["Cc"]), max_size=40)


@given(identifiers)
def test_an_escaped_value_matches_itself_and_star_matches_everything(value: str) -> None:
    p = policy(rule(senders=[glob.escape(value) or "?*"], apps=["*"]))
    step = ("CreateBackendAuth", "app", "dev")
    if value:
        assert p.decide(value, request(step)).allowed
    assert policy(rule(senders=["*"], apps=["*"])).decide(value or "x", request(step)).allowed


@given(identifiers, identifiers)
def test_a_prefix_glob_matches_exactly_the_values_with_that_prefix(prefix: str, value: str) -> None:
    pattern = glob.escape(prefix) + "*"
    p = policy(rule(senders=["*"], apps=[pattern]))
    decided = p.decide(SENDER, request(("CreateBackendAuth", value, "dev"))).allowed
    assert decided == value.startswith(prefix)
    assert decided == fnmatch.fnmatchcase(value, pattern)


MOTO_SENDER = "AIDAIT2UOQQY3AUEKVGXU"  # the one SenderId moto's SQS records


def policy_file(tmp_path: Path, **overrides: Any) -> str:
    path = tmp_path / "senders.yaml"
    base = rule(senders=[MOTO_SENDER], apps=["app1"], environments=["dev"])
    path.write_text(json.dumps({"rules": [{**base, **overrides}]}))  # JSON is YAML too
    return str(path)


async def test_with_a_policy_allowed_requests_run_and_the_rest_are_rejected_unsent(
    sqs: Any, queues: Queues, emulator: Any, tmp_path: Path
) -> None:
    """moto's sender may CreateBackendAuth on app1/dev: that request runs; app2, prod and a
    CreateBackendStorage are REJECTED sender_not_allowed, dead-lettered with that reason, and
    never reach AmplifyBackend; decisions are counted by rule name."""
    bodies = [
        auth_request("ok", "app1", "dev", "auth-ok"),
        auth_request("other-app", "app2", "dev", "auth-2"),
        auth_request("other-env", "app1", "prod", "auth-p"),
        storage_request("other-op", "app1", "dev", "files"),
    ]
    settings = queues.settings(
        sender_policy=policy_file(tmp_path, operations=["CreateBackendAuth", "Update*"])
    )
    await send(sqs, queues.main, bodies)
    async with running_worker(settings) as (worker, _):
        events = {e["request_id"]: e for e in await drain(sqs, queues.results, 4)}
        dead = await drain(sqs, queues.dlq, 3, attributes=True)
        value = worker.metrics.registry.get_sample_value
        allowed = value(
            "orchestrator_sender_decisions_total", {"rule": "deploy-bot", "decision": "allowed"}
        )
        denied = value(
            "orchestrator_sender_decisions_total", {"rule": "none", "decision": "denied"}
        )
    assert events["ok"]["outcome"] == "SUCCEEDED"
    for request_id in ("other-app", "other-env", "other-op"):
        assert (events[request_id]["outcome"], events[request_id]["reason"]) == (
            "REJECTED",
            "sender_not_allowed",
        )
    assert {d["MessageAttributes"]["reason"]["StringValue"] for d in dead} == {"sender_not_allowed"}
    assert sum(emulator.stats()["mutations"].values()) == 1
    assert (allowed, denied) == (1, 3)


async def test_a_policy_that_names_another_sender_rejects_everything(
    sqs: Any, queues: Queues, emulator: Any, tmp_path: Path
) -> None:
    settings = queues.settings(sender_policy=policy_file(tmp_path, senders=["AROAOTHER:*"]))
    await send(sqs, queues.main, [auth_request("nope", "app1", "dev", "auth-n")])
    async with running_worker(settings):
        [event] = await drain(sqs, queues.results, 1)
        await drain(sqs, queues.dlq, 1)
    assert event["reason"] == "sender_not_allowed"
    assert MOTO_SENDER in event["error"]
    assert sum(emulator.stats()["mutations"].values()) == 0


def test_a_broken_policy_stops_the_worker_with_one_line(tmp_path: Path) -> None:
    """`orchestrator run` with a policy naming an unknown operation: exit 2, one line on
    stderr naming the file and the problem, no traceback, before touching SQS."""
    import subprocess
    import sys

    broken = policy_file(tmp_path, operations=["CreateBakendAuth"])
    env = {
        "PATH": "/usr/bin:/bin",
        "ORCHESTRATOR_QUEUE_URL": "http://127.0.0.1:9/q",
        "ORCHESTRATOR_SENDER_POLICY": broken,
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    done = subprocess.run(
        [str(Path(sys.executable).parent / "orchestrator"), "run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert broken in lines[0] and "matches no AmplifyBackend mutation" in lines[0]
