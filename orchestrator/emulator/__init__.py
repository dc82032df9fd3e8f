"""AmplifyBackend emulator: a real HTTP server speaking the service's rest-json protocol.

boto3 and aiobotocore clients work against it unchanged (``endpoint_url=emu.url``, any
credentials): every route, request field, response field and error shape comes from botocore's
AmplifyBackend model via :mod:`orchestrator.servicemodel`. It keeps apps, environments,
resources and jobs in memory, runs jobs on a lazily evaluated schedule, and injects rate
limits, faults and latency on demand. See ``docs/emulator.md``.

Modules: :mod:`.config` (knobs), :mod:`.protocol` (model-driven routing, wire format, SigV4
presence check), :mod:`.errors`, :mod:`.service` (the call pipeline), :mod:`.jobs` (schedule),
:mod:`.listing` (ListBackendJobs orders and tokens), :mod:`.timestamps` (clock, formats),
:mod:`.history` (past jobs), :mod:`.state`, :mod:`.effects` (what mutations do),
:mod:`.direct` (reads, immediate mutations), :mod:`.ratelimit`, :mod:`.faults`, :mod:`.stats`,
:mod:`.server` (aiohttp app), :mod:`.runner` (lifecycles), :mod:`.cli`.
"""

from orchestrator.emulator.config import EmulatorConfig
from orchestrator.emulator.runner import EmulatorHandle, EmulatorThread, run_emulator, serve
from orchestrator.emulator.service import APP_SCOPE, Emulator

__all__ = [
    "APP_SCOPE",
    "Emulator",
    "EmulatorConfig",
    "EmulatorHandle",
    "EmulatorThread",
    "run_emulator",
    "serve",
]
