"""The emulator's knobs: one frozen dataclass, validated and normalised on construction.

Every knob can be set at start-up (constructor, CLI flags) and changed at runtime
(``Emulator.configure`` / ``POST /_emulator/config``); a runtime change builds a new config with
:meth:`EmulatorConfig.with_updates`, which coerces JSON-ish values (lists for tuples and sets)
and validates the result, so an invalid update is refused as a whole.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from orchestrator import servicemodel
from orchestrator.emulator.listing import LIST_ORDERS
from orchestrator.emulator.timestamps import FORMATTERS

DURATION_DISTRIBUTIONS = frozenset({"uniform", "exponential", "fixed"})
CONFLICT_MODES = frozenset({"reject", "accept"})
TIMESTAMP_FORMATS = tuple(FORMATTERS)
MAX_PAGE_SIZE = 25
MAX_HISTORY = 100_000
_RATIOS = (
    "fail_ratio",
    "fault_504_ratio",
    "fault_500_ratio",
    "fault_reset_ratio",
    "fault_reset_after_ratio",
    "fault_403_ratio",
)


@dataclass(frozen=True)
class EmulatorConfig:
    rate: float | None = None
    burst: int = 10
    per_app_rate: float | None = None
    per_app_burst: int = 10
    job_duration: tuple[float, float] = (0.05, 0.2)
    job_duration_dist: str = "uniform"
    fail_ratio: float = 0.0
    fail_pattern: str | None = None
    fault_504_ratio: float = 0.0
    fault_500_ratio: float = 0.0
    fault_reset_ratio: float = 0.0
    fault_reset_after_ratio: float = 0.0
    fault_403_ratio: float = 0.0
    latency: float = 0.0
    latency_spike_ratio: float = 0.0
    latency_spike: float = 0.0
    fault_operations: frozenset[str] | None = None
    visibility_delay: float = 0.0
    conflict_mode: str = "reject"
    list_page_size: int = 10
    list_order: str = "newest"
    timestamp_format: str = "iso"
    history: int = 0
    apps: Mapping[str, Sequence[str]] = field(default_factory=dict)
    auto_create: bool = False
    require_signature: bool = True
    seed: int | None = None

    def __post_init__(self) -> None:
        low, high = (float(v) for v in self.job_duration)
        object.__setattr__(self, "job_duration", (low, high))
        object.__setattr__(self, "fault_operations", _operations(self.fault_operations))
        object.__setattr__(self, "apps", {str(a): tuple(envs) for a, envs in self.apps.items()})
        for name in ("burst", "per_app_burst", "list_page_size", "history"):
            object.__setattr__(self, name, int(getattr(self, name)))
        _validate(self)

    def with_updates(self, updates: Mapping[str, Any]) -> EmulatorConfig:
        """A new config with ``updates`` applied (names as the fields); ValueError if invalid."""
        unknown = set(updates) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ValueError(f"unknown emulator setting(s): {', '.join(sorted(unknown))}")
        try:
            return dataclasses.replace(self, **dict(updates))
        except TypeError as exc:
            raise ValueError(str(exc)) from exc

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly view (for the stats endpoint and logs)."""
        data = dataclasses.asdict(self)
        data["job_duration"] = list(self.job_duration)
        data["apps"] = {app: list(envs) for app, envs in self.apps.items()}
        ops = self.fault_operations
        data["fault_operations"] = sorted(ops) if ops is not None else None
        return data


def _operations(names: Iterable[str] | None) -> frozenset[str] | None:
    if names is None:
        return None
    if isinstance(names, str):
        names = [names]
    resolved = set()
    for name in names:
        operation = servicemodel.resolve_operation(str(name))
        if operation is None:
            raise ValueError(f"fault_operations: unknown operation {name!r}")
        resolved.add(operation)
    return frozenset(resolved)


def _validate(cfg: EmulatorConfig) -> None:
    for name in _RATIOS + ("latency_spike_ratio",):
        _check(0.0 <= float(getattr(cfg, name)) <= 1.0, f"{name} must be within [0, 1]")
    for name in ("latency", "latency_spike", "visibility_delay"):
        value = float(getattr(cfg, name))
        _check(value >= 0.0 and math.isfinite(value), f"{name} must be >= 0")
    for name in ("rate", "per_app_rate"):
        value = getattr(cfg, name)
        _check(value is None or float(value) > 0.0, f"{name} must be > 0 or None")
    _check(int(cfg.burst) >= 1 and int(cfg.per_app_burst) >= 1, "bursts must be >= 1")
    low, high = cfg.job_duration
    _check(0.0 <= low <= high, "job_duration must be (min, max) with 0 <= min <= max")
    _check(cfg.job_duration_dist in DURATION_DISTRIBUTIONS, "unknown job_duration_dist")
    _check(cfg.conflict_mode in CONFLICT_MODES, "conflict_mode must be 'reject' or 'accept'")
    _check(1 <= int(cfg.list_page_size) <= MAX_PAGE_SIZE, "list_page_size must be 1..25")
    _check(cfg.list_order in LIST_ORDERS, f"list_order must be one of {', '.join(LIST_ORDERS)}")
    _check(
        cfg.timestamp_format in TIMESTAMP_FORMATS,
        f"timestamp_format must be one of {', '.join(TIMESTAMP_FORMATS)}",
    )
    _check(0 <= cfg.history <= MAX_HISTORY, f"history must be 0..{MAX_HISTORY}")
    if cfg.fail_pattern is not None:
        try:
            re.compile(cfg.fail_pattern)
        except re.error as exc:
            raise ValueError(f"fail_pattern is not a valid regex: {exc}") from exc


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)
