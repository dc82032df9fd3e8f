"""Scenario 5, overhead: the full worker's process CPU per change request against the CPU of
the bare aiobotocore calls each request needs, in the same run with the same client settings.

The worker (``orchestrator run``, defaults, SQLite ledger, INFO logs to a file) runs in its own
process against moto's SQS server and the emulator (both in their own processes); its CPU is
read from /proc between "ready" and "every outcome delivered". Then a second process opens
the same clients (:func:`orchestrator.aws.open_clients`) and makes, with the same concurrency,
exactly the calls the worker made for those requests: the receives that returned messages
(receive share), one CreateBackendStorage per request (dispatch), the ListBackendJobs calls the
emulator counted (tracking share), one DeleteMessageBatch per receive (delete share) and one
SendMessage per request (outcome). The ratio is worker CPU / bare CPU.

The child: ``python -m bench.scenarios.overhead QUEUE RESULTS EMULATOR_URL PLAN_JSON``.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from typing import Any

import anyio

from bench.harness import (
    EmulatorProcess,
    WorkerProcess,
    child_env,
    moto,
    storage_params,
    storage_request,
)

APP, ENVIRONMENTS, CONCURRENCY = "ovh", 100, 32
#: Extra worker settings (e.g. to measure what one part costs: log_level, ledger).
WORKER: dict[str, str] = {}


async def bare(queue: str, results: str, plan: dict[str, int]) -> dict[str, float]:
    """The child: the same clients as the worker, only the calls; CPU of the calls alone."""
    from orchestrator.aws import open_clients

    async with open_clients(max_connections=max(16, CONCURRENCY * 2)) as (sqs, amplify):
        await sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])  # warm up
        await amplify.list_backend_jobs(AppId=APP, BackendEnvironmentName="e0", MaxResults=25)
        receipts: list[list[dict[str, str]]] = []
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for _ in range(plan["receives"]):
            got = await sqs.receive_message(
                QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=20,
                VisibilityTimeout=60, AttributeNames=["All"], MessageAttributeNames=["All"],
            )  # fmt: skip
            receipts.append(
                [
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(got.get("Messages", []))
                ]
            )
        work: list[tuple[str, int]] = [("create", i) for i in range(plan["requests"])]
        work += [("list", i) for i in range(plan["lists"])]
        work += [("send", i) for i in range(plan["requests"])]
        items = iter(work)

        async def one() -> None:
            for kind, index in items:
                env = f"e{index % ENVIRONMENTS}"
                if kind == "create":
                    await amplify.create_backend_storage(
                        **storage_params(APP, env, f"bare-{index}")
                    )
                elif kind == "list":
                    await amplify.list_backend_jobs(
                        AppId=APP, BackendEnvironmentName=env, MaxResults=25
                    )
                else:
                    body = json.dumps({"request_id": f"r{index}", "outcome": "SUCCEEDED"})
                    await sqs.send_message(QueueUrl=results, MessageBody=body)

        async with anyio.create_task_group() as group:
            for _ in range(CONCURRENCY):
                group.start_soon(one)
        for entries in receipts:
            if entries:
                await sqs.delete_message_batch(QueueUrl=queue, Entries=entries)
        return {"cpu_s": time.process_time() - cpu0, "wall_s": time.perf_counter() - wall0}


async def run(emulator: EmulatorProcess, quick: bool) -> dict[str, Any]:
    from tests.stack import create_queues, drain, send, sqs_client

    count = 300 if quick else 1000
    emulator.reset()
    environments = [f"e{i}" for i in range(ENVIRONMENTS)]
    emulator.configure(
        rate=None, conflict_mode="accept", job_duration=[0.05, 0.2], apps={APP: environments}
    )
    bodies = [storage_request(f"ovh.{i}", APP, f"e{i % ENVIRONMENTS}") for i in range(count)]
    with moto(), tempfile.TemporaryDirectory() as workdir:
        async with sqs_client() as sqs:
            queues = await create_queues(sqs)
            worker = WorkerProcess(queues.main, queues.results, workdir, **WORKER)
            try:
                await anyio.to_thread.run_sync(worker.wait_ready)
                await anyio.sleep(1.0)
                emulator.reset()
                cpu0, began = worker.cpu(), time.perf_counter()
                await send(sqs, queues.main, bodies)
                outcomes = await drain(sqs, queues.results, count, deadline=600)
                wall = time.perf_counter() - began
                await anyio.sleep(0.5)  # the last delete batch
                worker_cpu = worker.cpu() - cpu0
                samples = worker.metrics()
            finally:
                worker.stop()
            calls = emulator.stats()["calls"]
            receives = int(
                sum(v for k, v in samples.items() if k.startswith("orchestrator_sqs_receives_total")
                    and 'result="messages"' in k)
            )  # fmt: skip
            plan = {
                "requests": count,
                "receives": receives,
                "lists": int(calls.get("ListBackendJobs", 0)),
                "creates": int(calls.get("CreateBackendStorage", 0)),
            }
            bare_queues = await create_queues(sqs)
            await send(sqs, bare_queues.main, bodies)
            emulator.reset()
            command = [
                sys.executable, "-m", "bench.scenarios.overhead",
                bare_queues.main, bare_queues.results, emulator.url, json.dumps(plan),
            ]  # fmt: skip
            result = await anyio.run_process(command, env=child_env(), check=True, stderr=None)
            measured = json.loads(result.stdout.decode().strip().splitlines()[-1])
    succeeded = sum(1 for o in outcomes if o.get("outcome") == "SUCCEEDED")
    worker_calls = {
        key.split("{", 1)[0].removeprefix("orchestrator_") + "{" + key.split("{", 1)[1]: value
        for key, value in samples.items()
        if key.startswith(("orchestrator_api_calls_total{", "orchestrator_sqs_receives_total{",
                           "orchestrator_sqs_visibility_extensions_total"))
        and value
    }  # fmt: skip
    return {
        "requests": count,
        "succeeded": succeeded,
        "calls_per_request": {
            "receive": round(receives / count, 3),
            "create": round(plan["creates"] / count, 3),
            "list_backend_jobs": round(plan["lists"] / count, 3),
            "delete_batch": round(receives / count, 3),
            "send_outcome": 1.0,
        },
        "worker_calls": worker_calls,
        "worker_cpu_ms_per_request": round(1000 * worker_cpu / count, 3),
        "bare_cpu_ms_per_request": round(1000 * measured["cpu_s"] / count, 3),
        "ratio": round(worker_cpu / measured["cpu_s"], 3),
        "worker_wall_s": round(wall, 2),
        "bare_wall_s": round(measured["wall_s"], 2),
    }


if __name__ == "__main__":
    queue_url, results_url, endpoint, plan_json = sys.argv[1:5]
    import os

    os.environ["AWS_ENDPOINT_URL_AMPLIFYBACKEND"] = endpoint
    print(json.dumps(anyio.run(bare, queue_url, results_url, json.loads(plan_json))))
