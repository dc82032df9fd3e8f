"""The ``orchestrator`` command: run, send, validate, schema, policy, inspect, requests,
init-ledger, dlq, demo, emulator.

This is the edge: the only place that reads the environment and the command line. Everything
below it receives a Settings object or plain arguments.

Errors that need no traceback end the command with one line on stderr,
``orchestrator: error: ...``: a :class:`ConfigurationError` anywhere (even inside nested
exception groups from task groups) exits 2; an error of the orchestrator's tree or of botocore
(SQS unreachable, a queue that does not exist) exits 2 from ``run`` (it could not start) and 1
from the on-call commands.
"""

from __future__ import annotations

import argparse
import functools
import getpass
import json
import math
import sys
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import anyio
from botocore.exceptions import BotoCoreError, ClientError

from orchestrator import __version__, dlq, oncall, settings
from orchestrator.authorization import SenderPolicy, load_policy
from orchestrator.errors import ConfigurationError, OrchestratorError, RequestRejected
from orchestrator.messages import parse_change_request

#: Errors reported on one line (no traceback) when every error raised is one of them.
_EXPECTED = (OrchestratorError, BotoCoreError, ClientError)


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
    _request_arguments(send)
    send.add_argument("--queue-url", default=None, help="[env ORCHESTRATOR_QUEUE_URL]")
    send.add_argument(
        "--dry-run",
        action="store_true",
        help="validate and print what would be sent (group and deduplication ids); send nothing",
    )

    validate = commands.add_parser("validate", help="check change requests offline")
    _request_arguments(validate)
    validate.add_argument("--json", action="store_true", help="one JSON result per request")
    validate.add_argument("--sender", default=None, help="check against the sender policy as ID")
    validate.add_argument(
        "--sender-policy", default=None, help="policy file [env ORCHESTRATOR_SENDER_POLICY]"
    )

    schema = commands.add_parser("schema", help="write the JSON Schemas and AsyncAPI document")
    schema.add_argument("--out", default="schema", help="directory (default schema)")
    schema.add_argument(
        "--check", action="store_true", help="exit 1 if the files differ from what is generated"
    )

    policy = commands.add_parser("policy", help="sender policies")
    policy_commands = policy.add_subparsers(dest="policy_command", required=True)
    check = policy_commands.add_parser("check", help="validate a sender policy file")
    check.add_argument("file")

    demo = commands.add_parser("demo", help="run the worker against an embedded local stack")
    demo.add_argument("--requests", type=int, default=24, help="valid requests to send")
    demo.add_argument("--rate", type=float, default=8.0, help="emulator rate limit (calls/s)")

    inspect = commands.add_parser("inspect", help="one request's timeline from the ledger")
    inspect.add_argument("request_id")
    _ledger_arguments(inspect)

    requests = commands.add_parser("requests", help="recent requests in the ledger")
    requests.add_argument(
        "--status",
        default=None,
        type=str.upper,
        choices=oncall.STATUSES,
        help=f"{', '.join(oncall.STATUSES)} (default: all)",
    )
    requests.add_argument("--limit", type=int, default=50, help="newest first (default 50)")
    _ledger_arguments(requests)

    init_ledger = commands.add_parser("init-ledger", help="create the DynamoDB ledger table")
    _ledger_arguments(init_ledger)

    _dlq_parser(commands)

    emulator = commands.add_parser("emulator", help="run the AmplifyBackend emulator")
    from orchestrator.emulator import cli as emulator_cli

    emulator_cli.add_arguments(emulator)
    return parser


def _request_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="a JSON object, a JSON array, or JSON lines; - for stdin")
    parser.add_argument(
        "--allow-destructive", default=None, help="[env ORCHESTRATOR_ALLOW_DESTRUCTIVE]"
    )
    parser.add_argument(
        "--deprecated",
        default=None,
        choices=("warn", "reject"),
        help="deprecated members: warn or reject (default warn) [env ORCHESTRATOR_DEPRECATED]",
    )


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
        "dlq": _dlq,
        "schema": _schema,
        "policy": _policy,
    }[args.command]
    try:
        return handler(args)
    except BaseException as exc:
        fatal = fatal_error(exc, args.command)
        if fatal is None:
            raise
        message, code = fatal
        print(f"orchestrator: error: {message}", file=sys.stderr)
        return code


def fatal_error(exc: BaseException, command: str) -> tuple[str, int] | None:
    """The line to print and the exit status for an error that needs no traceback, or None."""
    leaves = list(_leaves(exc))
    for leaf in leaves:
        if isinstance(leaf, ConfigurationError):
            return _one_line(leaf), 2
    if leaves and all(isinstance(leaf, _EXPECTED) for leaf in leaves):
        return _one_line(leaves[0]), 2 if command == "run" else 1
    return None


def _leaves(exc: BaseException) -> Iterator[BaseException]:
    """The exceptions inside (nested) exception groups."""
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from _leaves(inner)
    else:
        yield exc


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _run(args: argparse.Namespace) -> int:
    from orchestrator import logs
    from orchestrator.worker import Worker, run_until_signalled

    config = settings.load(args)
    try:
        logs.configure(config.log_level, log_format=config.log_format)
    except ValueError as exc:
        raise ConfigurationError(f"invalid ORCHESTRATOR_LOG_FORMAT: {exc}") from None
    from orchestrator.tracing import from_environ

    anyio.run(run_until_signalled, Worker(config, tracing=from_environ()))
    return 0


def _allowed(args: argparse.Namespace) -> frozenset[str]:
    allowed: frozenset[str] = settings.value("allow_destructive", args)
    return allowed


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


def _senders(args: argparse.Namespace) -> SenderPolicy | None:
    path = settings.value("sender_policy", args)
    if getattr(args, "sender", None) is None:
        return None
    if not path:
        raise ConfigurationError("--sender needs --sender-policy (or ORCHESTRATOR_SENDER_POLICY)")
    return load_policy(path)


def _verdict(body: str, args: argparse.Namespace, senders: SenderPolicy | None) -> dict[str, Any]:
    """One request's validation result (the shape ``validate --json`` prints)."""
    deprecated = settings.value("deprecated", args)
    try:
        request = parse_change_request(
            body, allow_destructive=_allowed(args), reject_deprecated=deprecated == "reject"
        )
        if senders is not None:
            decision = senders.decide(args.sender, request)
            if not decision.allowed:
                raise RequestRejected("sender_not_allowed", decision.why, request.request_id)
    except RequestRejected as exc:
        return {
            "ok": False,
            "request_id": exc.request_id,
            "reason": exc.reason,
            "error": str(exc),
            "warnings": [],
        }
    return {
        "ok": True,
        "request_id": request.request_id,
        "steps": len(request.steps),
        "reason": None,
        "error": None,
        "warnings": request.warnings(),
    }


def _check(args: argparse.Namespace) -> list[tuple[str, str, dict[str, Any]]]:
    """(label, body, verdict) per request; printed as text or, with --json, JSON lines."""
    senders = _senders(args)
    results = [
        (label, body, _verdict(body, args, senders)) for label, body in _documents(args.file)
    ]
    for label, _, verdict in results:
        if getattr(args, "json", False):
            print(json.dumps({"item": label, **verdict}, sort_keys=True))
        else:
            _print_verdict(label, verdict)
    return results


def _print_verdict(label: str, verdict: dict[str, Any]) -> None:
    if verdict["ok"]:
        print(f"{label}: ok: {verdict['request_id']} ({verdict['steps']} step(s))")
    else:
        print(f"{label}: rejected ({verdict['reason']}): {verdict['error']}", file=sys.stderr)
    for warning in verdict["warnings"]:
        print(f"{label}: warning: {warning['message']}", file=sys.stderr)


def _validate(args: argparse.Namespace) -> int:
    results = _check(args)
    return 1 if any(not verdict["ok"] for _, _, verdict in results) else 0


def _send(args: argparse.Namespace) -> int:
    from orchestrator.producer import message_attributes, send_bodies

    queue_url = settings.value("queue_url", args)
    if not queue_url:
        raise ConfigurationError("ORCHESTRATOR_QUEUE_URL (--queue-url) is required")
    results = _check(args)
    if any(not verdict["ok"] for _, _, verdict in results):
        print("nothing sent: fix the requests above first", file=sys.stderr)
        return 1
    bodies = [body for _, body, _ in results]
    if args.dry_run:
        for body, (_, _, verdict) in zip(bodies, results, strict=True):
            ids = " ".join(f"{k}={v}" for k, v in message_attributes(queue_url, body).items())
            print(f"would send {verdict['request_id']} to {queue_url} {ids}")
        return 0
    from opentelemetry import context as otel_context

    from orchestrator.tracing import environ_context

    token = otel_context.attach(environ_context())  # a CI job's TRACEPARENT, if it set one
    try:
        message_ids = anyio.run(send_bodies, queue_url, bodies)
    finally:
        otel_context.detach(token)
    for message_id, (_, _, verdict) in zip(message_ids, results, strict=True):
        print(f"{verdict['request_id']}: MessageId {message_id}")
    print(f"sent {len(message_ids)} change request(s) to {queue_url}")
    return 0


def _schema(args: argparse.Namespace) -> int:
    from orchestrator import schema

    out = Path(args.out)
    stale = []
    for name, text in schema.documents(__version__).items():
        path = out / name
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path))
            continue
        out.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path}")
    for name in stale:
        print(
            f"{name} differs from what this botocore generates: run orchestrator schema",
            file=sys.stderr,
        )
    return 1 if stale else 0


def _policy(args: argparse.Namespace) -> int:
    policy = load_policy(args.file)
    for rule in policy.rules:
        print(
            f"{rule.name}: senders {', '.join(rule.senders)}; apps {', '.join(rule.apps)};"
            f" environments {', '.join(rule.environments)};"
            f" operations {', '.join(rule.operations)}"
        )
    print(f"{args.file}: ok ({len(policy.rules)} rule(s))")
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
    return str(settings.value("ledger", args))


def _inspect(args: argparse.Namespace) -> int:
    url = _ledger_url(args)
    return anyio.run(
        lambda: oncall.inspect_request(url, args.request_id, sys.stdout, as_json=args.json)
    )


def _requests(args: argparse.Namespace) -> int:
    url = _ledger_url(args)
    return anyio.run(
        lambda: oncall.list_requests(url, args.status, args.limit, sys.stdout, as_json=args.json)
    )


def _init_ledger(args: argparse.Namespace) -> int:
    return anyio.run(oncall.init_ledger, _ledger_url(args), sys.stdout)


def _dlq(args: argparse.Namespace) -> int:
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


def _emulator(args: argparse.Namespace) -> int:
    from orchestrator.emulator import cli as emulator_cli

    return emulator_cli.run(args)


if __name__ == "__main__":
    raise SystemExit(main())
