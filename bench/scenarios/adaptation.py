"""Scenario 2, adaptation: the emulator's limit steps R = 20 → 5 → 40 mid-run (runtime
config), under a closed loop of 64 tasks. Per contender and step: the time from the step until
goodput *stays* within 10% of the new R (sliding window), and the throttles in the transition
(the first ``TRANSITION`` seconds after the step).
"""

from __future__ import annotations

import functools
import time
from typing import Any

import anyio

from bench.harness.contenders import APP, CONTENDERS, contender, storage_params
from bench.harness.measure import since
from bench.harness.processes import EmulatorProcess
from bench.harness.sampling import sampling

BURST, TASKS, TOLERANCE, TRANSITION = 5, 64, 0.10, 5.0
OPERATION = "CreateBackendStorage"


def phases(quick: bool) -> list[tuple[float, float]]:
    """(start second, R) of each phase; the run ends one phase length after the last."""
    length = 15.0 if quick else 25.0
    return [(0.0, 20.0), (length, 5.0), (2 * length, 40.0)]


def window(rate: float) -> float:
    """Sliding window for goodput: ≥ 2 s and ≥ 20 expected successes (counts are integers)."""
    return max(2.0, 20.0 / rate)


def settle_time(done: list[float], begin: float, end: float, rate: float) -> float | None:
    """Earliest s ≥ begin such that every window [u, u+w] within [s, end] has goodput within
    TOLERANCE of ``rate``; returns s - begin (None if it never settles)."""
    w, step = window(rate), 0.1
    starts = [begin + i * step for i in range(int((end - w - begin) / step) + 1)]
    ok = []
    for u in starts:
        count = sum(1 for t in done if u <= t < u + w)
        ok.append(abs(count / w - rate) <= TOLERANCE * rate)
    settled = None
    for u, good in zip(reversed(starts), reversed(ok), strict=True):
        if not good:
            break
        settled = u
    return None if settled is None else round(settled - begin, 2)


async def one(
    emulator: EmulatorProcess, name: str, plan: list[tuple[float, float]]
) -> dict[str, Any]:
    emulator.reset()
    emulator.configure(rate=plan[0][1], burst=BURST, conflict_mode="accept")
    end = plan[-1][0] + (plan[-1][0] - plan[-2][0])
    done: list[float] = []
    async with contender(name, emulator.url) as client:
        start = time.perf_counter()
        async with sampling(emulator, start) as sampler, anyio.create_task_group() as group:
            counter = iter(range(10**9))

            async def worker() -> None:
                while since(start) < end:
                    if await client.call(OPERATION, storage_params(APP, "dev", next(counter))):
                        done.append(since(start))

            for _ in range(TASKS):
                group.start_soon(worker)
            for at, rate in plan[1:]:
                await anyio.sleep(max(0.0, at - since(start)))
                await anyio.to_thread.run_sync(functools.partial(emulator.configure, rate=rate))
    samples = sampler.samples
    steps = []
    for index, (at, rate) in enumerate(plan[1:], start=1):
        until = plan[index + 1][0] if index + 1 < len(plan) else end
        before = next((h for t, _, h in reversed(samples) if t <= at), 0)
        after = next((h for t, _, h in samples if t >= at + TRANSITION), samples[-1][2])
        steps.append(
            {
                "at_s": at,
                "from_R": plan[index - 1][1],
                "to_R": rate,
                "settle_s": settle_time(done, at, until, rate),
                "throttles_in_transition": after - before,
            }
        )
    return {"steps": steps, "completions": sorted(done), "series": sampler.series()}


async def run(emulator: EmulatorProcess, quick: bool) -> dict[str, Any]:
    plan = phases(quick)
    results: dict[str, Any] = {"plan": plan, "tolerance": TOLERANCE, "transition_s": TRANSITION}
    for name in CONTENDERS:
        results[name] = await one(emulator, name, plan)
    return results
