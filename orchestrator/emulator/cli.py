"""Command line: one flag per knob, for ``orchestrator emulator`` and ``python -m``.

``add_arguments`` only declares flags (the main CLI mounts them on its ``emulator``
sub-command); ``config_from_args`` turns parsed flags into an :class:`EmulatorConfig`, and
``run`` serves until SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import sys

from orchestrator.emulator.config import (
    CONFLICT_MODES,
    DURATION_DISTRIBUTIONS,
    TIMESTAMP_FORMATS,
    EmulatorConfig,
)
from orchestrator.emulator.listing import LIST_ORDERS
from orchestrator.emulator.runner import serve

_DEFAULTS = EmulatorConfig()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    net = parser.add_argument_group("listening")
    net.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    net.add_argument("--port", type=int, default=4580, help="port (default 4580; 0 = any)")
    limits = parser.add_argument_group("rate limits (token buckets)")
    limits.add_argument("--rate", type=float, help="global requests/s (default unlimited)")
    limits.add_argument("--burst", type=int, default=_DEFAULTS.burst)
    limits.add_argument("--per-app-rate", type=float, help="requests/s per AppId")
    limits.add_argument("--per-app-burst", type=int, default=_DEFAULTS.per_app_burst)
    jobs = parser.add_argument_group("jobs")
    jobs.add_argument("--job-duration", nargs=2, type=float, metavar=("MIN", "MAX"))
    jobs.add_argument("--job-duration-min", type=float)
    jobs.add_argument("--job-duration-max", type=float)
    jobs.add_argument(
        "--job-duration-dist",
        choices=sorted(DURATION_DISTRIBUTIONS),
        default=_DEFAULTS.job_duration_dist,
    )
    jobs.add_argument("--fail-ratio", type=float, default=0.0, help="share of jobs that FAIL")
    jobs.add_argument("--fail-pattern", help="regex: a job FAILs if any string param matches")
    jobs.add_argument(
        "--visibility-delay",
        type=float,
        default=0.0,
        help="seconds a new job stays invisible to Get/ListBackendJobs",
    )
    jobs.add_argument(
        "--conflict-mode", choices=sorted(CONFLICT_MODES), default=_DEFAULTS.conflict_mode
    )
    jobs.add_argument(
        "--page-size",
        type=int,
        default=_DEFAULTS.list_page_size,
        help="default ListBackendJobs page size",
    )
    jobs.add_argument(
        "--list-order",
        choices=LIST_ORDERS,
        default=_DEFAULTS.list_order,
        help="ListBackendJobs order (default newest first)",
    )
    jobs.add_argument(
        "--timestamp-format",
        choices=TIMESTAMP_FORMATS,
        default=_DEFAULTS.timestamp_format,
        help="how job CreateTime/UpdateTime are written (default iso)",
    )
    jobs.add_argument(
        "--history",
        type=int,
        default=_DEFAULTS.history,
        metavar="N",
        help="finished jobs each seeded or auto-created environment already has",
    )
    faults = parser.add_argument_group("faults (probabilities per API call)")
    faults.add_argument("--fault-504", type=float, default=0.0, help="504 before any effect")
    faults.add_argument("--fault-500", type=float, default=0.0, help="500 after the effect")
    faults.add_argument("--fault-reset", type=float, default=0.0, help="connection reset")
    faults.add_argument(
        "--fault-reset-after",
        type=float,
        default=0.0,
        help="connection reset after the effect",
    )
    faults.add_argument(
        "--fault-403",
        type=float,
        default=0.0,
        help="AccessDeniedException 403 before any effect (IAM denies the call)",
    )
    faults.add_argument("--fault-operations", help="comma-separated operations faults hit")
    faults.add_argument("--latency", type=float, default=0.0, help="seconds added to each call")
    faults.add_argument("--latency-spike-ratio", type=float, default=0.0)
    faults.add_argument("--latency-spike", type=float, default=0.0, help="spike seconds")
    world = parser.add_argument_group("state and protocol")
    world.add_argument(
        "--app",
        action="append",
        default=[],
        metavar="APP_ID:ENV1,ENV2",
        help="pre-seed an app and its environments (repeatable)",
    )
    world.add_argument(
        "--auto-create",
        action="store_true",
        help="create unknown apps/environments on first mutation",
    )
    world.add_argument(
        "--no-require-signature",
        dest="require_signature",
        action="store_false",
        help="accept unsigned requests",
    )
    world.add_argument("--seed", type=int, help="RNG seed (reproducible faults and ids)")


def _apps(specs: list[str]) -> dict[str, list[str]]:
    apps: dict[str, list[str]] = {}
    for spec in specs:
        app_id, _, envs = spec.partition(":")
        if not app_id:
            raise ValueError(f"--app {spec!r}: expected APP_ID:env1,env2")
        apps.setdefault(app_id, []).extend(e for e in envs.split(",") if e)
    return apps


def _duration(args: argparse.Namespace) -> tuple[float, float]:
    low, high = args.job_duration or _DEFAULTS.job_duration
    if args.job_duration_min is not None:
        low = args.job_duration_min
    if args.job_duration_max is not None:
        high = args.job_duration_max
    elif high < low:  # only a minimum above the default maximum: a fixed duration
        high = low
    return (low, high)


def config_from_args(args: argparse.Namespace) -> EmulatorConfig:
    """The configuration the flags describe (ValueError when inconsistent)."""
    ops = args.fault_operations
    return EmulatorConfig(
        rate=args.rate,
        burst=args.burst,
        per_app_rate=args.per_app_rate,
        per_app_burst=args.per_app_burst,
        job_duration=_duration(args),
        job_duration_dist=args.job_duration_dist,
        fail_ratio=args.fail_ratio,
        fail_pattern=args.fail_pattern,
        fault_504_ratio=args.fault_504,
        fault_500_ratio=args.fault_500,
        fault_reset_ratio=args.fault_reset,
        fault_reset_after_ratio=args.fault_reset_after,
        fault_403_ratio=args.fault_403,
        latency=args.latency,
        latency_spike_ratio=args.latency_spike_ratio,
        latency_spike=args.latency_spike,
        fault_operations=frozenset(o.strip() for o in ops.split(",") if o.strip()) if ops else None,
        visibility_delay=args.visibility_delay,
        conflict_mode=args.conflict_mode,
        list_page_size=args.page_size,
        list_order=args.list_order,
        timestamp_format=args.timestamp_format,
        history=args.history,
        apps=_apps(args.app),
        auto_create=args.auto_create,
        require_signature=args.require_signature,
        seed=args.seed,
    )


def run(args: argparse.Namespace) -> int:
    try:
        config = config_from_args(args)
    except ValueError as exc:
        print(f"emulator: {exc}", file=sys.stderr)
        return 2
    return serve(config, args.host, args.port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m orchestrator.emulator",
        description="AmplifyBackend emulator: rest-json over HTTP for boto3/aiobotocore.",
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))
