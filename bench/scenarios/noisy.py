"""Scenario 7, noisy neighbour: app A floods 2,000 change requests into the worker's queue,
then app B sends 20 (one every 0.5 s, each on its own environment, outcomes to B's own results
queue) through the same worker (``orchestrator run``, defaults) against one emulator limit
(R = 20/s). B's latency is send → outcome event received. Three runs, same settings: B alone,
B behind A's flood with per-app fairness (the default), and with ``app_fairness=false``.
"""

from __future__ import annotations

import json
import tempfile
import time
from typing import Any

import anyio

from bench.harness.contenders import storage_request
from bench.harness.measure import percentile
from bench.harness.processes import EmulatorProcess, WorkerProcess, moto

RATE, BURST, FLOOD, B_REQUESTS, B_EVERY = 20.0, 5, 2000, 20, 0.5
A_ENVIRONMENTS = 50
#: Extra worker settings for experiments (e.g. receivers=1 to see one long poll's effect).
WORKER: dict[str, Any] = {}


async def one(
    emulator: EmulatorProcess, flood: bool, fair: bool, workdir: str, limit: float
) -> dict[str, Any]:
    from orchestrator.testing import create_queues, send, sqs_client

    emulator.reset()
    emulator.configure(rate=RATE, burst=BURST, conflict_mode="accept", job_duration=[0.05, 0.2])
    async with sqs_client() as sqs:
        queues = await create_queues(sqs)
        b_results = (await sqs.create_queue(QueueName=f"b-{time.time_ns()}"))["QueueUrl"]
        worker = WorkerProcess(
            queues.main, queues.results, workdir, app_fairness=str(fair).lower(), **WORKER
        )
        try:
            await anyio.to_thread.run_sync(worker.wait_ready)
            sent: dict[str, float] = {}
            latencies: list[float] = []
            if flood:
                bodies = [
                    storage_request(f"a.{i}", "appA", f"a{i % A_ENVIRONMENTS}")
                    for i in range(FLOOD)
                ]
                await send(sqs, queues.main, bodies)
            began = time.perf_counter()
            async with anyio.create_task_group() as group:

                async def send_b() -> None:
                    for i in range(B_REQUESTS):
                        body = storage_request(f"b.{i}", "appB", f"b{i}", reply_to=b_results)
                        sent[body["request_id"]] = time.perf_counter()
                        await sqs.send_message(QueueUrl=queues.main, MessageBody=json.dumps(body))
                        await anyio.sleep(B_EVERY)

                group.start_soon(send_b)
                # B requests still without an outcome after ``limit`` count as ``limit`` seconds
                # (a lower bound).
                with anyio.move_on_after(limit):
                    while len(latencies) < B_REQUESTS:
                        got = await sqs.receive_message(
                            QueueUrl=b_results, MaxNumberOfMessages=10, WaitTimeSeconds=1
                        )
                        now = time.perf_counter()
                        for message in got.get("Messages", []):
                            event = json.loads(message["Body"])
                            latencies.append(now - sent[event["request_id"]])
                            await sqs.delete_message(
                                QueueUrl=b_results, ReceiptHandle=message["ReceiptHandle"]
                            )
                group.cancel_scope.cancel()
            elapsed = time.perf_counter() - began
            completed = len(latencies)
            latencies += [limit] * (B_REQUESTS - completed)
            a_done = 0
            if flood:
                samples = worker.metrics()
                done = sum(
                    v for k, v in samples.items() if k.startswith("orchestrator_requests_total")
                )
                a_done = int(done) - completed
        finally:
            worker.process.kill()
            worker.process.wait()
        await sqs.purge_queue(QueueUrl=queues.main)
    return {
        "b_completed": completed,
        "b_p50_s": round(percentile(latencies, 0.5), 3),
        "b_p99_s": round(percentile(latencies, 0.99), 3),
        "b_max_s": round(max(latencies), 3),
        "a_done_meanwhile": a_done,
        "seconds": round(elapsed, 1),
        "b_latencies": sorted(latencies),
    }


async def run(emulator: EmulatorProcess, quick: bool) -> dict[str, Any]:
    limit = 60.0 if quick else 120.0
    results: dict[str, Any] = {
        "R": RATE, "flood": FLOOD, "b_requests": B_REQUESTS, "limit_s": limit
    }  # fmt: skip
    with moto(), tempfile.TemporaryDirectory() as workdir:
        results["b_alone"] = await one(emulator, False, True, workdir, limit)
        results["b_with_flood"] = await one(emulator, True, True, workdir, limit)
        results["b_with_flood_no_fairness"] = await one(emulator, True, False, workdir, limit)
    alone = results["b_alone"]["b_p99_s"]
    for name in ("b_with_flood", "b_with_flood_no_fairness"):
        results[name]["p99_over_alone"] = round(results[name]["b_p99_s"] / alone, 2)
    return results
