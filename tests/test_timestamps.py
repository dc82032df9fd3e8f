"""The one timestamp reader: every format a CreateTime/UpdateTime may plausibly come in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.timestamps import parse_timestamp, resolution

T = 1738324800.123456  # 2025-01-31T12:00:00.123456Z


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-01-31T12:00:00.123456Z", T),
        ("2025-01-31T12:00:00.123Z", 1738324800.123),
        ("2025-01-31T12:00:00Z", 1738324800.0),
        ("2025-01-31T13:00:00+01:00", 1738324800.0),
        ("2025-01-31T07:00:00.5-0500", 1738324800.5),
        ("2025-01-31 12:00:00", 1738324800.0),
        ("2025-01-31t12:00:00z", 1738324800.0),
        ("1738324800", 1738324800.0),
        ("1738324800.25", 1738324800.25),
        ("1738324800123", 1738324800.123),
        (1738324800, 1738324800.0),
        (1738324800123, 1738324800.123),
        (1738324800.5, 1738324800.5),
    ],
)
def test_every_plausible_format_is_read(text: object, expected: float) -> None:
    assert parse_timestamp(text) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(
    "text", ["", "yesterday", "31/01/2025 12:00", None, True, "-5", "nan", "12:00", [], {}]
)
def test_unreadable_values_are_none_never_a_guess(text: object) -> None:
    assert parse_timestamp(text) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1738324800", 1.0),
        ("1738324800123", 1e-3),
        ("1738324800.25", 1e-6),
        ("2025-01-31T12:00:00Z", 1.0),
        ("2025-01-31T12:00:00.1Z", 1e-6),
    ],
)
def test_resolution_tells_how_much_was_truncated(text: str, expected: float) -> None:
    assert resolution(text) == expected


@given(
    st.datetimes(
        min_value=datetime(2001, 1, 1),
        max_value=datetime(2200, 1, 1),
        timezones=st.just(UTC),
    ),
    st.integers(min_value=-14 * 60, max_value=14 * 60),
)
def test_one_instant_in_any_format_reads_back_within_its_resolution(
    moment: datetime, offset_minutes: int
) -> None:
    epoch = moment.timestamp()
    local = moment.astimezone(timezone(timedelta(minutes=offset_minutes)))
    written = [
        moment.isoformat().replace("+00:00", "Z"),
        local.isoformat(),
        local.isoformat(timespec="seconds"),
        str(int(epoch)),
        str(int(epoch * 1000)),
        int(epoch * 1000),
        epoch,
    ]
    for value in written:
        parsed = parse_timestamp(value)
        assert parsed is not None, value
        assert epoch - resolution(value) - 1e-6 <= parsed <= epoch + 1e-6, value
