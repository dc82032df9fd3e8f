"""Configuration validation, runtime updates, token buckets."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.emulator import EmulatorConfig
from orchestrator.emulator.ratelimit import APP, GLOBAL, RateLimiter, TokenBucket


@pytest.mark.parametrize(
    "knobs",
    [
        {"fail_ratio": 1.5},
        {"fault_504_ratio": -0.1},
        {"latency_spike_ratio": 2},
        {"latency": -1},
        {"rate": 0},
        {"burst": 0},
        {"job_duration": (0.5, 0.1)},
        {"job_duration_dist": "normal"},
        {"conflict_mode": "merge"},
        {"list_page_size": 26},
        {"fail_pattern": "("},
        {"fault_operations": {"LaunchRocket"}},
    ],
)
def test_invalid_knobs_are_refused(knobs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        EmulatorConfig(**knobs)


def test_updates_are_coerced_and_validated() -> None:
    base = EmulatorConfig()
    updated = base.with_updates(
        {
            "job_duration": [0.1, 0.2],
            "fault_operations": ["create_backend_auth", "GetBackend"],
            "apps": {"a": ["dev"]},
            "burst": 2.0,
        }
    )
    assert updated.job_duration == (0.1, 0.2)
    assert updated.fault_operations == frozenset({"CreateBackendAuth", "GetBackend"})
    assert updated.apps == {"a": ("dev",)} and updated.burst == 2
    assert base.job_duration == (0.05, 0.2)  # the original is untouched
    with pytest.raises(ValueError, match="unknown emulator setting"):
        base.with_updates({"speed": 11})
    assert updated.as_dict()["fault_operations"] == ["CreateBackendAuth", "GetBackend"]


def test_token_bucket_refills_at_its_rate() -> None:
    bucket = TokenBucket.full(rate=2.0, burst=2, now=0.0)
    assert [bucket.try_take(0.0) for _ in range(3)] == [True, True, False]
    assert bucket.try_take(0.25) is False  # half a token
    assert bucket.try_take(0.5) is True
    assert [bucket.try_take(100.0) for _ in range(3)] == [True, True, False]  # capped at burst


def test_rate_limiter_global_then_per_app() -> None:
    limiter = RateLimiter(rate=None, burst=1, per_app_rate=1.0, per_app_burst=1, now=0.0)
    assert limiter.refused("a", 0.0) is None
    assert limiter.refused("a", 0.0) == APP
    assert limiter.refused("b", 0.0) is None
    assert limiter.refused(None, 0.0) is None
    both = RateLimiter(rate=1.0, burst=1, per_app_rate=1.0, per_app_burst=5, now=0.0)
    assert both.refused("a", 0.0) is None
    assert both.refused("a", 0.0) == GLOBAL
