"""What every chaos run checks, and how it collects what it checks.

:class:`Outcomes` drains the results queue in the background. :func:`check` fills a
:class:`Report` with the invariants:

* every request has an outcome event, and all of a request's events are identical (lost,
  inconsistent);
* no change was made twice: each request's resource was mutated once (duplicates);
* no two jobs overlapped on one environment (the emulator counts conflicts);
* every SUCCEEDED step carries the job its own call made (wrong_job: the job of that id is not
  the step's resource);
* nothing is left on the change queue.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

from orchestrator.testing import queue_counts


@dataclass
class Stack:
    """What a scenario runs against: an SQS client, the emulator and a scratch directory."""

    sqs: Any
    sqs_endpoint: str
    emulator: Any
    workdir: Path


@dataclass
class Report:
    scenario: str
    requests: int
    injected: str
    outcomes: dict[str, int] = field(default_factory=dict)
    lost: int = 0
    inconsistent: int = 0
    duplicates: int = 0
    overlaps: int = 0
    wrong_job: int = 0
    left_on_queue: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        bad = self.lost + self.inconsistent + self.duplicates + self.overlaps + self.wrong_job
        bad += self.left_on_queue
        return bad == 0 and not [n for n in self.notes if n.startswith("FAIL")]


class Outcomes:
    """Drains the results queue in the background; every event a request got, in order."""

    def __init__(self, sqs: Any, queue_url: str) -> None:
        self._sqs = sqs
        self._url = queue_url
        self.events: dict[str, list[dict[str, Any]]] = {}
        self._changed = anyio.Event()

    async def run(self) -> None:
        while True:
            response = await self._sqs.receive_message(
                QueueUrl=self._url, MaxNumberOfMessages=10, WaitTimeSeconds=1
            )
            messages = response.get("Messages", [])
            for message in messages:
                event = json.loads(message["Body"])
                self.events.setdefault(event["request_id"], []).append(event)
            if messages:
                await self._sqs.delete_message_batch(
                    QueueUrl=self._url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                        for i, m in enumerate(messages)
                    ],
                )
                self._changed.set()
                self._changed = anyio.Event()

    @property
    def finished(self) -> int:
        return len(self.events)

    async def wait_for(self, count: int, deadline: float) -> None:
        with anyio.fail_after(deadline):
            while self.finished < count:
                await self._changed.wait()


@contextlib.asynccontextmanager
async def collecting(sqs: Any, queue_url: str) -> AsyncIterator[Outcomes]:
    outcomes = Outcomes(sqs, queue_url)
    async with anyio.create_task_group() as group:
        group.start_soon(outcomes.run)
        yield outcomes
        group.cancel_scope.cancel()


async def finish(stack: Stack, queues: Any, outcomes: Outcomes, requests: int) -> None:
    """Wait (workers still running) for every outcome, then for redeliveries to be worked off.
    A request still missing at the deadline is reported as lost by :func:`check`."""
    with contextlib.suppress(TimeoutError):
        await outcomes.wait_for(requests, deadline=120 + 2 * requests)
    await settle(stack.sqs, queues.main, deadline=30)


async def check(
    report: Report, stack: Stack, queues: Any, outcomes: Outcomes, bodies: Iterable[dict[str, Any]]
) -> Report:
    """Fill in the invariants: lost, inconsistent, duplicates, overlaps, wrong job ids, left on
    the queue."""
    resources = {body["request_id"]: step_resources(body) for body in bodies}
    report.lost = len(set(resources) - set(outcomes.events))
    report.inconsistent = sum(
        1 for events in outcomes.events.values() if len(_versions(events)) > 1
    )
    report.outcomes = dict(Counter(e[0]["outcome"] for e in outcomes.events.values()))
    jobs = [job for job in stack.emulator.jobs() if not job.get("history")]
    mutations = Counter((job.get("operation"), job.get("resourceName")) for job in jobs)
    report.duplicates = sum(count - 1 for count in mutations.values() if count > 1)
    report.wrong_job = wrong_jobs(outcomes, resources, jobs)
    report.overlaps = int(stack.emulator.stats()["conflicts"])
    visible, in_flight = await settle(stack.sqs, queues.main)
    report.left_on_queue = visible + in_flight
    return report


def step_resources(body: dict[str, Any]) -> list[str]:
    """The resource each step of a change request acts on."""
    steps = body.get("steps") or [body]
    return [str(step["params"].get("ResourceName")) for step in steps]


def wrong_jobs(
    outcomes: Outcomes, resources: dict[str, list[str]], jobs: list[dict[str, Any]]
) -> int:
    """SUCCEEDED steps whose job id is not a job made for that step's resource."""
    made = {str(job["jobId"]): str(job.get("resourceName")) for job in jobs}
    wrong = 0
    for request_id, events in outcomes.events.items():
        event = events[0]
        if event["outcome"] != "SUCCEEDED" or request_id not in resources:
            continue
        for step, resource in zip(event["steps"], resources[request_id], strict=False):
            wrong += made.get(str(step.get("job_id"))) != resource
    return wrong


def _versions(events: list[dict[str, Any]]) -> set[str]:
    return {
        json.dumps({k: v for k, v in e.items() if k != "message_id"}, sort_keys=True)
        for e in events
    }


async def settle(sqs: Any, queue_url: str, deadline: float = 15.0) -> tuple[int, int]:
    """Queue counts once deletes have landed (batched deletes linger briefly)."""
    counts = await queue_counts(sqs, queue_url)
    with anyio.move_on_after(deadline):
        while counts != (0, 0):
            await anyio.sleep(0.2)
            counts = await queue_counts(sqs, queue_url)
    return counts


async def poll(predicate: Callable[[], bool], deadline: float, every: float = 0.1) -> float:
    """Seconds until ``predicate()`` held; TimeoutError after ``deadline``."""
    began = time.monotonic()
    with anyio.fail_after(deadline):
        # Polling is the only option: the state is in another process, behind HTTP.
        while not await anyio.to_thread.run_sync(predicate):  # noqa: ASYNC110
            await anyio.sleep(every)
    return time.monotonic() - began
