"""Durations both ways: ``--older-than 2h`` read into seconds, and ages written for people."""

from __future__ import annotations

import re

_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float:
    """Seconds in ``30s``, ``30m``, ``2h``, ``7d``, ``1w`` or ``1h30m`` (a unit is required)."""
    compact = text.strip().lower()
    parts = _DURATION.findall(compact)
    if not compact or "".join(number + unit for number, unit in parts) != compact:
        raise ValueError(f"{text!r} is not a duration like 30m, 2h, 7d or 1h30m")
    return sum(float(number) * _UNITS[unit] for number, unit in parts)


def format_age(seconds: float) -> str:
    """``3d 4h``, ``2h 5m``, ``5m 3s``, ``12s``."""
    total = max(0, int(seconds))
    days, hours, minutes = total // 86400, total % 86400 // 3600, total % 3600 // 60
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {total % 60}s" if minutes else f"{total}s"
