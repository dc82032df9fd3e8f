"""What one AmplifyBackend call costs in CPU depending on how calls are spaced:
``.venv/bin/python -m bench.call_shape``.

The same 300 CreateBackendStorage calls against the emulator (its own process), made three
ways by one client in one process, in alternation: 32 tasks back to back (``burst``), 8 tasks
each pausing 0.3 s between calls (``spread``), and one call every 40 ms (``alone``). The
difference is why scenario 5 compares the worker with bare calls made at the worker's pace.
"""

from __future__ import annotations

import os
import time

import anyio

from bench.harness.contenders import storage_params
from bench.harness.measure import median
from bench.harness.processes import AWS_ENV, EmulatorProcess

APP, ENVIRONMENTS, CALLS = "shape", 100, 300
SHAPES = {"burst": (32, 0.0), "spread": (8, 0.3), "alone": (1, 0.04)}


async def _shape(client: object, tasks: int, gap: float, tag: str) -> float:
    """CPU ms per call of CALLS calls made by ``tasks`` tasks pausing ``gap`` s after each."""
    numbers = iter(range(CALLS))

    async def one() -> None:
        for index in numbers:
            env = f"e{index % ENVIRONMENTS}"
            params = storage_params(APP, env, f"{tag}-{index}")
            await client.create_backend_storage(**params)  # type: ignore[attr-defined]
            if gap:
                await anyio.sleep(gap)

    cpu = time.process_time()
    async with anyio.create_task_group() as group:
        for _ in range(tasks):
            group.start_soon(one)
    return 1000 * (time.process_time() - cpu) / CALLS


async def main(rounds: int = 3) -> None:
    from orchestrator.aws import open_clients

    os.environ.update(AWS_ENV)
    emulator = EmulatorProcess()
    os.environ["AWS_ENDPOINT_URL_AMPLIFYBACKEND"] = emulator.url
    environments = [f"e{i}" for i in range(ENVIRONMENTS)]
    emulator.configure(rate=None, conflict_mode="accept", apps={APP: environments})
    results: dict[str, list[float]] = {name: [] for name in SHAPES}
    try:
        async with open_clients() as (_, amplify):
            await amplify.list_backend_jobs(AppId=APP, BackendEnvironmentName="e0")
            for round_ in range(rounds):
                for name, (tasks, gap) in SHAPES.items():
                    results[name].append(await _shape(amplify, tasks, gap, f"{name}{round_}"))
    finally:
        emulator.close()
    burst = median(results["burst"])
    for name, values in results.items():
        runs = ", ".join(f"{value:.2f}" for value in values)
        print(f"{name:7s} median {median(values):.2f} CPU ms/call ({runs}); "
              f"{median(values) / burst:.2f}x burst")  # fmt: skip


if __name__ == "__main__":
    anyio.run(main)
