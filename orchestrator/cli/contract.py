"""The producer's commands: ``validate`` and ``send`` change requests, write the ``schema``,
``policy check`` a sender policy."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio

from orchestrator import __version__, settings
from orchestrator.authorization import SenderPolicy, load_policy
from orchestrator.errors import ConfigurationError, RequestRejected
from orchestrator.messages import parse_change_request


def add_parsers(commands: Any) -> None:
    """The producer's commands: validate, send, schema, policy."""
    send_parser = commands.add_parser("send", help="validate change requests, then enqueue them")
    _request_arguments(send_parser)
    send_parser.add_argument("--queue-url", default=None, help="[env ORCHESTRATOR_QUEUE_URL]")
    send_parser.add_argument(
        "--dry-run",
        action="store_true",
        help="validate and print what would be sent (group and deduplication ids); send nothing",
    )

    validate_parser = commands.add_parser("validate", help="check change requests offline")
    _request_arguments(validate_parser)
    validate_parser.add_argument("--json", action="store_true", help="one JSON result per request")
    validate_parser.add_argument(
        "--sender", default=None, help="check against the sender policy as ID"
    )
    validate_parser.add_argument(
        "--sender-policy", default=None, help="policy file [env ORCHESTRATOR_SENDER_POLICY]"
    )

    schema_parser = commands.add_parser(
        "schema", help="write the JSON Schemas and AsyncAPI document"
    )
    schema_parser.add_argument("--out", default="schema", help="directory (default schema)")
    schema_parser.add_argument(
        "--check", action="store_true", help="exit 1 if the files differ from what is generated"
    )

    policy_parser = commands.add_parser("policy", help="sender policies")
    policy_commands = policy_parser.add_subparsers(dest="policy_command", required=True)
    check = policy_commands.add_parser("check", help="validate a sender policy file")
    check.add_argument("file")


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


def validate(args: argparse.Namespace) -> int:
    results = _check(args)
    return 1 if any(not verdict["ok"] for _, _, verdict in results) else 0


def send(args: argparse.Namespace) -> int:
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

    from orchestrator.propagation import environ_context

    token = otel_context.attach(environ_context())  # a CI job's TRACEPARENT, if it set one
    try:
        message_ids = anyio.run(send_bodies, queue_url, bodies)
    finally:
        otel_context.detach(token)
    for message_id, (_, _, verdict) in zip(message_ids, results, strict=True):
        print(f"{verdict['request_id']}: MessageId {message_id}")
    print(f"sent {len(message_ids)} change request(s) to {queue_url}")
    return 0


def write_schema(args: argparse.Namespace) -> int:
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


def check_policy(args: argparse.Namespace) -> int:
    policy = load_policy(args.file)
    for rule in policy.rules:
        print(
            f"{rule.name}: senders {', '.join(rule.senders)}; apps {', '.join(rule.apps)};"
            f" environments {', '.join(rule.environments)};"
            f" operations {', '.join(rule.operations)}"
        )
    print(f"{args.file}: ok ({len(policy.rules)} rule(s))")
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


#: Each command's function, by name.
COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "validate": validate,
    "send": send,
    "schema": write_schema,
    "policy": check_policy,
}
