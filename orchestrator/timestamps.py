"""Reading the service's timestamps: the one place a CreateTime or UpdateTime is parsed.

botocore's model types ``CreateTime``/``UpdateTime`` of a backend job as ``string`` and the AWS
documentation gives no format, so every plausible one is read:

* ISO 8601 / RFC 3339: ``2025-01-31T12:00:00Z``, with an offset (``+01:00``, ``+0100``), with
  or without fractions of a second, ``T`` or a space between date and time; no zone = UTC;
* epoch seconds (``"1738324800"``, ``"1738324800.25"``, or a number);
* epoch milliseconds (``"1738324800123"`` or a number): any epoch value above
  :data:`_MS_THRESHOLD` (year 2286 in seconds) is taken as milliseconds.

A value that is none of these gives ``None``: callers treat it as *unknown*, never as a match.
:func:`resolution` tells how precise a value is, so a comparison can allow for a timestamp that
was truncated to the second.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

from orchestrator.clock import wall_time

_MS_THRESHOLD = 1e10
_NUMBER = re.compile(r"^\s*[0-9]+(\.[0-9]+)?\s*$")
_ISO_OFFSET = re.compile(r"([+-]\d{2})(\d{2})$")


def parse_timestamp(value: object) -> float | None:
    """Epoch seconds of an ISO 8601 or epoch (s or ms) timestamp; None when unreadable."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return _epoch(float(value))
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if _NUMBER.match(text):
        return _epoch(float(text))
    return _iso(text)


def resolution(value: object) -> float:
    """How far the instant may lie after the written value: 1 s for whole epoch seconds or an
    ISO time without fractions, 1 ms for epoch milliseconds, 1 µs otherwise."""
    text = str(value).strip()
    if _NUMBER.match(text):
        if "." in text:
            return 1e-6
        return 1e-3 if float(text) > _MS_THRESHOLD else 1.0
    time_part = text.partition("T")[2] or text.partition(" ")[2]
    return 1e-6 if "." in time_part or "," in time_part else 1.0


def _epoch(number: float) -> float | None:
    if not math.isfinite(number) or number < 0:
        return None
    return number / 1000.0 if number > _MS_THRESHOLD else number


def _iso(text: str) -> float | None:
    text = text.replace("z", "Z")
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    text = _ISO_OFFSET.sub(r"\1:\2", text)
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp()


def detection_delay(update_time: str | None) -> float | None:
    """Seconds from a job's terminal UpdateTime to now (None when it cannot be parsed)."""
    stamp = parse_timestamp(update_time)
    return None if stamp is None else max(0.0, wall_time() - stamp)
