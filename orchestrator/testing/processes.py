"""``orchestrator run`` as a process of its own: the one launcher the tests, the chaos runs and
the benchmarks share.

A worker process is configured the way production configures it, through its environment:
settings as ``ORCHESTRATOR_<NAME>``, AWS endpoints as ``AWS_ENDPOINT_URL_<SERVICE>``
(:func:`worker_environment`). :class:`WorkerProcesses` starts such processes with their output
appended to one log file, and stops them by SIGKILL (no cleanup at all), by SIGTERM (the
graceful path, timed) or all at once when its block ends.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType

import anyio
import anyio.abc

#: The command line of a worker process: the installed package, run as ``orchestrator run``.
WORKER_COMMAND = (sys.executable, "-m", "orchestrator.cli", "run")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def worker_environment(
    settings: Mapping[str, object],
    *,
    amplify_url: str | None = None,
    sqs_url: str | None = None,
    base: Mapping[str, str] | None = None,
    without: Iterable[str] = (),
) -> dict[str, str]:
    """``base`` (default: this process's environment) minus the variables starting with a
    prefix in ``without``, plus ``settings`` as ``ORCHESTRATOR_<NAME>`` and the AmplifyBackend
    and SQS endpoints given (the others as ``base`` has them)."""
    prefixes = tuple(without)
    source = os.environ if base is None else base
    env = {k: v for k, v in source.items() if not (prefixes and k.startswith(prefixes))}
    env.update({f"ORCHESTRATOR_{name.upper()}": str(value) for name, value in settings.items()})
    if amplify_url is not None:
        env["AWS_ENDPOINT_URL_AMPLIFYBACKEND"] = amplify_url
    if sqs_url is not None:
        env["AWS_ENDPOINT_URL_SQS"] = sqs_url
    return env


class WorkerProcesses:
    """Worker processes sharing one environment, their output appended to ``log_path``.

    ``async with`` stops (SIGKILLs) whatever is still running when the block ends."""

    def __init__(self, env: Mapping[str, str], log_path: Path) -> None:
        self.env = dict(env)
        self.log_path = log_path
        self.running: list[anyio.abc.Process] = []

    async def __aenter__(self) -> WorkerProcesses:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        with anyio.CancelScope(shield=True):
            await self.stop_all()

    async def start(self) -> anyio.abc.Process:
        with self.log_path.open("ab") as log_file:
            process = await anyio.open_process(
                list(WORKER_COMMAND), env=self.env, stdout=log_file, stderr=log_file
            )
        self.running.append(process)
        return process

    async def kill(self, process: anyio.abc.Process) -> None:
        """SIGKILL: no cleanup, no release, no flush."""
        process.kill()
        await process.wait()
        self.running.remove(process)

    async def terminate(self, process: anyio.abc.Process, deadline: float) -> tuple[int, float]:
        """SIGTERM; (exit code, seconds it took to exit). TimeoutError after ``deadline``."""
        began = time.monotonic()
        process.send_signal(signal.SIGTERM)
        with anyio.fail_after(deadline):
            code = await process.wait()
        self.running.remove(process)
        return code, time.monotonic() - began

    async def stop_all(self) -> None:
        for process in list(self.running):
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            await process.aclose()
        self.running.clear()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def readiness(port: int) -> int:
    """HTTP status of a worker's ``/readyz`` on 127.0.0.1 (0 if nothing answers)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        with exc:  # it holds the response: unclosed, its socket leaks until collected
            return int(exc.code)
    except OSError:
        return 0
