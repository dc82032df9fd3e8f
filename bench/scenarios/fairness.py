"""Scenario 3, fairness: three worker processes share one emulator limit (R = 20/s) without
talking to each other. Each runs our client (limiter + retries, worker defaults) in a closed
loop of 16 tasks. Shares are counted over the window all three were running (they start a
little apart); reported: each one's share, Jain's index, total goodput/R, throttle ratio.

The same module is the child process: ``python -m bench.scenarios.fairness URL SECONDS TAG``.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import anyio

from bench.harness.contenders import APP, contender, storage_params
from bench.harness.measure import jain
from bench.harness.processes import EmulatorProcess, child_env

RATE, BURST, PROCESSES, TASKS = 20.0, 5, 3, 16


async def child(url: str, seconds: float, tag: str) -> dict[str, Any]:
    done: list[float] = []
    started = time.time()
    deadline = time.monotonic() + seconds
    async with contender("ours", url) as client:

        async def loop(worker: int) -> None:
            index = 0
            while time.monotonic() < deadline:
                index += 1
                params = storage_params(APP, "dev", f"{tag}-{worker}-{index}")
                if await client.call("CreateBackendStorage", params):
                    done.append(time.time())

        async with anyio.create_task_group() as group:
            for worker in range(TASKS):
                group.start_soon(loop, worker)
    return {"tag": tag, "done": done, "started": started, "ended": time.time()}


async def run(emulator: EmulatorProcess, quick: bool) -> dict[str, Any]:
    seconds = 20.0 if quick else 60.0
    emulator.reset()
    emulator.configure(rate=RATE, burst=BURST, conflict_mode="accept")
    outputs: list[str] = []

    async def spawn(tag: str) -> None:
        module = "bench.scenarios.fairness"
        command = [sys.executable, "-m", module, emulator.url, str(seconds), tag]
        result = await anyio.run_process(command, env=child_env(), check=True, stderr=None)
        outputs.append(result.stdout.decode().strip().splitlines()[-1])

    async with anyio.create_task_group() as group:
        for number in range(PROCESSES):
            group.start_soon(spawn, f"p{number}")
    children = sorted((json.loads(line) for line in outputs), key=lambda c: c["tag"])
    # The common window: after the last one started (plus 2 s of warm-up), before the first ended.
    begin = max(c["started"] for c in children) + 2.0
    end = min(c["ended"] for c in children)
    counts = [float(sum(1 for t in c["done"] if begin <= t < end)) for c in children]
    stats = emulator.stats()
    attempts = int(stats["calls"].get("CreateBackendStorage", 0))
    throttled = int(sum(stats["throttled"].values()))
    total = sum(counts)
    return {
        "R": RATE,
        "processes": PROCESSES,
        "tasks_per_process": TASKS,
        "seconds": seconds,
        "window_s": round(end - begin, 2),
        "shares": [round(c / total, 3) if total else 0.0 for c in counts],
        "jain_index": round(jain(counts), 4),
        "total_goodput_over_R": round(total / (end - begin) / RATE, 3),
        "throttled_ratio": round(throttled / attempts, 4) if attempts else 0.0,
        "per_process_rate": [
            [sum(1 for t in c["done"] if s <= t - begin < s + 1) for s in range(int(end - begin))]
            for c in children
        ],
    }


if __name__ == "__main__":
    url, seconds, tag = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    print(json.dumps(anyio.run(child, url, seconds, tag)))
