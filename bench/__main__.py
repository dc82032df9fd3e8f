"""`make bench`: run the benchmark scenarios against the emulator, write bench/results/.

.venv/bin/python -m bench [--quick] [--scenario N|NAME ...] [--out bench/results]

Scenarios: 1 goodput, 2 adaptation, 3 fairness, 4 tracking, 5 overhead, 6 scale, 7 noisy,
8 tracing (scenario 5's worker CPU with OpenTelemetry tracing off and on).
The emulator (and moto's SQS where needed) runs in its own process; every contender of a
scenario runs against the same emulator settings in the same run.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio

from bench import report
from bench.harness.processes import AWS_ENV, EmulatorProcess
from bench.scenarios import (
    adaptation,
    fairness,
    goodput,
    noisy,
    overhead,
    scale,
    tracing,
    tracking,
)

Scenario = Callable[[EmulatorProcess, bool], Awaitable[dict[str, Any]]]
SCENARIOS: dict[str, Scenario] = {
    "goodput": goodput.run,
    "adaptation": adaptation.run,
    "fairness": fairness.run,
    "tracking": tracking.run,
    "overhead": overhead.run,
    "scale": scale.run,
    "noisy": noisy.run,
    "tracing": tracing.run,
}
NUMBERS = {str(i): name for i, name in enumerate(SCENARIOS, start=1)}


async def _run(names: list[str], quick: bool, failed: list[str]) -> dict[str, Any]:
    """Each scenario's results; the names of those that raised are appended to ``failed``."""
    results: dict[str, Any] = {}
    emulator = EmulatorProcess("--app", "bench:dev", "--auto-create", "--seed", "3")
    os.environ["AWS_ENDPOINT_URL_AMPLIFYBACKEND"] = emulator.url
    try:
        for name in names:
            began = time.perf_counter()
            print(f"running {name} ...", file=sys.stderr, flush=True)
            try:
                results[name] = await SCENARIOS[name](emulator, quick)
            except Exception as exc:  # one broken scenario must not lose the others' results
                print(f"  {name} failed: {exc!r}", file=sys.stderr, flush=True)
                traceback.print_exc()
                failed.append(name)
                continue
            results[name]["bench_seconds"] = round(time.perf_counter() - began, 1)
            print(f"  {name}: {time.perf_counter() - began:.0f} s", file=sys.stderr, flush=True)
    finally:
        emulator.close()
    return results


def _scenario(value: str) -> str:
    name = NUMBERS.get(value, value)
    if name not in SCENARIOS:
        raise argparse.ArgumentTypeError(f"unknown scenario {value!r}")
    return name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (~2 min)")
    parser.add_argument(
        "--scenario", type=_scenario, action="append", help="1-8 or a name; repeatable"
    )
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args(argv)
    names = args.scenario or list(SCENARIOS)
    os.environ.update(AWS_ENV)
    failed: list[str] = []
    results = anyio.run(_run, names, args.quick, failed)
    args.out.mkdir(parents=True, exist_ok=True)
    command = ".venv/bin/python -m bench" + (" --quick" if args.quick else "")
    command += "".join(f" --scenario {name}" for name in args.scenario or [])
    date = datetime.date.today().isoformat()
    meta = {"command": command, "date": date, "cpus": os.cpu_count()}
    report.write_json({"meta": meta, **results}, args.out)
    table = report.markdown(results, command, date)
    (args.out / "latest.md").write_text(table + "\n")
    for path in report.plots(results, args.out):
        print(f"plot: {path}", file=sys.stderr)
    print(table)
    print(json.dumps(report.targets(results), indent=1), file=sys.stderr)
    if failed:  # the others' figures are written, but a scenario that did not run is an error
        print(f"python -m bench: failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
