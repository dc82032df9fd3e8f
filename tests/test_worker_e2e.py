"""End to end: moto's SQS server → worker → AmplifyBackend emulator, all over loopback HTTP."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from typing import Any

import pytest

from orchestrator.emulator import EmulatorConfig
from orchestrator.testing import (
    Queues,
    amplify_client,
    auth_request,
    drain,
    multi_step,
    queue_counts,
    running_worker,
    send,
    storage_request,
    wait_until,
)


def by_id(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {event["request_id"]: event for event in events}


def stamp(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def mutation_keys(jobs: list[dict[str, Any]]) -> Counter[tuple[str, ...]]:
    return Counter(
        (j["operation"], j["appId"], j["backendEnvironmentName"], str(j.get("resourceName")))
        for j in jobs
    )


async def test_single_step_request_succeeds_and_takes_effect(
    sqs: Any, queues: Queues, emulator: Any
) -> None:
    """1. Send one CreateBackendAuth request.
    2. Expect a SUCCEEDED outcome whose step has the emulator's job id and COMPLETED.
    3. The auth resource is readable through GetBackendAuth; the queue is empty; no DLQ move."""
    await send(sqs, queues.main, [auth_request("r-1", "app1", "dev", "auth1")])
    async with running_worker(queues.settings()):
        [event] = await drain(sqs, queues.results, 1)
    assert event["outcome"] == "SUCCEEDED" and event["request_id"] == "r-1"
    [step] = event["steps"]
    assert step["operation"] == "CreateBackendAuth" and step["status"] == "COMPLETED"
    assert step["job_id"] in {job["jobId"] for job in emulator.jobs()}
    assert "s3cr3t-google" not in json.dumps(event)
    async with amplify_client() as amplify:
        auth = await amplify.get_backend_auth(
            AppId="app1", BackendEnvironmentName="dev", ResourceName="auth1"
        )
    assert auth["ResourceConfig"]["UserPoolConfigs"]["UserPoolName"] == "auth1-pool"
    assert await queue_counts(sqs, queues.main) == (0, 0)
    assert await queue_counts(sqs, queues.dlq) == (0, 0)


async def test_steps_run_in_order_and_a_failed_step_ends_the_request(
    sqs: Any, queues: Queues, emulator: Any
) -> None:
    """1. A 3-step request (new backend env, auth, storage) and a 3-step request whose second
       step's job FAILS (fail_pattern matches its resource name).
    2. The first SUCCEEDS, each step starting after the previous one finished.
    3. The second is FAILED with reason job_failed; its third step never ran."""
    emulator.configure(fail_pattern="doomed")
    new_env = {
        "operation": "CreateBackend",
        "params": {"AppId": "app1", "AppName": "app1", "BackendEnvironmentName": "staging"},
    }
    good = multi_step(
        "multi-ok",
        new_env,
        auth_request("x", "app1", "staging", "auth-s"),
        storage_request("x", "app1", "staging", "files"),
    )
    bad = multi_step(
        "multi-bad",
        *(
            storage_request("x", "app2", "dev", name)
            for name in ("ok-store", "doomed-store", "never")
        ),
    )
    await send(sqs, queues.main, [good, bad])
    async with running_worker(queues.settings()):
        events = by_id(await drain(sqs, queues.results, 2))
    ok = events["multi-ok"]
    assert ok["outcome"] == "SUCCEEDED"
    assert [s["status"] for s in ok["steps"]] == ["COMPLETED"] * 3
    for before, after in zip(ok["steps"], ok["steps"][1:], strict=False):
        assert stamp(after["started_at"]) >= stamp(before["finished_at"])
    failed = events["multi-bad"]
    assert failed["outcome"] == "FAILED" and failed["reason"] == "job_failed"
    assert [s["status"] for s in failed["steps"]] == ["COMPLETED", "FAILED", "PENDING"]
    assert failed["steps"][2]["job_id"] is None
    assert "never" not in {str(j.get("resourceName")) for j in emulator.jobs()}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("this is not json", "invalid_json"),
        ('{"operation": "CreateBackendAuth", "params": {}}', "invalid_request_id"),
        (
            '{"request_id": "bad-op", "operation": "LaunchRocket", "params": {}}',
            "unknown_operation",
        ),
        (
            '{"request_id": "read-op", "operation": "GetBackendAuth", "params": '
            '{"AppId": "a", "BackendEnvironmentName": "d", "ResourceName": "r"}}',
            "not_a_mutation",
        ),
        (
            '{"request_id": "bad-params", "operation": "create_backend_auth", "params": '
            '{"AppId": "app1"}}',
            "invalid_params",
        ),
        (
            '{"request_id": "destroy", "operation": "DeleteBackend", "params": '
            '{"AppId": "app1", "BackendEnvironmentName": "dev"}}',
            "destructive_not_allowed",
        ),
    ],
)
async def test_invalid_requests_go_to_the_dlq_with_their_reason(
    sqs: Any, queues: Queues, emulator: Any, body: str, reason: str
) -> None:
    """1. Send one invalid body next to one valid request.
    2. The invalid one lands on the DLQ, body unchanged, with a `reason` attribute; a REJECTED
       outcome is published; the valid one still SUCCEEDS; the main queue ends empty.
    3. The emulator never saw a call for the invalid one."""
    await send(sqs, queues.main, [body, auth_request("fine", "app1", "dev", "auth-ok")])
    async with running_worker(queues.settings()):
        events = await drain(sqs, queues.results, 2)
        [dead] = await drain(sqs, queues.dlq, 1, attributes=True)
    assert dead["Body"] == body
    assert dead["MessageAttributes"]["reason"]["StringValue"] == reason
    outcomes = sorted(e["outcome"] for e in events)
    assert outcomes == ["REJECTED", "SUCCEEDED"]
    rejected = next(e for e in events if e["outcome"] == "REJECTED")
    assert rejected["reason"] == reason and rejected["error"]
    assert sum(emulator.stats()["mutations"].values()) == 1
    assert await queue_counts(sqs, queues.main) == (0, 0)


async def test_rejection_reasons_never_carry_secrets(
    sqs: Any, queues: Queues, emulator: Any
) -> None:
    """A request that fails validation with a secret in ClientSecret: neither the DLQ
    attributes nor the outcome event contain the secret."""
    body = auth_request("leaky", "app1", "dev", "auth-x")
    google = body["params"]["ResourceConfig"]["UserPoolConfigs"]["OAuth"]
    google["SocialProviderSettings"]["Google"]["ClientSecret"] = 12345678  # wrong type
    google["SocialProviderSettings"]["Google"]["ClientId"] = "visible-client-id-but-sensitive"
    await send(sqs, queues.main, [body])
    async with running_worker(queues.settings()):
        [event] = await drain(sqs, queues.results, 1)
        [dead] = await drain(sqs, queues.dlq, 1, attributes=True)
    assert event["outcome"] == "REJECTED" and event["reason"] == "invalid_params"
    exported = json.dumps(event) + json.dumps(dead["MessageAttributes"])
    assert "12345678" not in exported
    assert "visible-client-id-but-sensitive" not in exported


@pytest.fixture
def emulator_config() -> EmulatorConfig:
    return EmulatorConfig(
        apps={
            "app1": ["dev", "prod"],
            "app2": ["dev"],
            **{f"env-app{i}": ["dev"] for i in range(8)},
        },
        job_duration=(0.05, 0.15),
        seed=11,
    )


async def test_low_rate_limit_still_completes_everything_without_duplicates(
    sqs: Any, queues: Queues, emulator: Any
) -> None:
    """1. Emulator limited to 8 calls/s (burst 2); 40 requests over 8 environments.
    2. Every request SUCCEEDS although the emulator throttled calls.
    3. Exactly one mutation per request (no duplicate), no conflict."""
    emulator.configure(rate=8.0, burst=2)
    bodies = [storage_request(f"low-{i}", f"env-app{i % 8}", "dev", f"s{i}") for i in range(40)]
    await send(sqs, queues.main, bodies)
    async with running_worker(queues.settings(concurrency=16, initial_rate=40.0)):
        events = await drain(sqs, queues.results, 40, deadline=90)
    assert {e["outcome"] for e in events} == {"SUCCEEDED"}
    stats = emulator.stats()
    assert sum(stats["throttled"].values()) > 0
    assert stats["conflicts"] == 0
    counts = mutation_keys(emulator.jobs())
    assert len(counts) == 40 and max(counts.values()) == 1


async def test_one_environment_never_has_two_jobs_in_flight(
    sqs: Any, queues: Queues, emulator: Any
) -> None:
    """1. 24 requests on 2 environments with concurrency 12, conflict rule = accept-and-count.
    2. The emulator counts no conflict, and per environment the jobs' [create, update]
       intervals do not overlap."""
    emulator.configure(conflict_mode="accept", job_duration=(0.05, 0.1))
    bodies = [
        storage_request(f"ser-{i}", "app1", ("dev", "prod")[i % 2], f"s{i}") for i in range(24)
    ]
    await send(sqs, queues.main, bodies)
    async with running_worker(queues.settings(concurrency=12)):
        events = await drain(sqs, queues.results, 24)
    assert {e["outcome"] for e in events} == {"SUCCEEDED"}
    assert emulator.stats()["conflicts"] == 0
    for env in ("dev", "prod"):
        jobs = sorted(
            (stamp(j["createTime"]), stamp(j["updateTime"]))
            for j in emulator.jobs()
            if j["backendEnvironmentName"] == env
        )
        assert len(jobs) == 12
        for (_, end), (start, _) in zip(jobs, jobs[1:], strict=False):
            assert start >= end


async def test_job_longer_than_visibility_timeout_is_not_redelivered(
    sqs: Any, queues: Queues, emulator: Any
) -> None:
    """1. Visibility timeout 2 s, a job lasting 5 s.
    2. The heartbeat keeps the message hidden: one receive, one mutation, SUCCEEDED."""
    emulator.configure(job_duration=(5.0, 5.0), job_duration_dist="fixed")
    await send(sqs, queues.main, [storage_request("long-1", "app1", "dev", "slow")])
    settings = queues.settings(visibility_timeout=2, sweep_max=0.3)
    async with running_worker(settings) as (worker, _):
        [event] = await drain(sqs, queues.results, 1, deadline=30)
        assert worker.metrics.messages_received._value.get() == 1
    assert event["outcome"] == "SUCCEEDED"
    assert len(emulator.jobs()) == 1
    assert emulator.stats()["calls"].get("CreateBackendStorage") == 1


async def test_tracking_a_job_costs_one_page_per_check_whatever_the_environment_holds(
    sqs: Any, queues: Queues, emulator: Any
) -> None:
    """1. Page size 1 and, while our job runs, 5 newer jobs on the same environment created by
       somebody else (conflict rule accept): a walk of the listing would need 6 pages.
    2. The worker still sees it COMPLETE, and every check read exactly one page: it asks for
       its job by JobId instead of walking the environment's history."""
    emulator.configure(
        list_page_size=1, conflict_mode="accept", job_duration=(1.0, 1.0), job_duration_dist="fixed"
    )
    await send(sqs, queues.main, [storage_request("paged", "app1", "dev", "ours")])
    async with running_worker(queues.settings(sweep_min=0.2, list_page_size=1)) as (worker, _):
        async with amplify_client() as amplify:
            await wait_until(emulator.jobs)
            for i in range(5):
                await amplify.create_backend_storage(
                    **storage_request("x", "app1", "dev", f"other{i}")["params"]
                )
        [event] = await drain(sqs, queues.results, 1)
        sample = worker.metrics.registry.get_sample_value
        pages = sample("orchestrator_tracker_sweep_pages_sum")
        walks = sample("orchestrator_tracker_sweeps_total")
    assert event["outcome"] == "SUCCEEDED"
    assert walks is not None and walks >= 1 and pages == walks


async def test_http_endpoints_and_documented_metrics(
    sqs: Any, queues: Queues, emulator: Any
) -> None:
    """1. Run one request with the metrics port on a free port.
    2. /healthz and /readyz answer 200; /metrics exposes the issue's core metrics with data.
    3. Every metric the worker registers is documented in docs/metrics.md."""
    import pathlib

    import aiohttp
    from prometheus_client.parser import text_string_to_metric_families

    await send(sqs, queues.main, [storage_request("m-1", "app1", "dev", "metrics")])
    async with running_worker(queues.settings()) as (_, started):
        await drain(sqs, queues.results, 1)
        base = f"http://127.0.0.1:{started.metrics_port}"
        async with aiohttp.ClientSession() as http:
            for path in ("/healthz", "/readyz"):
                async with http.get(base + path) as response:
                    assert response.status == 200, path
            async with http.get(base + "/metrics") as response:
                text = await response.text()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name in (
        "orchestrator_messages_received",
        "orchestrator_requests",
        "orchestrator_api_calls",
        "orchestrator_api_call_duration_seconds",
        "orchestrator_jobs_in_flight",
        "orchestrator_job_duration_seconds",
    ):
        assert name in families, name
    requests = [s for s in families["orchestrator_requests"].samples if s.name.endswith("_total")]
    counted = [(s.labels["outcome"], s.labels["reason"], s.value) for s in requests if s.value]
    assert counted == [("SUCCEEDED", "ok", 1.0)]
    # Series that alerts read exist from the start, at 0: a first failure is an increase.
    assert ("FAILED", "client_error", 0.0) in [
        (s.labels["outcome"], s.labels["reason"], s.value) for s in requests
    ]
    sqs_calls = {  # SQS calls by their API name: the outcome event's SendMessage among them
        (s.labels["operation"], s.labels["result"]): s.value
        for s in families["orchestrator_sqs_calls"].samples
        if s.name.endswith("_total")
    }
    assert sqs_calls[("SendMessage", "ok")] == 1 and sqs_calls[("ReceiveMessage", "ok")] >= 1
    documented = pathlib.Path(__file__).parents[1].joinpath("docs/metrics.md").read_text()
    for name in families:
        if name.startswith("orchestrator_"):
            assert f"`{name}" in documented, name
