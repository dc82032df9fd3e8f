"""Scenario 4, tracking cost, in the shape the worker produces: mutations are serialised per
environment, so an environment has at most **one** job of ours in flight at a time.

``E`` environments (quick 8, full 20); in each, ``N`` CreateBackendStorage jobs (quick 4,
full 10) run one after another: create a job, track it to COMPLETED/FAILED, create the next.
Job durations 30–120 s scaled down by ``SCALE``; every contender's time settings (sweep bounds,
list grace, poll period) are scaled alike.

Variants (emulator knobs): 0 or 500 past jobs in every environment (``history``), listed
newest first or oldest first (``list_order``). Contenders, for each variant:

* ``ours``: :class:`~orchestrator.tracker.JobTracker` as the worker configures it
  (``tracker_settings(Settings(queue_url="unused"))``, every duration field scaled by ``SCALE``);
* ``getbackendjob_every_2s``: the Amplify CLI's way, GetBackendJob every 2 s per job;
* ``list_sweep``: every ``sweep_max`` per environment, walk ListBackendJobs pages (no filter,
  25 per page) until the job is found or the pages end.

The emulator's call counters are global, so each contender runs against its **own emulator
process** (same command line, same knobs, reset before each variant); the three run at the
same time, the variants one after another. Reported per variant and contender: tracking calls
(ListBackendJobs + GetBackendJob) per job, detection delay (terminal UpdateTime → noticed)
p50/p99, jobs noticed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any

import anyio
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

from bench.harness import EmulatorProcess, contender, percentile, storage_params, worker_settings
from orchestrator.errors import OrchestratorError
from orchestrator.metrics import Metrics
from orchestrator.servicemodel import TERMINAL_JOB_STATUSES
from orchestrator.tracker import JobTracker, TrackerSettings

SCALE = 10.0
CLI_POLL = 2.0
JOB_DURATION = (30.0, 120.0)
JOB_LIMIT = 600.0  # seconds (unscaled) after which a job counts as never noticed
PAGE_SIZE = 25
APP = "track"
OPERATION = "CreateBackendStorage"
HISTORIES = (0, 500)
ORDERS = ("newest", "oldest")
CONTENDERS = ("ours", "getbackendjob_every_2s", "list_sweep")
#: Words naming a float field that is not a duration (a ratio, a factor): left unscaled.
_DIMENSIONLESS = ("factor", "ratio", "fraction", "share", "slack")

#: Wait for one job: (environment, JobId) → its terminal UpdateTime, or None if never noticed.
Wait = Callable[[str, str], Awaitable[str | None]]


@dataclasses.dataclass(frozen=True)
class Variant:
    """Emulator settings every contender runs under: past jobs per environment, list order."""

    history: int
    order: str

    @property
    def name(self) -> str:
        """The variant's key in the results (``history500_oldest``)."""
        return f"history{self.history}_{self.order}"

    def knobs(self) -> dict[str, Any]:
        """The emulator knobs of this variant."""
        return {"history": self.history, "list_order": self.order}


VARIANTS = tuple(Variant(h, o) for o in ORDERS for h in HISTORIES)


# --- time ----------------------------------------------------------------------------------


def _iso_epoch(value: str) -> float | None:
    """Epoch seconds of an ISO 8601 timestamp (``...Z`` allowed), None if unparsable."""
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def epoch(value: str | None) -> float | None:
    """Epoch seconds of a job's UpdateTime: ``orchestrator.timestamps.parse_timestamp`` when
    that module exists, else a local ISO parse."""
    if not value:
        return None
    try:
        parse: Callable[[str], float | None] = importlib.import_module(
            "orchestrator.timestamps"
        ).parse_timestamp
    except (ImportError, AttributeError):
        return _iso_epoch(value)
    return parse(value)


def _is_duration(spec: dataclasses.Field[Any]) -> bool:
    """A float field whose name does not say it is a ratio or a factor."""
    typed = spec.type in (float, "float", "float | None")
    return typed and not any(word in spec.name for word in _DIMENSIONLESS)


def tracker_settings() -> TrackerSettings:
    """The worker's tracker settings with every duration field divided by ``SCALE``."""
    settings = tracker_settings(worker_settings())
    scaled: dict[str, Any] = {
        spec.name: value / SCALE
        for spec in dataclasses.fields(settings)
        if _is_duration(spec) and isinstance(value := getattr(settings, spec.name), int | float)
    }
    return dataclasses.replace(settings, **scaled)


def sweep_max() -> float:
    """The worker's ``sweep_max``, scaled: the plain sweep's period and the detection bound."""
    return worker_settings().sweep_max / SCALE


# --- contenders ----------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def ours(url: str) -> AsyncIterator[Wait]:
    """The worker's AmplifyApi and JobTracker (scaled), running for the life of the context."""
    async with contender("ours", url) as client, anyio.create_task_group() as services:
        assert client.api is not None
        tracker = JobTracker(client.api, Metrics(), tracker_settings())
        await services.start(tracker.run)

        async def wait(env: str, job_id: str) -> str | None:
            try:
                result = await tracker.wait((APP, env), job_id, OPERATION, JOB_LIMIT / SCALE)
            except OrchestratorError:  # JobTimedOut
                return None
            return result.update_time if result.status in TERMINAL_JOB_STATUSES else None

        yield wait
        services.cancel_scope.cancel()


def cli_way(client: Any) -> Wait:
    """GetBackendJob every ``CLI_POLL`` s (scaled) until the job is terminal."""

    async def wait(env: str, job_id: str) -> str | None:
        with anyio.move_on_after(JOB_LIMIT / SCALE):
            while True:
                await anyio.sleep(CLI_POLL / SCALE)
                job = await client.get_backend_job(
                    AppId=APP, BackendEnvironmentName=env, JobId=job_id
                )
                if job.get("Status") in TERMINAL_JOB_STATUSES:
                    return str(job["UpdateTime"])
        return None

    return wait


async def find_job(client: Any, env: str, job_id: str) -> dict[str, Any] | None:
    """Walk ListBackendJobs pages (no filter) until ``job_id`` is listed or the pages end."""
    token: str | None = None
    while True:
        more = {"NextToken": token} if token else {}
        page = await client.list_backend_jobs(
            AppId=APP, BackendEnvironmentName=env, MaxResults=PAGE_SIZE, **more
        )
        for job in page.get("Jobs", []):
            if job.get("JobId") == job_id:
                return dict(job)
        token = page.get("NextToken")
        if not token:
            return None


def list_sweep(client: Any) -> Wait:
    """Every ``sweep_max`` (scaled), one paginated ListBackendJobs walk of the environment."""

    async def wait(env: str, job_id: str) -> str | None:
        with anyio.move_on_after(JOB_LIMIT / SCALE):
            while True:
                await anyio.sleep(sweep_max())
                job = await find_job(client, env, job_id)
                if job and job.get("Status") in TERMINAL_JOB_STATUSES:
                    return str(job["UpdateTime"])
        return None

    return wait


@contextlib.asynccontextmanager
async def waiter(name: str, url: str, client: Any) -> AsyncIterator[Wait]:
    """The contender called ``name``; the peers track with ``client`` (standard retries)."""
    if name == "ours":
        async with ours(url) as wait:
            yield wait
    else:
        yield cli_way(client) if name == "getbackendjob_every_2s" else list_sweep(client)


# --- one contender, one variant ------------------------------------------------------------


async def environment(client: Any, wait: Wait, env: str, jobs: int, delays: list[float]) -> None:
    """``jobs`` storage jobs in ``env``, one after another, each tracked to terminal."""
    for index in range(jobs):
        response = await client.create_backend_storage(**storage_params(APP, env, index))
        stamp = epoch(await wait(env, response["JobId"]))
        if stamp is not None:
            delays.append(time.time() - stamp)


def row(stats: dict[str, Any], delays: list[float], jobs: int) -> dict[str, Any]:
    """One contender's figures from its emulator's counters and its detection delays."""
    calls = stats["calls"]
    lists, gets = int(calls.get("ListBackendJobs", 0)), int(calls.get("GetBackendJob", 0))
    return {
        "jobs": jobs,
        "noticed": len(delays),
        "list_calls": lists,
        "get_calls": gets,
        "calls_per_job": round((lists + gets) / max(1, jobs), 3),
        "detection_p50_s": round(percentile(delays, 0.5), 3),
        "detection_p99_s": round(percentile(delays, 0.99), 3),
        "conflicts": int(stats.get("conflicts", 0)),
    }


async def measure(
    emulator: EmulatorProcess, name: str, envs: list[str], jobs: int
) -> dict[str, Any]:
    """Contender ``name`` over every environment at once, against its own ``emulator``."""
    delays: list[float] = []
    config = AioConfig(retries={"mode": "standard"}, max_pool_connections=128)
    began = time.perf_counter()
    async with get_session().create_client(
        "amplifybackend", endpoint_url=emulator.url, config=config
    ) as client:
        async with waiter(name, emulator.url, client) as wait, anyio.create_task_group() as group:
            for env in envs:
                group.start_soon(environment, client, wait, env, jobs, delays)
    stats = await anyio.to_thread.run_sync(emulator.stats)
    return {**row(stats, delays, len(envs) * jobs), "wall_s": round(time.perf_counter() - began, 1)}


# --- variants ------------------------------------------------------------------------------


def has_knobs(emulator: EmulatorProcess) -> bool:
    """Whether the emulator has the ``history`` and ``list_order`` knobs."""
    return {"history", "list_order"} <= set(emulator.stats()["config"])


def prepare(emulator: EmulatorProcess, variant: Variant, envs: list[str], knobs: bool) -> bool:
    """Same knobs on every contender's emulator, then a reset (which seeds the past jobs);
    False if the emulator did not seed them."""
    emulator.configure(
        rate=None,
        per_app_rate=None,
        apps={APP: envs},
        job_duration=[d / SCALE for d in JOB_DURATION],
        job_duration_dist="uniform",
        conflict_mode="reject",  # one job in flight per environment: a conflict is a bug
        **(variant.knobs() if knobs else {}),
    )
    emulator.reset()
    seeded = int(emulator.stats()["jobs"].get("history", 0))
    return seeded >= variant.history * len(envs)


async def run_variant(
    emulators: list[EmulatorProcess], variant: Variant, envs: list[str], jobs: int, knobs: bool
) -> dict[str, Any]:
    """Every contender at once, each on its own emulator prepared for ``variant``."""
    results: dict[str, Any] = variant.knobs()
    if not all([prepare(emulator, variant, envs, knobs) for emulator in emulators]):
        return {**results, "skipped": "the emulator did not seed the past jobs"}

    async def one(emulator: EmulatorProcess, name: str) -> None:
        results[name] = await measure(emulator, name, envs, jobs)

    async with anyio.create_task_group() as group:
        for emulator, name in zip(emulators, CONTENDERS, strict=True):
            group.start_soon(one, emulator, name)
    cli = results["getbackendjob_every_2s"]["calls_per_job"]
    results["ours_over_cli_calls"] = round(results["ours"]["calls_per_job"] / max(cli, 1e-9), 3)
    return results


def history_ratios(variants: dict[str, Any]) -> dict[str, float]:
    """Per listing order: ours' calls per job with 500 past jobs over with none."""
    ratios = {}
    for order in ORDERS:
        none, many = variants.get(f"history0_{order}"), variants.get(f"history500_{order}")
        if none and many and "ours" in none and "ours" in many:
            base = max(none["ours"]["calls_per_job"], 1e-9)
            ratios[order] = round(many["ours"]["calls_per_job"] / base, 3)
    return ratios


def _restore(emulator: EmulatorProcess, saved: dict[str, Any], knobs: bool) -> None:
    """Put back the shared emulator's knobs this scenario changed (not ``apps``)."""
    keys = ("rate", "per_app_rate", "job_duration", "job_duration_dist", "conflict_mode")
    restored = {key: saved[key] for key in keys if key in saved}
    if knobs:
        restored.update(history=saved["history"], list_order=saved["list_order"])
    emulator.configure(**restored)


async def run(emulator: EmulatorProcess, quick: bool) -> dict[str, Any]:
    env_count, jobs = (8, 4) if quick else (20, 10)
    envs = [f"env{i}" for i in range(env_count)]
    knobs = has_knobs(emulator)
    saved = emulator.stats()["config"]
    results: dict[str, Any] = {
        "environments": env_count,
        "jobs_per_environment": jobs,
        "jobs": env_count * jobs,
        "time_scale": SCALE,
        "cli_poll_scaled_s": CLI_POLL / SCALE,
        "sweep_max_scaled_s": sweep_max(),
        "detection_target_s": round(sweep_max() + 1 / SCALE, 3),
        "tracker_settings": dataclasses.asdict(tracker_settings()),
        "variants": {},
    }
    siblings = [EmulatorProcess(*emulator.args) for _ in CONTENDERS[1:]]
    try:
        for variant in VARIANTS:
            if not knobs and variant != Variant(0, "newest"):
                skipped = {"skipped": "the emulator has no history/list_order knobs"}
                results["variants"][variant.name] = {**variant.knobs(), **skipped}
                continue
            emulators = [emulator, *siblings]
            results["variants"][variant.name] = await run_variant(
                emulators, variant, envs, jobs, knobs
            )
    finally:
        for sibling in siblings:
            sibling.close()
        _restore(emulator, saved, knobs)
    results["ours_history_ratio"] = history_ratios(results["variants"])
    return results
