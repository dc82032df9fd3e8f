"""``make chaos`` (``python -m bench.chaos``): every chaos scenario at full size.

The scenarios and their invariants are :mod:`orchestrator.testing.chaos` and
:mod:`orchestrator.testing.invariants` (tests/test_chaos.py runs them small inside
``make test``). This runs them against moto's server (in its own process) and the
AmplifyBackend emulator on loopback, with real ``orchestrator run`` processes, prints a table
and writes it to ``bench/results/chaos.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path

import anyio

from orchestrator.testing.chaos import (
    APPS,
    ENVIRONMENTS,
    FORMATS,
    ORDERS,
    VARIANTS,
    api_faults,
    competing_replicas,
    exactly_once,
    kill_restart,
    sigterm_under_load,
    sqs_outage,
)
from orchestrator.testing.invariants import Report, Stack

# --- make chaos -----------------------------------------------------------------------------


#: The groups of scenarios `make chaos` runs, in order (``--only`` picks some).
GROUPS = ("variants", "kill", "faults", "outage", "sigterm", "replicas")


async def run_all(
    stack: Stack,
    ledger_url: str,
    *,
    scale: float,
    variants: Iterable[tuple[str, str]],
    only: Iterable[str] = GROUPS,
) -> list[Report]:
    size = max(20, int(300 * scale))
    groups = set(only)
    reports = []
    for variant in variants if "variants" in groups else ():
        reports.append(
            await exactly_once(stack, variant, requests=size, kills=max(3, int(5 * scale)))
        )
        stack.emulator.configure(list_order="newest", timestamp_format="iso", history=0)
        stack.emulator.reset()
    stack.emulator.configure(conflict_mode="reject", visibility_delay=0.0)
    if "kill" in groups:
        reports.append(await kill_restart(stack, requests=size, kills=max(5, int(8 * scale))))
        stack.emulator.reset()
    if "faults" in groups:
        reports.append(await api_faults(stack, requests=max(20, int(200 * scale))))
        stack.emulator.reset()
    if "outage" in groups:
        reports.append(await sqs_outage(stack, requests=size // 2, outage=max(3.0, 20 * scale)))
        stack.emulator.reset()
    if "sigterm" in groups:
        reports.append(await sigterm_under_load(stack, requests=size))
    for fifo in (False, True) if "replicas" in groups else ():
        stack.emulator.reset()
        reports.append(
            await competing_replicas(stack, ledger_url, requests=size // 2, replicas=3, fifo=fifo)
        )
    return reports


def print_table(reports: list[Report]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="make chaos")
    for column in ("scenario", "requests", "injected", "outcomes", "lost", "inconsistent",
                   "duplicates", "overlaps", "wrong job", "left", "seconds", "result"):  # fmt: skip
        table.add_column(column)
    for r in reports:
        table.add_row(
            r.scenario, str(r.requests), r.injected,
            ", ".join(f"{k} {v}" for k, v in sorted(r.outcomes.items())),
            str(r.lost), str(r.inconsistent), str(r.duplicates), str(r.overlaps),
            str(r.wrong_job), str(r.left_on_queue), f"{r.seconds:.0f}", "ok" if r.ok else "FAILED",
        )  # fmt: skip
    console = Console(width=200)
    console.print(table)
    for r in reports:
        for note in r.notes:
            console.print(f"  {r.scenario}: {note}", markup=False)


async def _main(
    scale: float, workdir: Path, variants: list[tuple[str, str]], only: Iterable[str]
) -> list[Report]:
    from aiobotocore.session import get_session

    from bench.harness.processes import MotoProcess
    from orchestrator.emulator import EmulatorConfig, EmulatorThread
    from orchestrator.ledger.table import create_table

    os.environ.update(
        AWS_ACCESS_KEY_ID="chaos", AWS_SECRET_ACCESS_KEY="chaos", AWS_DEFAULT_REGION="us-east-1",
        AWS_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true",
    )  # fmt: skip
    # moto in its own process, with keep-alive (bench.moto_server): in this process, sharing
    # the GIL with the emulator and the producers, it failed under the replica scenarios.
    server = MotoProcess()
    endpoint = server.url
    os.environ["AWS_ENDPOINT_URL_SQS"] = os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = endpoint
    config = EmulatorConfig(
        apps={app: ENVIRONMENTS for app in APPS}, job_duration=(0.2, 1.0), seed=11
    )
    try:
        with EmulatorThread(config) as emulator:
            async with get_session().create_client("dynamodb") as dynamodb:
                await create_table(dynamodb, "chaos-ledger")
            async with get_session().create_client("sqs") as sqs:
                stack = Stack(sqs, endpoint, emulator, workdir)
                reports = await run_all(
                    stack, "dynamodb://chaos-ledger", scale=scale, variants=variants, only=only
                )
    finally:
        server.close()
    return reports


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.chaos", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--scale", type=float, default=1.0, help="1 = full size (300 requests, 20 s outage)"
    )
    parser.add_argument(
        "--variant",
        action="append",
        metavar="ORDER:FORMAT",
        help="service variants of the exactly-once scenario (default: all "
        f"{len(VARIANTS)}: {', '.join(ORDERS)} × {', '.join(FORMATS)})",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=GROUPS,
        help="run only these groups of scenarios (repeatable; default: all)",
    )
    parser.add_argument("--out", type=Path, default=Path("bench/results/chaos.json"))
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "orchestrator-chaos"
    )
    args = parser.parse_args(argv)
    shutil.rmtree(args.workdir, ignore_errors=True)
    args.workdir.mkdir(parents=True)
    print(f"worker logs and ledgers in {args.workdir}")
    variants = [_variant(text) for text in args.variant] if args.variant else list(VARIANTS)
    reports = anyio.run(_main, args.scale, args.workdir, variants, args.only or GROUPS)
    print_table(reports)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps([asdict(r) | {"ok": r.ok} for r in reports], indent=2) + "\n")
    print(f"written to {args.out}")
    return 0 if all(r.ok for r in reports) else 1


def _variant(text: str) -> tuple[str, str]:
    order, _, time_format = text.partition(":")
    if (order, time_format) not in VARIANTS:
        raise SystemExit(f"unknown variant {text!r} (ORDER:FORMAT, e.g. oldest:epoch_s)")
    return order, time_format


if __name__ == "__main__":
    raise SystemExit(main())
