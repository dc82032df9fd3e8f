"""Exactly once through the worker, against every AmplifyBackend the emulator can play.

Each variant is a listing order × a timestamp format, with finished jobs of the past in every
environment, small pages, new jobs a little late to be listed, and lost answers *after* the
mutation took effect (500s and dropped connections) besides 504s before it. Whatever the
variant: every request SUCCEEDS, every resource is mutated once, no two jobs overlap on an
environment, and every step's job id is the job that step's own call made.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from orchestrator.emulator import EmulatorConfig
from orchestrator.testing import (
    Queues,
    auth_request,
    drain,
    multi_step,
    queue_counts,
    running_worker,
    send,
)
from orchestrator.testing import storage_request as storage

ORDERS = ["newest", "oldest", "unordered"]
FORMATS = ["iso", "iso_offset", "epoch_s", "epoch_ms"]
ENVS = [("app1", "dev"), ("app1", "prod"), ("app2", "dev"), ("app2", "prod")]
pytestmark = pytest.mark.timeout(180)


@pytest.fixture(params=[(o, f) for o in ORDERS for f in FORMATS], ids=lambda p: f"{p[0]}-{p[1]}")
def emulator_config(request: pytest.FixtureRequest) -> EmulatorConfig:
    order, time_format = request.param
    return EmulatorConfig(
        apps={"app1": ["dev", "prod"], "app2": ["dev", "prod"]},
        job_duration=(0.2, 0.6),
        list_order=order,
        timestamp_format=time_format,
        history=30,
        visibility_delay=0.3,
        conflict_mode="accept",  # a second job on a busy environment is counted, not refused
        fault_500_ratio=0.25,
        fault_reset_after_ratio=0.15,
        fault_504_ratio=0.05,
        fault_operations=frozenset({"CreateBackendStorage", "CreateBackendAuth"}),
        seed=17,
    )


def requests(count: int) -> list[dict[str, Any]]:
    """Storage requests; every third one a two-step auth-then-storage request."""
    bodies = []
    for i in range(count):
        app, env = ENVS[i % len(ENVS)]
        body = storage(f"r{i}", app, env, f"s{i}")
        if i % 3 == 2:
            body = multi_step(f"r{i}", auth_request(f"r{i}", app, env, f"a{i}"), body)
        bodies.append(body)
    return bodies


def resource_of(job: dict[str, Any]) -> str:
    return str(job.get("resourceName"))


async def test_lost_answers_never_duplicate_a_mutation(
    sqs: Any, queues: Queues, emulator: Any
) -> None:
    """1. 12 requests (4 of them two-step) on 4 environments, each holding 30 past jobs,
       listed in pages of 5, the answer of ~40% of the mutations lost after the effect.
    2. All SUCCEED; one job per resource; no overlap; each step carries its own job."""
    await send(sqs, queues.main, requests(12))
    settings = queues.settings(list_page_size=5, concurrency=8, clock_skew=0.5)
    async with running_worker(settings):
        events = await drain(sqs, queues.results, 12, deadline=150)
    jobs = [job for job in emulator.jobs() if not job.get("history")]
    stats = emulator.stats()
    assert stats["faults"]["500"] + stats["faults"].get("reset_after", 0) > 0
    made = Counter(resource_of(job) for job in jobs)
    assert max(made.values()) == 1, made
    assert stats["conflicts"] == 0
    resources = {job["jobId"]: resource_of(job) for job in jobs}
    for event in events:
        assert event["outcome"] == "SUCCEEDED", event
        index = event["request_id"][1:]
        names = [f"a{index}", f"s{index}"] if len(event["steps"]) == 2 else [f"s{index}"]
        assert [resources.get(step["job_id"]) for step in event["steps"]] == names, event
    assert await queue_counts(sqs, queues.main) == (0, 0)
