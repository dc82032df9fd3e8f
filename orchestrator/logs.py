"""structlog configuration: JSON lines off a TTY, console rendering on one.

Every line carries ``timestamp``, ``level``, ``logger`` and ``event``, plus whatever the task
bound through contextvars (``request_id``, ``operation``, ``app_id``, ``environment``,
``job_id``), and ``trace_id``/``span_id`` while a span is current (tracing on: docs/tracing.md).
Field names are documented in docs/logging.md.

Also here: the per-request tally of AmplifyBackend call results that the canonical
``request_finished`` line reports (``api_calls``, ``throttles``).
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections import Counter
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any, TextIO

import anyio
import structlog
from opentelemetry import trace

FORMATS = ("auto", "json", "console")


class ModuleLogger:
    """A module's logger, naming it in the ``logger`` field: ``log = logs.get_logger(name)``.

    Modules create their logger at import time, before :func:`configure` runs at the edge; a
    structlog logger bound then (``get_logger().bind(...)``) keeps the configuration of that
    moment, structlog's defaults: console lines on stdout, nothing filtered by level. This one
    assembles a bound logger from the configuration of the moment on every call (~5 µs).
    """

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, method: str) -> Any:
        return getattr(structlog.get_logger().bind(logger=self._name), method)


def get_logger(name: str) -> ModuleLogger:
    return ModuleLogger(name)


def configure(
    level: str = "INFO",
    stream: TextIO | None = None,
    json: bool | None = None,
    *,
    cache: bool = True,
    log_format: str = "auto",
) -> None:
    """Configure structlog once, at the edge (``cache=False`` lets tests reconfigure it).

    ``log_format``: ``json``, ``console``, or ``auto`` (JSON unless the stream is a terminal);
    ``json`` (a bool) overrides it.
    """
    if log_format not in FORMATS:
        raise ValueError(f"log format {log_format!r} is not one of {', '.join(FORMATS)}")
    stream = stream or sys.stderr
    if json is None and log_format != "auto":
        json = log_format == "json"
    use_json = (not stream.isatty()) if json is None else json
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            add_trace_ids,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
        ),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=cache,
    )


def add_trace_ids(_: Any, __: str, event: structlog.types.EventDict) -> structlog.types.EventDict:
    """``trace_id`` and ``span_id`` (hex) of the span current where the line is logged, when
    there is a valid one: the path from a log line to its trace. Off, one context lookup."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event["trace_id"] = format(context.trace_id, "032x")
        event["span_id"] = format(context.span_id, "016x")
    return event


# The tally of the task that is running a request, and that task's id: tasks spawned from it
# (a tracker sweep started by its first job) inherit the variable but must not count into it.
_calls: ContextVar[tuple[Counter[str], int] | None] = ContextVar("orchestrator_calls", default=None)


@contextlib.contextmanager
def counting_calls() -> Iterator[Counter[str]]:
    """Tally AmplifyBackend call results (``ok``, ``throttled``, ...) made by this task."""
    calls: Counter[str] = Counter()
    token = _calls.set((calls, anyio.get_current_task().id))
    try:
        yield calls
    finally:
        _calls.reset(token)


def count_call(result: str) -> None:
    """Count one call result into the current request's tally, if there is one."""
    current = _calls.get()
    if current is not None and current[1] == anyio.get_current_task().id:
        current[0][result] += 1
