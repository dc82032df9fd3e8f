"""The worker's HTTP endpoints: ``/metrics`` (Prometheus), ``/healthz`` and ``/readyz``.

``/healthz`` answers from the event loop itself, so a blocked loop fails it. ``/readyz`` asks
the worker (consumer receiving and the last SQS call succeeded) and answers 503 otherwise.
``/metrics`` answers in OpenMetrics when the scraper's ``Accept`` asks for
``application/openmetrics-text`` (Prometheus does), the only format that carries exemplars (the
trace ids on ``orchestrator_request_duration_seconds``); in the classic text format otherwise.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio
from aiohttp import web
from anyio.abc import TaskStatus
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder


class ObservabilityServer:
    def __init__(
        self,
        registry: CollectorRegistry,
        readiness: Callable[[], tuple[bool, str]],
        host: str,
        port: int,
    ) -> None:
        self._registry = registry
        self._readiness = readiness
        self._host = host
        self._port = port
        self.bound_port: int | None = None

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        return app

    async def _metrics(self, request: web.Request) -> web.Response:
        encode, content_type = choose_encoder(request.headers.get("Accept", ""))
        body = encode(self._registry)
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def _healthz(self, _: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def _readyz(self, _: web.Request) -> web.Response:
        ready, detail = self._readiness()
        return web.Response(text=detail + "\n", status=200 if ready else 503)

    async def run(self, *, task_status: TaskStatus[int] = anyio.TASK_STATUS_IGNORED) -> None:
        runner = web.AppRunner(self._app(), access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self._host, self._port)
            await site.start()
            server = site._server  # aiohttp exposes the bound socket only here
            sockets = getattr(server, "sockets", None) or []
            self.bound_port = int(sockets[0].getsockname()[1]) if sockets else self._port
            task_status.started(self.bound_port)
            await anyio.sleep_forever()
        finally:
            with anyio.CancelScope(shield=True):
                await runner.cleanup()
