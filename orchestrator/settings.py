"""Worker settings: one immutable object, built once at the edge (the CLI) and passed in.

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
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

from orchestrator.backoff import RetryPolicy
from orchestrator.dispatcher import DispatchSettings
from orchestrator.ratelimit import LimiterSettings
from orchestrator.reconcile import ReconcileSettings
from orchestrator.tracker import TrackerSettings

DEFAULT_LEDGER = "sqlite:///orchestrator-ledger.db"


@dataclass(frozen=True)
class Settings:
    queue_url: str
    results_queue_url: str | None = None
    dlq_url: str | None = None
    metrics_host: str = "0.0.0.0"
    metrics_port: int | None = 9100
    concurrency: int = 32
    visibility_timeout: int = 60
    wait_time_seconds: int = 20
    shutdown_grace: float = 30.0
    job_timeout: float = 3600.0
    sweep_min: float = 1.0
    sweep_max: float = 30.0
    list_grace: float = 60.0
    list_page_size: int = 25
    max_attempts: int = 8
    backoff_base: float = 0.1
    backoff_cap: float = 20.0
    initial_rate: float = 10.0
    max_rate: float = 1000.0
    app_fairness: bool = True
    fair_backlog: int = 2000
    receivers: int = 4
    allow_destructive: frozenset[str] = field(default_factory=frozenset)
    log_level: str = "INFO"
    log_format: str = "auto"
    ledger: str = DEFAULT_LEDGER
    lease_ttl: float = 30.0
    clock_skew: float = 2.0

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(self.max_attempts, self.backoff_base, self.backoff_cap)

    def limiter(self) -> LimiterSettings:
        return LimiterSettings(
            initial_rate=self.initial_rate, max_rate=self.max_rate, fair_keys=self.app_fairness
        )

    def tracker(self) -> TrackerSettings:
        return TrackerSettings(
            self.sweep_min,
            self.sweep_max,
            list_grace=self.list_grace,
            page_size=self.list_page_size,
        )

    def dispatch(self) -> DispatchSettings:
        reconcile = ReconcileSettings(
            clock_skew=self.clock_skew,
            visibility_grace=self.list_grace,
            page_size=self.list_page_size,
        )
        return DispatchSettings(job_timeout=self.job_timeout, reconcile=reconcile)


_HELP = {
    "queue_url": "SQS queue of change requests (required)",
    "results_queue_url": "SQS queue for outcome events (a request's reply_to overrides it)",
    "dlq_url": "dead-letter queue for rejected requests (default: the queue's RedrivePolicy)",
    "metrics_port": "port serving /metrics, /healthz, /readyz (0 = any free port)",
    "concurrency": "change requests in progress at once",
    "visibility_timeout": "seconds a received message stays hidden; extended while in progress",
    "shutdown_grace": "seconds in-progress requests may run after SIGTERM before release",
    "job_timeout": "seconds a job may take before its request FAILS",
    "allow_destructive": "comma-separated destructive operations to accept (e.g. DeleteBackend)",
    "log_level": "DEBUG, INFO, WARNING or ERROR",
    "log_format": "json, console, or auto (JSON unless stderr is a terminal)",
    "app_fairness": "share request slots and rate-limiter tokens fairly between apps",
    "fair_backlog": "received messages that may wait for a request slot (to see past a flood)",
    "receivers": "concurrent long polls (more read a deep queue faster)",
    "lease_ttl": "seconds a dead worker's leases (request, environment) block the others",
    "clock_skew": "seconds AmplifyBackend's clock may differ from ours (job timestamps)",
    "list_grace": "seconds a new job may stay unlisted by ListBackendJobs (eventual consistency)",
    "ledger": "job ledger: sqlite:///PATH.db (one host) or dynamodb://TABLE (many replicas)",
}


def _env_name(name: str) -> str:
    return "ORCHESTRATOR_" + name.upper()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One ``--flag`` per setting; defaults come from the environment at parse time."""
    for f in fields(Settings):
        flag = "--" + f.name.replace("_", "-")
        parser.add_argument(
            flag,
            dest=f.name,
            default=None,
            metavar=f.name.upper(),
            help=f"{_HELP.get(f.name, f.name.replace('_', ' '))} [env {_env_name(f.name)}]",
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
    """Build Settings from flags, then ORCHESTRATOR_* variables, then defaults."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for f in fields(Settings):
        raw = getattr(args, f.name, None) if args is not None else None
        raw = raw if raw is not None else environ.get(_env_name(f.name))
        if raw is None:
            continue
        default = f.default if f.default is not MISSING else None
        try:
            values[f.name] = _convert(f.name, str(raw), default)
        except ValueError as exc:
            raise SystemExit(f"invalid {_env_name(f.name)}={raw!r}: {exc}") from None
    if not values.get("queue_url"):
        raise SystemExit("ORCHESTRATOR_QUEUE_URL (--queue-url) is required")
    return Settings(**values)
