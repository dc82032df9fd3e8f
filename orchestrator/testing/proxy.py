"""A loopback TCP proxy that can take a server away: the SQS outage of the chaos runs."""

from __future__ import annotations

import contextlib
from typing import cast

import anyio
import anyio.abc
from anyio.abc import SocketListener

from orchestrator.testing.processes import free_port


class Proxy:
    """A loopback TCP proxy to ``target``; ``down()`` closes every connection and refuses new
    ones until ``up()``: to the worker, the endpoint has gone away."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._listener: anyio.abc.SocketListener | None = None
        self._connections: set[anyio.abc.SocketStream] = set()
        self._serving: anyio.CancelScope | None = None
        self._restarted = anyio.Event()
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def serve(self, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        while True:
            with anyio.CancelScope() as self._serving:
                listener = await anyio.create_tcp_listener(
                    local_host="127.0.0.1", local_port=self.port, reuse_port=False
                )
                task_status.started()
                task_status = anyio.TASK_STATUS_IGNORED
                async with listener, anyio.create_task_group() as connections:
                    while True:
                        client = await cast(
                            SocketListener, listener.listeners[0]
                        ).accept()  # 127.0.0.1: one
                        self._connections.add(client)  # closed below if its pipe never starts
                        connections.start_soon(self._pipe, client)
            for stream in list(self._connections):
                await anyio.aclose_forcefully(stream)
            self._connections.clear()
            await self._restarted.wait()

    async def _pipe(self, client: anyio.abc.SocketStream) -> None:
        async with client, await anyio.connect_tcp(*self._target) as upstream:
            self._connections.add(upstream)
            try:
                async with anyio.create_task_group() as both:
                    both.start_soon(_copy, client, upstream)
                    both.start_soon(_copy, upstream, client)
            finally:
                self._connections.difference_update((client, upstream))

    def down(self) -> None:
        self._restarted = anyio.Event()
        if self._serving is not None:
            self._serving.cancel()

    def up(self) -> None:
        self._restarted.set()


async def _copy(source: anyio.abc.SocketStream, sink: anyio.abc.SocketStream) -> None:
    with contextlib.suppress(
        anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError
    ):
        async for chunk in source:
            await sink.send(chunk)
    with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
        await sink.send_eof()
