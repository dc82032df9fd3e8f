"""moto's SQS, served the way SQS serves: ``python -m bench.moto_server -H HOST -p PORT``.

Two things of moto's own server would otherwise be measured instead of the worker:

* **Connections.** moto runs werkzeug's development server, which answers every request with
  ``Connection: close``, so each SQS call paid a TCP connect (and its socket teardown) on the
  client; SQS itself keeps connections alive. Here moto's WSGI application is served by
  waitress (HTTP/1.1 keep-alive, threads enough for every long poll of a scenario).
* **Its clock.** moto computes "now" through naive-datetime arithmetic for every message of a
  queue on every call: with 2,000 messages queued that was ~75% of its CPU and ~1 s per
  ReceiveMessage (py-spy). ``unix_time()`` without an argument is replaced by ``time.time()``,
  which returns the same value; nothing else changes.
"""

from __future__ import annotations

import argparse
import datetime
import os
import time

import moto.core.utils
import moto.sqs.models
import waitress
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

#: Worker threads: every long poll holds one for up to 20 s (a scenario runs up to 3 workers
#: with 4 receivers each, plus producers and drains).
THREADS = 64

_original = moto.core.utils.unix_time


def _unix_time(dt: datetime.datetime | None = None) -> float:
    return time.time() if dt is None else _original(dt)


def _unix_time_millis(dt: datetime.datetime | None = None) -> float:
    return _unix_time(dt) * 1000.0


for module in (moto.core.utils, moto.sqs.models):
    module.unix_time = _unix_time  # type: ignore[attr-defined]
    module.unix_time_millis = _unix_time_millis  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.moto_server")
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    args = parser.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))
    app = DomainDispatcherApplication(create_backend_app)
    waitress.serve(
        app, host=args.host, port=args.port, threads=THREADS, connection_limit=1000,
        channel_timeout=120, ident="moto", _quiet=True,
    )  # fmt: skip


if __name__ == "__main__":
    main()
