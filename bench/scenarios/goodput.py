"""Scenario 1, throttled goodput: R = 20 calls/s (burst 5), mutating calls offered by 64
concurrent tasks (closed loop) and, separately, as open-loop Poisson arrivals at 1.5·R.

Per contender: goodput/R, throttled attempts / all attempts, attempts per success, calls
failed for good, p50/p99 latency from offer to success, time to drain; attempts and throttles
over time (sampled from the emulator) for the plots.
"""

from __future__ import annotations

import random
import time
from typing import Any

import anyio

from bench.harness.contenders import APP, CONTENDERS, contender, storage_params
from bench.harness.measure import Calls, percentile, since
from bench.harness.processes import EmulatorProcess
from bench.harness.sampling import sampling, throttle_counts

RATE, BURST = 20.0, 5
TASKS = 64
OPERATION = "CreateBackendStorage"


async def offer(client: Any, calls: Calls, index: int, offered: float, start: float) -> None:
    """One call until success or final failure, recorded in ``calls``."""
    if await client.call(OPERATION, storage_params(APP, "dev", index)):
        calls.offered.append(offered)
        calls.done.append(since(start))
    else:
        calls.failed += 1


async def closed_loop(client: Any, count: int, start: float) -> Calls:
    calls = Calls()
    indices = iter(range(count))

    async def worker() -> None:
        for index in indices:
            await offer(client, calls, index, since(start), start)

    async with anyio.create_task_group() as group:
        for _ in range(TASKS):
            group.start_soon(worker)
    return calls


async def poisson(client: Any, count: int, rate: float, seed: int, start: float) -> Calls:
    calls = Calls()
    rng = random.Random(seed)
    async with anyio.create_task_group() as group:
        due = 0.0
        for index in range(count):
            due += rng.expovariate(rate)
            await anyio.sleep(max(0.0, due - since(start)))
            group.start_soon(offer, client, calls, index, due, start)
    return calls


def summarise(calls: Calls, stats: dict[str, Any], rate: float = RATE) -> dict[str, Any]:
    attempts, throttled = throttle_counts(stats, OPERATION)
    successes = len(calls.done)
    drain = max(calls.done, default=0.0)
    latencies = calls.latencies()
    return {
        "successes": successes,
        "failed": calls.failed,
        "goodput_over_R": round(successes / drain / rate, 3) if drain else 0.0,
        "throttled_ratio": round(throttled / attempts, 4) if attempts else 0.0,
        "attempts_per_success": round(attempts / successes, 3) if successes else None,
        "latency_p50_s": round(percentile(latencies, 0.5), 3),
        "latency_p99_s": round(percentile(latencies, 0.99), 3),
        "drain_s": round(drain, 2),
        "completions": sorted(calls.done),
        "latencies": latencies,
    }


async def run(emulator: EmulatorProcess, quick: bool) -> dict[str, Any]:
    count = 300 if quick else 1200
    results: dict[str, Any] = {"R": RATE, "burst": BURST, "calls": count, "tasks": TASKS}
    for mode in ("closed_loop", "poisson"):
        results[mode] = {}
        for name in CONTENDERS:
            emulator.reset()
            emulator.configure(rate=RATE, burst=BURST, conflict_mode="accept")
            async with contender(name, emulator.url) as client:
                start = time.perf_counter()
                async with sampling(emulator, start) as sampler:
                    if mode == "closed_loop":
                        calls = await closed_loop(client, count, start)
                    else:
                        calls = await poisson(client, count, 1.5 * RATE, 7, start)
            row = summarise(calls, emulator.stats())
            row["series"] = sampler.series()
            results[mode][name] = row
    return results
