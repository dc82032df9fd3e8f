"""moto's server, with its clock made cheap: ``python -m bench.moto_server -H HOST -p PORT``.

moto computes "now" through naive-datetime arithmetic (an import, two datetime objects and a
subtraction) for every message of a queue on every call (visibility, delay, attribute counts):
with 2,000 messages queued that was ~75% of its CPU and ~1 s per ReceiveMessage (py-spy), so
a flood scenario measured moto rather than the worker. ``unix_time()`` without an argument is
replaced by ``time.time()``, which returns the same value; nothing else changes.
"""

from __future__ import annotations

import datetime
import time

import moto.core.utils
import moto.sqs.models
from moto.server import main

_original = moto.core.utils.unix_time


def _unix_time(dt: datetime.datetime | None = None) -> float:
    return time.time() if dt is None else _original(dt)


def _unix_time_millis(dt: datetime.datetime | None = None) -> float:
    return _unix_time(dt) * 1000.0


for module in (moto.core.utils, moto.sqs.models):
    module.unix_time = _unix_time  # type: ignore[attr-defined]
    module.unix_time_millis = _unix_time_millis  # type: ignore[attr-defined]

if __name__ == "__main__":
    main()
