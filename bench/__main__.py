"""`make bench`: run the benchmark scenarios against the emulator, write bench/results/.

.venv/bin/python -m bench [--quick] [--scenario goodput|fairness|tracking] [--out bench/results]
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
from pathlib import Path
from typing import Any

import anyio

from bench import report
from bench.scenarios import fairness, goodput, tracking

SCENARIOS = {"goodput": goodput.run, "fairness": fairness.run, "tracking": tracking.run}


async def _run(names: list[str], quick: bool) -> dict[str, Any]:
    from orchestrator import logs
    from orchestrator.emulator import EmulatorConfig, EmulatorThread

    logs.configure("WARNING")

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    results: dict[str, Any] = {}
    config = EmulatorConfig(apps={"bench": ["dev"]}, job_duration=(0.05, 0.2), seed=3)
    with EmulatorThread(config) as emulator:
        for name in names:
            print(f"running {name} ...", file=sys.stderr)
            results[name] = await SCENARIOS[name](emulator, quick)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (~1-2 min)")
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), action="append")
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args(argv)
    names = args.scenario or list(SCENARIOS)
    results = anyio.run(_run, names, args.quick)
    args.out.mkdir(parents=True, exist_ok=True)
    report.write_json(results, args.out)
    command = "make bench" + (" (--quick)" if args.quick else "")
    table = report.markdown(results, command, datetime.date.today().isoformat())
    (args.out / "latest.md").write_text(table + "\n")
    for path in report.plots(results, args.out):
        print(f"plot: {path}", file=sys.stderr)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
