"""Scenario 4's figures: detection delays from the jobs' UpdateTime, a contender's row from
its emulator's counters, ours with many past jobs over with none."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

from bench.harness.measure import percentile
from bench.scenarios.tracking.config import ORDERS


def _iso_epoch(value: str) -> float | None:
    """Epoch seconds of an ISO 8601 timestamp (``...Z`` allowed), None if unparsable."""
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def epoch(value: str | None) -> float | None:
    """Epoch seconds of a job's UpdateTime: ``orchestrator.timestamps.parse_timestamp`` when
    that module exists, else a local ISO parse."""
    if not value:
        return None
    try:
        parse: Callable[[str], float | None] = importlib.import_module(
            "orchestrator.timestamps"
        ).parse_timestamp
    except (ImportError, AttributeError):
        return _iso_epoch(value)
    return parse(value)


def row(stats: dict[str, Any], delays: list[float], jobs: int) -> dict[str, Any]:
    """One contender's figures from its emulator's counters and its detection delays."""
    calls = stats["calls"]
    lists, gets = int(calls.get("ListBackendJobs", 0)), int(calls.get("GetBackendJob", 0))
    return {
        "jobs": jobs,
        "noticed": len(delays),
        "list_calls": lists,
        "get_calls": gets,
        "calls_per_job": round((lists + gets) / max(1, jobs), 3),
        "detection_p50_s": round(percentile(delays, 0.5), 3),
        "detection_p99_s": round(percentile(delays, 0.99), 3),
        "conflicts": int(stats.get("conflicts", 0)),
    }


def history_ratios(variants: dict[str, Any]) -> dict[str, float]:
    """Per listing order: ours' calls per job with 500 past jobs over with none."""
    ratios = {}
    for order in ORDERS:
        none, many = variants.get(f"history0_{order}"), variants.get(f"history500_{order}")
        if none and many and "ours" in none and "ours" in many:
            base = max(none["ours"]["calls_per_job"], 1e-9)
            ratios[order] = round(many["ours"]["calls_per_job"] / base, 3)
    return ratios
