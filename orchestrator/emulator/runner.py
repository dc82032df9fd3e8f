"""Lifecycles: ``run_emulator`` (async context), ``EmulatorThread`` (own loop), ``serve`` (CLI).

All three run the same aiohttp application on a real socket. ``run_emulator`` serves on the
caller's event loop; ``EmulatorThread`` runs that same context in a background thread with its
own loop (for synchronous boto3 code) and marshals every handle method onto that loop, so the
emulator's state is only ever touched by one thread; ``serve`` blocks until SIGINT/SIGTERM.
Port 0 binds a free port; ``url`` tells which.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from aiohttp import web

from orchestrator.emulator.config import EmulatorConfig
from orchestrator.emulator.server import build_app
from orchestrator.emulator.service import Emulator

T = TypeVar("T")
SHUTDOWN_GRACE = 2.0
_WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


class EmulatorHandle:
    """A running emulator: its URL and the admin operations (same as the HTTP admin API)."""

    def __init__(self, emulator: Emulator, url: str) -> None:
        self.emulator = emulator
        self.url = url

    @property
    def config(self) -> EmulatorConfig:
        return self.emulator.config

    def stats(self) -> dict[str, Any]:
        return self.emulator.stats()

    def jobs(self) -> list[dict[str, Any]]:
        return self.emulator.jobs()

    def reset(self) -> None:
        self.emulator.reset()

    def configure(self, **updates: Any) -> EmulatorConfig:
        return self.emulator.configure(**updates)


@contextlib.asynccontextmanager
async def run_emulator(
    config: EmulatorConfig | None = None, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[EmulatorHandle]:
    """Serve an emulator on ``host:port`` for the duration of the ``async with`` block."""
    emulator = Emulator(config or EmulatorConfig())
    runner = web.AppRunner(
        build_app(emulator), access_log=None, handle_signals=False, shutdown_timeout=SHUTDOWN_GRACE
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_port = runner.addresses[0][1]
        shown = _WILDCARDS.get(host, host)
        shown = f"[{shown}]" if ":" in shown else shown
        yield EmulatorHandle(emulator, f"http://{shown}:{bound_port}")
    finally:
        await runner.cleanup()


class EmulatorThread:
    """``run_emulator`` in a background thread; use as a context manager or start()/stop()."""

    def __init__(
        self, config: EmulatorConfig | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self._args = (config, host, port)
        self._ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="amplifybackend-emulator", daemon=True
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._handle: EmulatorHandle | None = None
        self._error: BaseException | None = None

    def __enter__(self) -> EmulatorThread:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self, timeout: float = 10.0) -> EmulatorThread:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("the emulator thread did not start in time")
        if self._error is not None:
            self._thread.join()
            raise RuntimeError("the emulator thread failed to start") from self._error
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to start(); the thread ends either way
            self._error = exc
        finally:
            self._ready.set()

    async def _main(self) -> None:
        async with run_emulator(*self._args) as handle:
            self._handle = handle
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            self._ready.set()
            await self._stop.wait()

    @property
    def url(self) -> str:
        return self._running().url

    def _running(self) -> EmulatorHandle:
        if self._handle is None:
            raise RuntimeError("the emulator thread is not running")
        return self._handle

    def _call(self, function: Callable[[], T]) -> T:
        assert self._loop is not None

        async def invoke() -> T:
            return function()

        return asyncio.run_coroutine_threadsafe(invoke(), self._loop).result(timeout=30)

    @property
    def config(self) -> EmulatorConfig:
        return self._running().config

    def stats(self) -> dict[str, Any]:
        return self._call(self._running().stats)

    def jobs(self) -> list[dict[str, Any]]:
        return self._call(self._running().jobs)

    def reset(self) -> None:
        self._call(self._running().reset)

    def configure(self, **updates: Any) -> EmulatorConfig:
        handle = self._running()
        return self._call(lambda: handle.configure(**updates))


def serve(config: EmulatorConfig | None = None, host: str = "127.0.0.1", port: int = 4580) -> int:
    """Serve until SIGINT or SIGTERM; returns the process exit status (0)."""
    asyncio.run(_serve_until_signalled(config, host, port))
    return 0


async def _serve_until_signalled(config: EmulatorConfig | None, host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with run_emulator(config, host, port) as handle:
            print(f"AmplifyBackend emulator listening on {handle.url}", file=sys.stderr, flush=True)
            await stop.wait()
        print("AmplifyBackend emulator stopped", file=sys.stderr, flush=True)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
