"""Worker CPU per change request, A/B: ``python -m bench.ab_worker COUNT ROUNDS DIR [DIR ...]``.

The worker half of scenario 5 (overhead), for each DIR in turn, ROUNDS times: ``orchestrator
run`` started from that directory (so a checkout there, e.g. ``git worktree add /tmp/base
HEAD~1``, runs instead of the installed package) against one emulator and one moto, COUNT
requests. Prints each run and each DIR's median with its ratio to the first DIR's.
"""

from __future__ import annotations

import argparse
import os
import tempfile

import anyio

from bench.harness.measure import median
from bench.harness.processes import AWS_ENV, EmulatorProcess, moto
from bench.scenarios import overhead


async def main(count: int, rounds: int, dirs: list[str]) -> None:
    from orchestrator.testing import sqs_client

    os.environ.update(AWS_ENV)
    emulator = EmulatorProcess()
    os.environ["AWS_ENDPOINT_URL_AMPLIFYBACKEND"] = emulator.url
    runs: dict[str, list[float]] = {directory: [] for directory in dirs}
    try:
        bodies = overhead.prepare(emulator, count)
        with moto(), tempfile.TemporaryDirectory() as workdir:
            async with sqs_client() as sqs:
                for round_ in range(rounds):
                    for directory in dirs:
                        measured = await overhead.worker_round(
                            sqs, bodies, workdir, emulator, cwd=directory
                        )
                        runs[directory].append(1000 * measured["cpu_s"] / count)
                        print(f"round {round_} {directory}: {runs[directory][-1]:.2f} ms/request",
                              flush=True)  # fmt: skip
    finally:
        emulator.close()
    first = median(runs[dirs[0]])
    for directory, values in runs.items():
        each = ", ".join(f"{value:.2f}" for value in values)
        ratio = median(values) / first
        print(f"{directory}: median {median(values):.2f} CPU ms/request ({each}); {ratio:.3f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.ab_worker", description=__doc__)
    parser.add_argument("count", type=int)
    parser.add_argument("rounds", type=int)
    parser.add_argument("dirs", nargs="+")
    args = parser.parse_args()
    anyio.run(main, args.count, args.rounds, args.dirs)
