"""The tracker's sweep timing: coalescing sweeps that fall due close together."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from orchestrator.tracker import coalesce


@given(
    deadline=st.floats(min_value=0, max_value=1e7, allow_nan=False),
    interval=st.floats(min_value=0.01, max_value=3600, allow_nan=False),
)
def test_a_coalesced_deadline_moves_at_most_half_a_step(deadline: float, interval: float) -> None:
    moved = coalesce(deadline, interval, slack=0.1)
    assert abs(moved - deadline) <= 0.05 * interval + 1e-6 * max(1.0, deadline)
    step = 2.0 ** math.floor(math.log2(0.1 * interval))
    assert moved / step == round(moved / step)


def test_sweeps_due_within_one_step_fall_due_together() -> None:
    """200 environments whose 15 s sweeps fall due spread over one second: at most 2 instants
    (the 1 s step's grid), where without coalescing there would be 200."""
    deadlines = [1000.2 + index / 200 for index in range(200)]
    assert len({coalesce(deadline, 15.0) for deadline in deadlines}) <= 2
    assert len({coalesce(deadline, 15.0, slack=0) for deadline in deadlines}) == 200
