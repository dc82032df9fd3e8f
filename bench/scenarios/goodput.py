"""Scenario 1, throttled goodput: R = 20 calls/s (burst 5), mutating calls offered by 64
concurrent tasks (closed loop) and, separately, as open-loop Poisson arrivals at 1.5·R.

Per contender: goodput/R, throttled attempts / all attempts, attempts per success, calls
failed for good, p50/p99 latency from offer to success, time to drain.
"""

from __future__ import annotations

import random
import time
from typing import Any

import anyio

from bench.harness import APP, CONTENDERS, Calls, contender, percentile, since, storage_params

RATE, BURST = 20.0, 5
TASKS = 64


async def offer(client: Any, calls: Calls, index: int, offered: float, start: float) -> None:
    """One call until success or final failure, recorded in ``calls``."""
    if await client.call("CreateBackendStorage", storage_params(APP, "dev", index)):
        calls.offered.append(offered)
        calls.done.append(since(start))
    else:
        calls.failed += 1


async def closed_loop(client: Any, count: int) -> Calls:
    calls = Calls()
    indices = iter(range(count))
    start = time.perf_counter()

    async def worker() -> None:
        for index in indices:
            await offer(client, calls, index, since(start), start)

    async with anyio.create_task_group() as group:
        for _ in range(TASKS):
            group.start_soon(worker)
    return calls


async def poisson(client: Any, count: int, rate: float, seed: int) -> Calls:
    calls = Calls()
    rng = random.Random(seed)
    start = time.perf_counter()

    async with anyio.create_task_group() as group:
        due = 0.0
        for index in range(count):
            due += rng.expovariate(rate)
            await anyio.sleep(max(0.0, due - since(start)))
            group.start_soon(offer, client, calls, index, due, start)
    return calls


def summarise(calls: Calls, stats: dict[str, Any]) -> dict[str, Any]:
    attempts = int(stats["calls"].get("CreateBackendStorage", 0))
    throttled = int(sum(stats["throttled"].values()))
    successes = len(calls.done)
    drain = max(calls.done, default=0.0)
    latencies = calls.latencies()
    return {
        "successes": successes,
        "failed": calls.failed,
        "goodput_over_R": round(successes / drain / RATE, 3) if drain else 0.0,
        "throttled_ratio": round(throttled / attempts, 4) if attempts else 0.0,
        "attempts_per_success": round(attempts / successes, 3) if successes else None,
        "latency_p50_s": round(percentile(latencies, 0.5), 3),
        "latency_p99_s": round(percentile(latencies, 0.99), 3),
        "drain_s": round(drain, 2),
        "completions": sorted(calls.done),
        "latencies": latencies,
    }


async def run(emulator: Any, quick: bool) -> dict[str, Any]:
    count = 300 if quick else 1200
    results: dict[str, Any] = {"R": RATE, "burst": BURST, "calls": count}
    for mode in ("closed_loop", "poisson"):
        results[mode] = {}
        for name in CONTENDERS:
            emulator.reset()
            emulator.configure(rate=RATE, burst=BURST, conflict_mode="accept")
            async with contender(name, emulator.url) as client:
                if mode == "closed_loop":
                    calls = await closed_loop(client, count)
                else:
                    calls = await poisson(client, count, 1.5 * RATE, seed=7)
            results[mode][name] = summarise(calls, emulator.stats())
    return results
