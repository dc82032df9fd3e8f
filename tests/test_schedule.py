"""The tracker's schedule: learned job durations place the checks where jobs end."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from orchestrator.schedule import KEEP, MIN_SAMPLES, Durations, ScheduleSettings

SETTINGS = ScheduleSettings(sweep_min=1.0, sweep_max=30.0, age_factor=0.25)


def checks_until(durations: Durations, operation: str, length: float) -> tuple[int, float]:
    """How many checks a job of ``length`` seconds gets, and how late its end is noticed."""
    age, checks = 0.0, 0
    while True:
        age += durations.next_check(operation, age)
        checks += 1
        if age >= length:
            return checks, age - length


def test_unlearned_the_schedule_is_geometric_in_the_age() -> None:
    durations = Durations(SETTINGS)
    assert durations.next_check("CreateBackendStorage", 0.0) == 1.0
    assert durations.next_check("CreateBackendStorage", 40.0) == 10.0
    assert durations.next_check("CreateBackendStorage", 4000.0) == 30.0


def test_learned_durations_cut_checks_and_keep_detection_within_a_quantile_step() -> None:
    """1. Jobs of 30–120 s (uniform), 100 of them learned.
    2. A new job of that kind gets at most 14 checks (the Amplify CLI's every-2-s poll: 15–60)
       and its end is noticed within 10 s; unlearned, the geometric schedule needs more."""
    rng = random.Random(4)
    learned = Durations(SETTINGS)
    for _ in range(100):
        learned.observe("CreateBackendStorage", rng.uniform(30, 120))
    for length in (31.0, 60.0, 90.0, 119.0):
        checks, late = checks_until(learned, "CreateBackendStorage", length)
        naive, _ = checks_until(Durations(SETTINGS), "CreateBackendStorage", length)
        assert checks <= 14 and late <= 10.0, (length, checks, late)
        assert checks < naive


def test_operations_learn_separately_and_memory_is_bounded() -> None:
    durations = Durations(SETTINGS)
    for _ in range(MIN_SAMPLES):
        durations.observe("CreateBackendAuth", 100.0)
    assert durations.next_check("CreateBackendAuth", 0.0) == 30.0  # capped: nothing before 100
    assert durations.next_check("CreateBackendStorage", 0.0) == 1.0  # still unlearned
    for _ in range(10 * KEEP):
        durations.observe("CreateBackendAuth", 5.0)
    assert durations.learned("CreateBackendAuth") == KEEP
    assert durations.next_check("CreateBackendAuth", 0.0) == 5.0


@given(
    st.lists(st.floats(min_value=0, max_value=1e4), max_size=50),
    st.floats(min_value=0, max_value=1e5),
)
def test_every_gap_stays_within_the_sweep_bounds(seen: list[float], age: float) -> None:
    durations = Durations(SETTINGS)
    for value in seen:
        durations.observe("Op", value)
    assert SETTINGS.sweep_min <= durations.next_check("Op", age) <= SETTINGS.sweep_max
