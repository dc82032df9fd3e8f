"""structlog configuration: JSON lines off a TTY, console rendering on one.

Every line carries ``timestamp``, ``level``, ``logger`` and ``event``, plus whatever the task
bound through contextvars (``request_id``, ``operation``, ``app_id``, ``environment``,
``job_id``). Field names are documented in docs/logging.md.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog


def configure(
    level: str = "INFO",
    stream: TextIO | None = None,
    json: bool | None = None,
    *,
    cache: bool = True,
) -> None:
    """Configure structlog once, at the edge (``cache=False`` lets tests reconfigure it)."""
    stream = stream or sys.stderr
    use_json = (not stream.isatty()) if json is None else json
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
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
