"""The aiohttp application: model-built API routes plus the unsigned ``/_emulator/*`` admin API.

One route per operation of the service model (``protocol.bindings()``), registered with
aiohttp's router from the model's method and ``requestUri`` template; each route's handler is
a closure over its precompiled binding, so the hot path does no model lookups: signature
check -> parse -> :meth:`Emulator.call` -> serialise -> latency -> answer. No middleware runs
on API calls. ``ApiError`` becomes the model's status, ``x-amzn-ErrorType`` and JSON body; the
reset faults (before or after the effect) abort the transport: the client sees a dropped
connection.

Admin endpoints: ``GET /_emulator/stats``, ``GET /_emulator/jobs``, ``GET|POST
/_emulator/config``, ``POST /_emulator/reset``, ``GET /_emulator/health``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from orchestrator.emulator.errors import ApiError
from orchestrator.emulator.faults import LATENCY_SPIKE
from orchestrator.emulator.protocol import (
    Binding,
    bindings,
    error_body,
    parse_request,
    response_body,
    signature_error,
)
from orchestrator.emulator.service import ConnectionReset, Emulator

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
EMULATOR_KEY = web.AppKey("emulator", Emulator)
JSON = "application/json"


def build_app(emulator: Emulator) -> web.Application:
    app = web.Application()
    app[EMULATOR_KEY] = emulator
    for binding in bindings():
        app.router.add_route(binding.method, binding.path, _api_handler(emulator, binding))
    app.router.add_get("/_emulator/stats", _stats)
    app.router.add_get("/_emulator/jobs", _jobs)
    app.router.add_get("/_emulator/config", _get_config)
    app.router.add_post("/_emulator/config", _post_config)
    app.router.add_post("/_emulator/reset", _reset)
    app.router.add_get("/_emulator/health", _health)
    return app


def _api_handler(emulator: Emulator, binding: Binding) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        return await _serve(emulator, binding, request)

    handle.__name__ = binding.operation
    return handle


async def _serve(emulator: Emulator, binding: Binding, request: web.Request) -> web.Response:
    operation = binding.operation
    counters = emulator.counters
    counters.calls[operation] += 1
    headers = {"x-amzn-RequestId": str(uuid.uuid4())}
    try:
        body = await _answer(emulator, binding, request)
        status = 200
    except ApiError as error:
        status, body = error.status, error_body(error)
        headers["x-amzn-ErrorType"] = error.code
        counters.error(status)
    except ConnectionReset:
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=500)  # never delivered: the connection is gone
    delay, spiked = emulator.faults.delay(operation)
    if spiked:
        counters.faults[LATENCY_SPIKE] += 1
    if delay > 0.0:
        await asyncio.sleep(delay)
    counters.responses[str(status)] += 1
    return web.Response(body=body, status=status, headers=headers, content_type=JSON)


async def _answer(emulator: Emulator, binding: Binding, request: web.Request) -> bytes:
    if emulator.config.require_signature:
        refusal = signature_error(request.headers)
        if refusal is not None:
            emulator.counters.unsigned += 1
            raise refusal
    raw = await request.read() if binding.body else b""
    params = parse_request(binding, request.match_info, request.query, request.headers, raw)
    result = emulator.call(binding.operation, params, emulator.time.now())
    return response_body(binding, result)


def _emulator(request: web.Request) -> Emulator:
    return request.app[EMULATOR_KEY]


async def _stats(request: web.Request) -> web.Response:
    return web.json_response(_emulator(request).stats())


async def _jobs(request: web.Request) -> web.Response:
    return web.json_response(_emulator(request).jobs())


async def _get_config(request: web.Request) -> web.Response:
    return web.json_response(_emulator(request).config.as_dict())


async def _post_config(request: web.Request) -> web.Response:
    try:
        updates: Any = await request.json()
        if not isinstance(updates, dict):
            raise ValueError("expected a JSON object of setting names and values")
        config = _emulator(request).configure(**updates)
    except ValueError as exc:  # includes json.JSONDecodeError
        return web.json_response({"message": str(exc)}, status=400)
    return web.json_response(config.as_dict())


async def _reset(request: web.Request) -> web.Response:
    _emulator(request).reset()
    return web.json_response({"reset": True})


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})
