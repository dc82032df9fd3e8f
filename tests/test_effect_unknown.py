"""At most once when in doubt: a lost answer whose effect cannot be established is not sent
again; the request ends FAILED ``effect_unknown``, naming the candidate jobs."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.testing import Queues, drain, running_worker, send
from orchestrator.testing import storage_request as storage


@pytest.mark.parametrize(
    "knobs",
    [
        {"timestamp_format": "opaque"},
        {"fault_504_ratio": 1.0, "fault_operations": frozenset({"ListBackendJobs"})},
    ],
    ids=["unreadable-timestamps", "listing-always-fails"],
)
async def test_an_effect_that_cannot_be_established_is_never_sent_twice(
    sqs: Any, queues: Queues, emulator: Any, knobs: dict[str, Any]
) -> None:
    """1. Every CreateBackendStorage answer is lost (after the effect: 500; or, where the fault
       hits ListBackendJobs too, a 504 that the worker cannot tell from one after the effect),
       and the service either writes CreateTime in a format nobody can read or fails every
       ListBackendJobs.
    2. The request ends FAILED `effect_unknown`, its error naming the job that was made when it
       could be listed; the mutation was sent once; the metric counts it."""
    operations = knobs.get("fault_operations", frozenset()) | {"CreateBackendStorage"}
    emulator.configure(
        **{**_FAULT_FREE, "fault_500_ratio": 1.0, **knobs, "fault_operations": operations}
    )
    await send(sqs, queues.main, [storage("doubt", "app1", "dev", "doubtful")])
    settings = queues.settings(clock_skew=0.5, max_attempts=2)
    async with running_worker(settings) as (worker, _):
        (event,) = await drain(sqs, queues.results, 1, deadline=60)
        unknown = worker.metrics.registry.get_sample_value(
            "orchestrator_effect_unknown_total", {"operation": "CreateBackendStorage"}
        )
    assert event["outcome"] == "FAILED" and event["reason"] == "effect_unknown", event
    jobs = [job for job in emulator.jobs() if not job.get("history")]
    assert emulator.stats()["calls"]["CreateBackendStorage"] == 1
    if "timestamp_format" in knobs:
        assert len(jobs) == 1 and jobs[0]["jobId"] in event["error"]
    assert unknown == 1


_FAULT_FREE: dict[str, Any] = {
    "fault_500_ratio": 0.0,
    "fault_reset_after_ratio": 0.0,
    "fault_504_ratio": 0.0,
    "history": 0,
}
