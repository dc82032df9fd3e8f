"""The ``orchestrator`` command: run, demo, emulator; the producer's commands (validate,
send, schema, policy: :mod:`orchestrator.cli.contract`); the on-call commands (inspect,
requests, init-ledger, dlq: :mod:`orchestrator.cli.oncall`).

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
import sys
from collections.abc import Callable, Iterator, Sequence

import anyio
from botocore.exceptions import BotoCoreError, ClientError

from orchestrator import __version__, settings
from orchestrator.cli import contract, oncall
from orchestrator.errors import ConfigurationError, OrchestratorError

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
    contract.add_parsers(commands)

    demo = commands.add_parser("demo", help="run the worker against an embedded local stack")
    demo.add_argument("--requests", type=int, default=24, help="valid requests to send")
    demo.add_argument("--rate", type=float, default=8.0, help="emulator rate limit (calls/s)")

    oncall.add_parsers(commands)

    emulator = commands.add_parser("emulator", help="run the AmplifyBackend emulator")
    from orchestrator.emulator import cli as emulator_cli

    emulator_cli.add_arguments(emulator)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    commands: dict[str, Callable[[argparse.Namespace], int]] = {
        "run": _run,
        "demo": _demo,
        "emulator": _emulator,
        **contract.COMMANDS,
        **oncall.COMMANDS,
    }
    try:
        return commands[args.command](args)
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


def _emulator(args: argparse.Namespace) -> int:
    from orchestrator.emulator import cli as emulator_cli

    return emulator_cli.run(args)
