"""The ``orchestrator`` command: run, send, validate, inspect, requests, init-ledger, demo,
emulator.

This is the edge: the only place that reads the environment and the command line. Everything
below it receives a Settings object or plain arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import anyio

from orchestrator import __version__, settings
from orchestrator.errors import RequestRejected
from orchestrator.messages import parse_change_request


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orchestrator",
        description="SQS-fed job-orchestration worker for the AWS Amplify Admin API.",
    )
    parser.add_argument("--version", action="version", version=f"orchestrator {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the worker")
    settings.add_arguments(run)

    send = commands.add_parser("send", help="validate change requests, then enqueue them")
    send.add_argument("file", help="a JSON object, a JSON array, or JSON lines; - for stdin")
    send.add_argument("--queue-url", default=None, help="[env ORCHESTRATOR_QUEUE_URL]")
    send.add_argument(
        "--allow-destructive", default=None, help="[env ORCHESTRATOR_ALLOW_DESTRUCTIVE]"
    )

    validate = commands.add_parser("validate", help="check change requests offline")
    validate.add_argument("file", help="a JSON object, a JSON array, or JSON lines; - for stdin")
    validate.add_argument(
        "--allow-destructive", default=None, help="[env ORCHESTRATOR_ALLOW_DESTRUCTIVE]"
    )

    demo = commands.add_parser("demo", help="run the worker against an embedded local stack")
    demo.add_argument("--requests", type=int, default=24, help="valid requests to send")
    demo.add_argument("--rate", type=float, default=8.0, help="emulator rate limit (calls/s)")

    inspect = commands.add_parser("inspect", help="one request's timeline from the ledger")
    inspect.add_argument("request_id")
    _ledger_arguments(inspect)

    requests = commands.add_parser("requests", help="recent requests in the ledger")
    requests.add_argument(
        "--status", default=None, help="IN_PROGRESS, SUCCEEDED or FAILED (default: all)"
    )
    requests.add_argument("--limit", type=int, default=50, help="newest first (default 50)")
    _ledger_arguments(requests)

    init_ledger = commands.add_parser("init-ledger", help="create the DynamoDB ledger table")
    _ledger_arguments(init_ledger)

    emulator = commands.add_parser("emulator", help="run the AmplifyBackend emulator")
    from orchestrator.emulator import cli as emulator_cli

    emulator_cli.add_arguments(emulator)
    return parser


def _ledger_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ledger",
        default=None,
        help="sqlite:///PATH or dynamodb://TABLE [env ORCHESTRATOR_LEDGER]",
    )
    parser.add_argument("--json", action="store_true", help="JSON lines instead of tables")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handler = {
        "run": _run,
        "send": _send,
        "validate": _validate,
        "demo": _demo,
        "emulator": _emulator,
        "inspect": _inspect,
        "requests": _requests,
        "init-ledger": _init_ledger,
    }[args.command]
    return handler(args)


def _run(args: argparse.Namespace) -> int:
    from orchestrator import logs
    from orchestrator.worker import Worker, run_until_signalled

    config = settings.load(args)
    logs.configure(config.log_level, log_format=config.log_format)
    anyio.run(run_until_signalled, Worker(config))
    return 0


def _allowed(args: argparse.Namespace) -> frozenset[str]:
    raw = args.allow_destructive or os.environ.get("ORCHESTRATOR_ALLOW_DESTRUCTIVE", "")
    return frozenset(part.strip() for part in raw.split(",") if part.strip())


def _documents(path: str) -> Iterator[tuple[str, str]]:
    """(label, body) for each change request in a file: object, array, or JSON lines."""
    text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    try:
        document: Any = json.loads(text)
    except ValueError:
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                yield f"line {number}", line
        return
    items = document if isinstance(document, list) else [document]
    for index, item in enumerate(items, 1):
        yield f"item {index}", json.dumps(item)


def _check(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    good, problems = [], []
    for label, body in _documents(args.file):
        try:
            request = parse_change_request(body, allow_destructive=_allowed(args))
        except RequestRejected as exc:
            problems.append(f"{label}: rejected ({exc.reason}): {exc}")
            continue
        good.append(body)
        print(f"{label}: ok: {request.request_id} ({len(request.steps)} step(s))")
    for problem in problems:
        print(problem, file=sys.stderr)
    return good, problems


def _validate(args: argparse.Namespace) -> int:
    _, problems = _check(args)
    return 1 if problems else 0


def _send(args: argparse.Namespace) -> int:
    from orchestrator.producer import send_bodies

    queue_url = args.queue_url or os.environ.get("ORCHESTRATOR_QUEUE_URL")
    if not queue_url:
        print("ORCHESTRATOR_QUEUE_URL (--queue-url) is required", file=sys.stderr)
        return 2
    good, problems = _check(args)
    if problems:
        print("nothing sent: fix the requests above first", file=sys.stderr)
        return 1
    sent = anyio.run(send_bodies, queue_url, good)
    print(f"sent {sent} change request(s) to {queue_url}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    try:
        from orchestrator.demo import run_demo
    except ImportError as exc:
        print(
            f"the demo needs moto's server: pip install 'orchestrator[demo]' ({exc})",
            file=sys.stderr,
        )
        return 2

    return run_demo(requests=args.requests, rate=args.rate)


def _ledger_url(args: argparse.Namespace) -> str:
    url = args.ledger or os.environ.get("ORCHESTRATOR_LEDGER")
    return str(url or settings.DEFAULT_LEDGER)


def _inspect(args: argparse.Namespace) -> int:
    from orchestrator import oncall

    url = _ledger_url(args)
    return anyio.run(
        lambda: oncall.inspect_request(url, args.request_id, sys.stdout, as_json=args.json)
    )


def _requests(args: argparse.Namespace) -> int:
    from orchestrator import oncall

    url = _ledger_url(args)
    return anyio.run(
        lambda: oncall.list_requests(url, args.status, args.limit, sys.stdout, as_json=args.json)
    )


def _init_ledger(args: argparse.Namespace) -> int:
    from orchestrator import oncall

    return anyio.run(oncall.init_ledger, _ledger_url(args), sys.stdout)


def _emulator(args: argparse.Namespace) -> int:
    from orchestrator.emulator import cli as emulator_cli

    return emulator_cli.run(args)


if __name__ == "__main__":
    raise SystemExit(main())
