"""Worker settings: one immutable object, built once at the edge (the CLI) and passed in.

Settings imports no component (``orchestrator validate`` needs it without the dispatch chain):
:mod:`orchestrator.worker` turns it into each component's own settings.

Each setting is an ``ORCHESTRATOR_*`` environment variable and a ``--flag`` of
``orchestrator run`` (see :func:`add_arguments`); a flag wins over the variable. AWS settings
(credentials, region, endpoints) are deliberately absent: botocore reads them itself from the
credential chain, ``AWS_REGION``/``AWS_DEFAULT_REGION`` and ``AWS_ENDPOINT_URL_SQS`` /
``AWS_ENDPOINT_URL_AMPLIFYBACKEND``.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import MISSING, Field, dataclass, field, fields
from typing import Any

from orchestrator import defaults
from orchestrator.errors import ConfigurationError


@dataclass(frozen=True)
class Settings:
    queue_url: str
    results_queue_url: str | None = None
    dlq_url: str | None = None
    metrics_host: str = "0.0.0.0"
    metrics_port: int | None = 9100
    concurrency: int = defaults.CONCURRENCY
    visibility_timeout: int = defaults.VISIBILITY_TIMEOUT
    wait_time_seconds: int = defaults.WAIT_TIME_SECONDS
    shutdown_grace: float = defaults.SHUTDOWN_GRACE
    job_timeout: float = defaults.JOB_TIMEOUT
    sweep_min: float = defaults.SWEEP_MIN
    sweep_max: float = defaults.SWEEP_MAX
    list_grace: float = defaults.LIST_GRACE
    list_page_size: int = defaults.LIST_PAGE_SIZE
    max_attempts: int = defaults.MAX_ATTEMPTS
    backoff_base: float = defaults.BACKOFF_BASE
    backoff_cap: float = defaults.BACKOFF_CAP
    initial_rate: float = defaults.INITIAL_RATE
    max_rate: float = defaults.MAX_RATE
    app_fairness: bool = defaults.APP_FAIRNESS
    fair_backlog: int = defaults.FAIR_BACKLOG
    receivers: int = defaults.RECEIVERS
    allow_destructive: frozenset[str] = field(default_factory=frozenset)
    log_level: str = "INFO"
    log_format: str = "auto"
    ledger: str = defaults.LEDGER
    lease_ttl: float = defaults.LEASE_TTL
    clock_skew: float = defaults.CLOCK_SKEW
    deprecated: str = "warn"
    sender_policy: str | None = None

    @property
    def reject_deprecated(self) -> bool:
        return self.deprecated == "reject"


_HELP = {
    "queue_url": "SQS queue of change requests",
    "results_queue_url": "SQS queue for outcome events (a request's reply_to overrides it)",
    "dlq_url": "dead-letter queue for rejected requests",
    "metrics_host": "address serving /metrics, /healthz, /readyz",
    "metrics_port": "port serving /metrics, /healthz, /readyz (0 = any free port, off = none)",
    "concurrency": "change requests in progress at once (receiving stops when full)",
    "visibility_timeout": "seconds a received message stays hidden; extended while in progress",
    "wait_time_seconds": "SQS long-poll wait in seconds (0-20)",
    "shutdown_grace": "seconds in-progress requests may run after SIGTERM before release",
    "job_timeout": "seconds a job may take before its request FAILS (job_timeout)",
    "sweep_min": "shortest gap in seconds between two checks of a job",
    "sweep_max": "longest gap in seconds between two checks of a job",
    "list_grace": "seconds a new job may stay unlisted by ListBackendJobs (eventual consistency)",
    "list_page_size": "MaxResults of each ListBackendJobs page",
    "max_attempts": "attempts per AmplifyBackend call for transient errors",
    "backoff_base": "seconds: the first retry's backoff bound (full jitter, doubling)",
    "backoff_cap": "seconds: the longest backoff between two attempts",
    "initial_rate": "AmplifyBackend calls/s the adaptive rate limiter starts at",
    "max_rate": "AmplifyBackend calls/s the adaptive rate limiter never exceeds",
    "app_fairness": "share request slots and rate-limiter tokens fairly between apps",
    "fair_backlog": "received messages that may wait for a request slot (to see past a flood)",
    "receivers": "concurrent long polls (more read a deep queue faster)",
    "allow_destructive": "comma-separated destructive operations to accept (e.g. DeleteBackend)",
    "log_level": "DEBUG, INFO, WARNING or ERROR",
    "log_format": "json, console, or auto (JSON unless stderr is a terminal)",
    "ledger": "job ledger: sqlite:///PATH.db (one host) or dynamodb://TABLE (many replicas)",
    "lease_ttl": "seconds a dead worker's leases (request, environment) block the others",
    "clock_skew": "seconds AmplifyBackend's clock may differ from ours (job timestamps)",
    "deprecated": "a request using a member the model marks deprecated: warn (process it, with"
    " warnings in its outcome) or reject (REJECTED deprecated_member)",
    "sender_policy": "YAML/JSON file of rules: which SQS senders may change which apps,"
    " environments and operations (docs/authorization.md)",
}
#: Settings whose value is one of a fixed set.
_CHOICES = {"deprecated": ("warn", "reject")}

#: How ``--help`` states a default that is not simply the field's value.
_DEFAULT_SHOWN = {
    "queue_url": "required",
    "dlq_url": "default: the queue's RedrivePolicy",
    "results_queue_url": "default: none",
    "allow_destructive": "default: none",
    "sender_policy": "default: none, every sender allowed",
}


def _env_name(name: str) -> str:
    return "ORCHESTRATOR_" + name.upper()


def _default_shown(f: Field[Any]) -> str:
    if f.name in _DEFAULT_SHOWN:
        return _DEFAULT_SHOWN[f.name]
    value = f.default
    if isinstance(value, bool):
        return f"default {str(value).lower()}"
    return f"default {value}"


def help_text(f: Field[Any]) -> str:
    """``--help`` of one setting: what it means, its default, its environment variable."""
    return f"{_HELP[f.name]} ({_default_shown(f)}) [env {_env_name(f.name)}]".replace("%", "%%")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One ``--flag`` per setting; defaults come from the environment at parse time."""
    for f in fields(Settings):
        flag = "--" + f.name.replace("_", "-")
        parser.add_argument(
            flag, dest=f.name, default=None, metavar=f.name.upper(), help=help_text(f)
        )


def _convert(name: str, raw: str, default: Any) -> Any:
    if name == "allow_destructive":
        return frozenset(part.strip() for part in raw.split(",") if part.strip())
    if name == "metrics_port":
        return None if raw.lower() in {"", "none", "off"} else int(raw)
    if isinstance(default, bool):
        return raw.lower() in {"1", "true", "yes", "on"}
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    return (raw or None) if default is None else raw


def load(
    args: argparse.Namespace | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Build Settings from flags, then ORCHESTRATOR_* variables, then defaults.

    A missing or unreadable value raises :class:`ConfigurationError` (a ``SystemExit``), whose
    message names the variable: the CLI prints it on one line and exits 2."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for f in fields(Settings):
        raw = _raw(f.name, args, environ)
        if raw is not None:
            values[f.name] = _parsed(f, raw)
    if not values.get("queue_url"):
        raise ConfigurationError("ORCHESTRATOR_QUEUE_URL (--queue-url) is required")
    return Settings(**values)


def value(
    name: str, args: argparse.Namespace | None = None, environ: Mapping[str, str] | None = None
) -> Any:
    """One setting alone, for the commands that need only it (validate, send, inspect, dlq):
    its flag, else its ORCHESTRATOR_* variable, else its default, read as :func:`load` reads it."""
    f = _FIELDS[name]
    raw = _raw(name, args, os.environ if environ is None else environ)
    if raw is not None:
        return _parsed(f, raw)
    factory = f.default_factory
    return factory() if callable(factory) else f.default


_FIELDS = {f.name: f for f in fields(Settings)}


def _raw(name: str, args: argparse.Namespace | None, environ: Mapping[str, str]) -> str | None:
    raw = getattr(args, name, None) if args is not None else None
    raw = raw if raw is not None else environ.get(_env_name(name))
    return None if raw is None else str(raw)


def _parsed(f: Field[Any], raw: str) -> Any:
    default = f.default if f.default is not MISSING else None
    try:
        result = _convert(f.name, raw, default)
    except ValueError as exc:
        raise ConfigurationError(f"invalid {_env_name(f.name)}={raw!r}: {exc}") from None
    allowed = _CHOICES.get(f.name)
    if allowed and result not in allowed:
        raise ConfigurationError(
            f"invalid {_env_name(f.name)}={raw!r}: use one of {', '.join(allowed)}"
        )
    return result
