"""Scenario 5, overhead: the full worker's process CPU per change request against the CPU of
the bare aiobotocore calls each request needs, in the same run with the same client settings.

The worker (``orchestrator run``, defaults, SQLite ledger, INFO logs to a file) runs in its own
process against moto's SQS server and the emulator (both in their own processes); its CPU is
read from /proc between "requests sent" and "every outcome delivered". Then a second process
opens the same clients (:func:`orchestrator.aws.open_clients`) and makes exactly the calls the
worker needed for those requests: the receives that returned messages (receive share), one
CreateBackendStorage per request (dispatch), the ListBackendJobs calls the emulator counted
(tracking share), one DeleteMessageBatch per receive (delete share) and one SendMessage per
request (outcome). Calls the worker made beyond those (more delete batches, empty receives,
visibility extensions, queue-depth samples) count as its overhead.

The bare calls are made twice, each in a fresh process:

* ``paced`` (the baseline of the target): each kind of call spread evenly over the worker's
  wall time, one task per call, so the process does the same calls at the same pace as the
  worker did. This matters: one CreateBackendStorage costs 1.9x the CPU when 8 tasks each
  pause 0.3 s between calls, and 3.0x when made alone every 40 ms, than when 32 tasks make
  them back to back (``python -m bench.call_shape``: caches and the event loop's cost per
  wake-up are shared by many calls only in a busy process).
* ``burst``: ``CONCURRENCY`` tasks making the calls back to back, the cheapest possible shape,
  reported for reference.

Full size repeats worker + bare three times and reports the median ratio.

The child: ``python -m bench.scenarios.overhead QUEUE RESULTS EMULATOR_URL PLAN_JSON MODE``.
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from bench.harness.contenders import storage_params, storage_request
from bench.harness.measure import median
from bench.harness.processes import EmulatorProcess, WorkerProcess, child_env, moto

APP, ENVIRONMENTS, CONCURRENCY = "ovh", 100, 32
#: Extra worker settings (e.g. to measure what one part costs: log_level, ledger).
WORKER: dict[str, Any] = {}


def _schedule(plan: dict[str, float]) -> list[tuple[float, str, int]]:
    """(time, kind, index) of every call, spread evenly over ``plan["wall_s"]`` per kind."""
    wall = plan["wall_s"]
    counts = {
        "receive": (int(plan["receives"]), 0.0),
        "create": (int(plan["requests"]), 0.1),
        "list": (int(plan["lists"]), 0.5),
        "send": (int(plan["requests"]), 0.9),
        "delete": (int(plan["receives"]), 0.95),
    }
    events = [
        (wall * (index + offset) / count, kind, index)
        for kind, (count, offset) in counts.items()
        for index in range(count)
    ]
    return sorted(events)


async def bare(queue: str, results: str, plan: dict[str, float], mode: str) -> dict[str, float]:
    """The child: the same clients as the worker, only the calls; CPU of the calls alone.

    ``paced``: every call at its time in :func:`_schedule` (the worker's pace, one task per
    call); ``burst``: ``CONCURRENCY`` tasks making the calls back to back."""
    from orchestrator.aws import open_clients

    per_receive = max(1, min(10, math.ceil(plan["requests"] / max(1, plan["receives"]))))
    receipts: dict[int, list[dict[str, str]]] = {}
    received: dict[int, anyio.Event] = {}

    async with open_clients(max_connections=max(16, CONCURRENCY * 2)) as (sqs, amplify):

        async def call(kind: str, index: int) -> None:
            env = f"e{index % ENVIRONMENTS}"
            if kind == "receive":
                got = await sqs.receive_message(
                    QueueUrl=queue, MaxNumberOfMessages=per_receive, WaitTimeSeconds=20,
                    VisibilityTimeout=60, MessageSystemAttributeNames=["ApproximateReceiveCount"],
                )  # fmt: skip
                receipts[index] = [
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(got.get("Messages", []))
                ]
                received.setdefault(index, anyio.Event()).set()
            elif kind == "create":
                await amplify.create_backend_storage(**storage_params(APP, env, f"bare-{index}"))
            elif kind == "list":
                await amplify.list_backend_jobs(
                    AppId=APP, BackendEnvironmentName=env, MaxResults=25
                )
            elif kind == "send":
                body = json.dumps({"request_id": f"r{index}", "outcome": "SUCCEEDED"})
                await sqs.send_message(QueueUrl=results, MessageBody=body)
            else:
                await received.setdefault(index, anyio.Event()).wait()
                if receipts[index]:
                    await sqs.delete_message_batch(QueueUrl=queue, Entries=receipts[index])

        await sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])  # warm up
        await amplify.list_backend_jobs(AppId=APP, BackendEnvironmentName="e0", MaxResults=25)
        events = _schedule(plan)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        async with anyio.create_task_group() as group:
            if mode == "paced":
                for at, kind, index in events:
                    await anyio.sleep_until(wall0 + at)
                    group.start_soon(call, kind, index)
            else:
                # Receives first (deletes wait for them), the rest in schedule order.
                ordered = iter(sorted(events, key=lambda event: event[1] != "receive"))

                async def one() -> None:
                    for _, kind, index in ordered:
                        await call(kind, index)

                for _ in range(CONCURRENCY):
                    group.start_soon(one)
        return {"cpu_s": time.process_time() - cpu0, "wall_s": time.perf_counter() - wall0}


async def worker_round(
    sqs: Any,
    bodies: list[dict[str, Any]],
    workdir: str,
    emulator: EmulatorProcess,
    cwd: str | None = None,
    env: dict[str, str] | None = None,
    settled: Callable[[str], Awaitable[None]] | None = None,
) -> dict[str, Any]:
    """One worker measurement: its CPU for the requests, and the calls it made (the plan).
    ``env``: extra environment of the worker; ``settled(queue_url)``: awaited before the CPU
    is read (what the worker still does for these requests, e.g. export their spans)."""
    from orchestrator.testing import create_queues, drain, send

    count = len(bodies)
    queues = await create_queues(sqs)
    worker = WorkerProcess(queues.main, queues.results, workdir, cwd=cwd, env=env, **WORKER)
    try:
        await anyio.to_thread.run_sync(worker.wait_ready)
        await anyio.sleep(1.0)
        emulator.reset()
        cpu0, began = worker.cpu(), time.perf_counter()
        await send(sqs, queues.main, bodies)
        outcomes = await drain(sqs, queues.results, count, deadline=600)
        while len(missing := _requests(bodies) - _requests(outcomes)) > 0:
            # SQS delivers at least once: a redelivered request re-sends its stored outcome,
            # so `count` events may hold a copy and miss a request still to come.
            outcomes += await drain(sqs, queues.results, len(missing), deadline=600)
        wall = time.perf_counter() - began
        await anyio.sleep(1.0)  # the last delete batch
        if settled is not None:
            await settled(queues.main)
        worker_cpu = worker.cpu() - cpu0
        samples = worker.metrics()
    finally:
        worker.stop()
    calls = emulator.stats()["calls"]
    receives = sum(
        value for key, value in samples.items()
        if key.startswith("orchestrator_sqs_receives_total") and 'result="messages"' in key
    )  # fmt: skip
    return {
        "cpu_s": worker_cpu,
        "succeeded": len({o["request_id"] for o in outcomes if o.get("outcome") == "SUCCEEDED"}),
        "repeated_outcomes": len(outcomes) - len(_requests(outcomes)),
        "plan": {
            "requests": count,
            "receives": int(receives),
            "lists": int(calls.get("ListBackendJobs", 0)),
            "creates": int(calls.get("CreateBackendStorage", 0)),
            "wall_s": round(wall, 3),
        },
        "calls": {
            key.removeprefix("orchestrator_"): value
            for key, value in samples.items()
            if key.startswith(("orchestrator_api_calls_total{", "orchestrator_sqs_calls_total{"))
            and value
        },
    }


def _requests(items: list[dict[str, Any]]) -> set[str]:
    return {str(item["request_id"]) for item in items}


async def _bare_round(
    sqs: Any,
    bodies: list[dict[str, Any]],
    plan: dict[str, Any],
    emulator: EmulatorProcess,
    mode: str,
) -> dict[str, float]:
    from orchestrator.testing import create_queues, send

    queues = await create_queues(sqs)
    await send(sqs, queues.main, bodies)
    emulator.reset()
    command = [
        sys.executable, "-m", "bench.scenarios.overhead",
        queues.main, queues.results, emulator.url, json.dumps(plan), mode,
    ]  # fmt: skip
    result = await anyio.run_process(command, env=child_env(), check=True, stderr=None)
    measured: dict[str, float] = json.loads(result.stdout.decode().strip().splitlines()[-1])
    return measured


def prepare(emulator: EmulatorProcess, count: int) -> list[dict[str, Any]]:
    """Configure the emulator for this scenario; the change requests to send."""
    emulator.reset()
    environments = [f"e{i}" for i in range(ENVIRONMENTS)]
    emulator.configure(
        rate=None, conflict_mode="accept", job_duration=[0.05, 0.2], apps={APP: environments}
    )
    return [storage_request(f"ovh.{i}", APP, f"e{i % ENVIRONMENTS}") for i in range(count)]


async def run(emulator: EmulatorProcess, quick: bool) -> dict[str, Any]:
    from orchestrator.testing import sqs_client

    count, rounds = (300, 1) if quick else (1000, 3)
    bodies = prepare(emulator, count)
    per_round: list[dict[str, Any]] = []
    with moto(), tempfile.TemporaryDirectory() as workdir:
        async with sqs_client() as sqs:
            for _ in range(rounds):
                worker = await worker_round(sqs, bodies, workdir, emulator)
                paced = await _bare_round(sqs, bodies, worker["plan"], emulator, "paced")
                burst = await _bare_round(sqs, bodies, worker["plan"], emulator, "burst")
                per_round.append({"worker": worker, "paced": paced, "burst": burst})

    def ms(values: list[float]) -> float:
        return round(1000 * median(values) / count, 3)

    worker_cpu = [r["worker"]["cpu_s"] for r in per_round]
    ratios = [r["worker"]["cpu_s"] / r["paced"]["cpu_s"] for r in per_round]
    burst_ratios = [r["worker"]["cpu_s"] / r["burst"]["cpu_s"] for r in per_round]
    last = per_round[-1]["worker"]
    plan = last["plan"]
    return {
        "requests": count,
        "rounds": rounds,
        "succeeded": min(r["worker"]["succeeded"] for r in per_round),
        "calls_per_request": {
            "receive": round(plan["receives"] / count, 3),
            "create": round(plan["creates"] / count, 3),
            "list_backend_jobs": round(plan["lists"] / count, 3),
            "delete_batch": round(plan["receives"] / count, 3),
            "send_outcome": 1.0,
        },
        "worker_calls": last["calls"],
        "worker_cpu_ms_per_request": ms(worker_cpu),
        "bare_cpu_ms_per_request": ms([r["paced"]["cpu_s"] for r in per_round]),
        "ratio": round(median(ratios), 3),
        "ratios": [round(r, 3) for r in ratios],
        "burst_cpu_ms_per_request": ms([r["burst"]["cpu_s"] for r in per_round]),
        "ratio_to_burst": round(median(burst_ratios), 3),
        "worker_wall_s": round(median([r["worker"]["plan"]["wall_s"] for r in per_round]), 2),
        "bare_wall_s": round(median([r["paced"]["wall_s"] for r in per_round]), 2),
        "burst_wall_s": round(median([r["burst"]["wall_s"] for r in per_round]), 2),
    }


if __name__ == "__main__":
    queue_url, results_url, endpoint, plan_json, mode = sys.argv[1:6]
    import os

    os.environ["AWS_ENDPOINT_URL_AMPLIFYBACKEND"] = endpoint
    print(json.dumps(anyio.run(bare, queue_url, results_url, json.loads(plan_json), mode)))
