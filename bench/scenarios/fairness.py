"""Scenario 3, fairness: three worker processes share one emulator limit (R = 20/s) without
talking to each other. Each runs our client (limiter + retries, worker defaults) in a closed
loop for the same wall-clock window. Reported: each one's share, Jain's index, total goodput/R.

The same module is the child process: ``python -m bench.scenarios.fairness URL SECONDS TAG``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import anyio

from bench.harness import APP, contender, storage_params

RATE, BURST, PROCESSES, TASKS = 20.0, 5, 3, 16


async def child(url: str, seconds: float, tag: str) -> dict[str, Any]:
    successes = 0
    started = time.time()
    deadline = time.monotonic() + seconds
    async with contender("ours", url) as client:

        async def loop(worker: int) -> None:
            nonlocal successes
            index = 0
            while time.monotonic() < deadline:
                index += 1
                params = storage_params(APP, "dev", index)
                params["ResourceName"] = f"{tag}-{worker}-{index}"
                if await client.call("CreateBackendStorage", params):
                    successes += 1

        async with anyio.create_task_group() as group:
            for worker in range(TASKS):
                group.start_soon(loop, worker)
    return {"tag": tag, "successes": successes, "started": started, "ended": time.time()}


def jain(values: list[float]) -> float:
    total = sum(values)
    return total * total / (len(values) * sum(v * v for v in values)) if total else 0.0


async def run(emulator: Any, quick: bool) -> dict[str, Any]:
    seconds = 15.0 if quick else 40.0
    emulator.reset()
    emulator.configure(rate=RATE, burst=BURST, conflict_mode="accept")
    outputs: list[str] = []

    async def spawn(tag: str) -> None:
        command = [
            sys.executable,
            "-m",
            "bench.scenarios.fairness",
            emulator.url,
            str(seconds),
            tag,
        ]
        result = await anyio.run_process(command, env=dict(os.environ), check=True)
        outputs.append(result.stdout.decode().strip().splitlines()[-1])

    async with anyio.create_task_group() as group:
        for number in range(PROCESSES):
            group.start_soon(spawn, f"p{number}")
    children = sorted((json.loads(line) for line in outputs), key=lambda c: c["tag"])
    counts = [float(c["successes"]) for c in children]
    window = max(c["ended"] for c in children) - min(c["started"] for c in children)
    stats = emulator.stats()
    attempts = int(stats["calls"].get("CreateBackendStorage", 0))
    throttled = int(sum(stats["throttled"].values()))
    return {
        "R": RATE,
        "processes": PROCESSES,
        "seconds": seconds,
        "shares": [round(c / sum(counts), 3) if sum(counts) else 0.0 for c in counts],
        "jain_index": round(jain(counts), 4),
        # Over the union of the three windows (the processes start a little apart).
        "total_goodput_over_R": round(sum(counts) / window / RATE, 3),
        "throttled_ratio": round(throttled / attempts, 4) if attempts else 0.0,
    }


if __name__ == "__main__":
    from orchestrator import logs

    logs.configure("WARNING")
    url, seconds, tag = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    print(json.dumps(anyio.run(child, url, seconds, tag)))
