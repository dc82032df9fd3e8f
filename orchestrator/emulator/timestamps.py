"""The emulator's clock, and how its instants are written in API answers.

Every instant the emulator keeps is a ``time.monotonic()`` value, so wall-clock steps cannot
reorder anything; :class:`Timebase` turns one into epoch seconds as the wall time at start
plus the monotonic time elapsed since (so a job's terminal UpdateTime is exactly its
CreateTime plus its duration). Instants are formatted only when an answer is written, in the
configured ``timestamp_format``:

* ``iso``: ISO 8601 UTC with microseconds and ``Z`` (``2025-01-31T12:00:00.123456Z``);
* ``iso_offset``: ISO 8601, whole seconds, an offset (``2025-01-31T12:00:00+00:00``);
* ``epoch_s``: whole epoch seconds as a string (``"1738324800"``, truncated);
* ``epoch_ms``: integer epoch milliseconds as a string (``"1738324800123"``, truncated);
* ``opaque``: a value no reader can take for a time (``"t-<hex>"``, stable per instant): a
  service whose format is unknown, to prove that a worker then never guesses.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import UTC, datetime

ISO = "iso"


def _iso(epoch: float) -> str:
    stamp = datetime.fromtimestamp(epoch, tz=UTC)
    return stamp.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _iso_offset(epoch: float) -> str:
    return datetime.fromtimestamp(math.floor(epoch), tz=UTC).isoformat(timespec="seconds")


def _epoch_s(epoch: float) -> str:
    return str(math.floor(epoch))


def _epoch_ms(epoch: float) -> str:
    return str(math.floor(epoch * 1000.0))


def _opaque(epoch: float) -> str:
    return f"t-{math.floor(epoch * 1000.0):x}"


FORMATTERS: dict[str, Callable[[float], str]] = {
    ISO: _iso,
    "iso_offset": _iso_offset,
    "epoch_s": _epoch_s,
    "epoch_ms": _epoch_ms,
    "opaque": _opaque,
}


class Timebase:
    """Monotonic instants for scheduling, shown as wall-clock timestamps."""

    def __init__(self) -> None:
        self._mono0 = time.monotonic()
        self._wall0 = time.time()

    @staticmethod
    def now() -> float:
        return time.monotonic()

    def wall(self, mono: float) -> float:
        """Epoch seconds of a monotonic instant."""
        return self._wall0 + (mono - self._mono0)

    def iso(self, mono: float) -> str:
        """ISO 8601 UTC (``2025-01-31T12:00:00.123456Z``) of a monotonic instant."""
        return _iso(self.wall(mono))

    def formatter(self, timestamp_format: str) -> Callable[[float], str]:
        """A function writing monotonic instants in ``timestamp_format`` (a FORMATTERS key)."""
        write = FORMATTERS[timestamp_format]

        def show(mono: float) -> str:
            return write(self.wall(mono))

        return show
