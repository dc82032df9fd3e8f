"""The on-call commands: ``inspect`` a request and list ``requests`` from the ledger,
``init-ledger``, and ``dlq`` (ls, show, redrive, purge)."""

from __future__ import annotations

import argparse
import functools
import getpass
import math
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from orchestrator import dlq, oncall, settings


def add_parsers(commands: Any) -> None:
    """The on-call commands: inspect, requests, init-ledger, dlq."""
    inspect_parser = commands.add_parser("inspect", help="one request's timeline from the ledger")
    inspect_parser.add_argument("request_id")
    _ledger_arguments(inspect_parser)

    requests_parser = commands.add_parser("requests", help="recent requests in the ledger")
    requests_parser.add_argument(
        "--status",
        default=None,
        type=str.upper,
        choices=oncall.STATUSES,
        help=f"{', '.join(oncall.STATUSES)} (default: all)",
    )
    requests_parser.add_argument("--limit", type=int, default=50, help="newest first (default 50)")
    _ledger_arguments(requests_parser)

    init_parser = commands.add_parser("init-ledger", help="create the DynamoDB ledger table")
    _ledger_arguments(init_parser)

    _dlq_parser(commands)


def _ledger_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ledger",
        default=None,
        help="sqlite:///PATH or dynamodb://TABLE [env ORCHESTRATOR_LEDGER]",
    )
    parser.add_argument("--json", action="store_true", help="JSON lines instead of tables")


def _dlq_parser(commands: Any) -> None:
    parser = commands.add_parser("dlq", help="the dead-letter queue: ls, show, redrive, purge")
    actions = parser.add_subparsers(dest="dlq_command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--dlq-url",
        default=None,
        help="the DLQ (default: the --queue-url's RedrivePolicy) [env ORCHESTRATOR_DLQ_URL]",
    )
    common.add_argument(
        "--queue-url",
        default=None,
        help="the change queue: its RedrivePolicy names the DLQ, and redrive sends back to it "
        "[env ORCHESTRATOR_QUEUE_URL]",
    )
    common.add_argument(
        "--operator", default=None, help="who runs this, for the audit line [env USER]"
    )
    ls = actions.add_parser(
        "ls", parents=[common], help="counts, the oldest message, counts by reason"
    )
    ls.add_argument(
        "--sample", type=_positive, default=100, help="messages read for the counts (default 100)"
    )
    show = actions.add_parser("show", parents=[common], help="messages and their attributes")
    show.add_argument("--limit", type=_positive, default=10, help="messages (default 10)")
    show.add_argument("--json", action="store_true", help="one JSON object per line")
    _redrive_parser(actions, common)
    purge = actions.add_parser("purge", parents=[common], help="delete old messages, or all")
    which = purge.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--older-than", type=_duration, help="delete only messages older than this (e.g. 7d)"
    )
    which.add_argument(
        "--all", dest="everything", action="store_true", help="every message (PurgeQueue)"
    )
    purge.add_argument("--yes", action="store_true", help="confirm --all")
    purge.add_argument("--dry-run", action="store_true", help="count, delete nothing")


def _redrive_parser(actions: Any, common: argparse.ArgumentParser) -> None:
    redrive = actions.add_parser(
        "redrive", parents=[common], help="move messages back to the change queue"
    )
    redrive.add_argument("--to", default=None, help="another target queue URL")
    redrive.add_argument("--dry-run", action="store_true", help="list what would move")
    redrive.add_argument(
        "--reason",
        action="append",
        default=[],
        help="only this reason attribute (repeatable; none = moved by SQS itself)",
    )
    redrive.add_argument(
        "--request-id", action="append", default=[], help="only this request (repeatable)"
    )
    redrive.add_argument("--older-than", type=_duration, help="only messages older (e.g. 2h)")
    redrive.add_argument("--newer-than", type=_duration, help="only messages younger (e.g. 30m)")
    redrive.add_argument("--rate", type=_positive_float, help="messages per second at most")
    redrive.add_argument("--limit", type=_positive, help="messages at most")


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return int(text)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number")
    return value


def _duration(text: str) -> float:
    try:
        return dlq.parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _ledger_url(args: argparse.Namespace) -> str:
    return str(settings.value("ledger", args))


def inspect(args: argparse.Namespace) -> int:
    url = _ledger_url(args)
    return anyio.run(
        lambda: oncall.inspect_request(url, args.request_id, sys.stdout, as_json=args.json)
    )


def requests(args: argparse.Namespace) -> int:
    url = _ledger_url(args)
    return anyio.run(
        lambda: oncall.list_requests(url, args.status, args.limit, sys.stdout, as_json=args.json)
    )


def init_ledger(args: argparse.Namespace) -> int:
    return anyio.run(oncall.init_ledger, _ledger_url(args), sys.stdout)


def dead_letters(args: argparse.Namespace) -> int:
    from orchestrator import logs

    logs.configure("INFO")  # the audit line, on stderr
    urls = dlq.QueueUrls(settings.value("dlq_url", args), settings.value("queue_url", args))
    ctx = dlq.Context(operator=args.operator or _login())
    return anyio.run(_dlq_command(args, urls, ctx))


def _login() -> str:
    """Who runs an on-call command (the audit line's ``operator``)."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry (a bare container)
        return "unknown"


def _dlq_command(
    args: argparse.Namespace, urls: dlq.QueueUrls, ctx: dlq.Context
) -> Callable[[], Awaitable[int]]:
    out = sys.stdout
    if args.dlq_command == "ls":
        return functools.partial(dlq.ls_command, urls, ctx, out, sample=args.sample)
    if args.dlq_command == "show":
        return functools.partial(
            dlq.show_command, urls, ctx, out, limit=args.limit, as_json=args.json
        )
    if args.dlq_command == "purge":
        return functools.partial(
            dlq.purge_command,
            urls,
            ctx,
            out,
            older_than=args.older_than,
            everything=args.everything,
            yes=args.yes,
            dry_run=args.dry_run,
        )
    filters = dlq.Filters(
        frozenset(args.reason), frozenset(args.request_id), args.older_than, args.newer_than
    )
    return functools.partial(
        dlq.redrive_command,
        urls,
        ctx,
        out,
        to=args.to,
        filters=filters,
        dry_run=args.dry_run,
        rate=args.rate,
        limit=args.limit,
    )


#: Each command's function, by name.
COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "inspect": inspect,
    "requests": requests,
    "init-ledger": init_ledger,
    "dlq": dead_letters,
}
