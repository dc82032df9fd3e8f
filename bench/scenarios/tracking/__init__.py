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

import dataclasses
import time
from typing import Any

import anyio
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

from bench.harness.contenders import storage_params
from bench.harness.processes import EmulatorProcess
from bench.scenarios.tracking.config import (
    APP,
    CLI_POLL,
    CONTENDERS,
    JOB_DURATION,
    SCALE,
    VARIANTS,
    Variant,
    sweep_max,
    tracker_settings,
)
from bench.scenarios.tracking.contenders import Wait, waiter
from bench.scenarios.tracking.figures import epoch, history_ratios, row

# --- one contender, one variant ------------------------------------------------------------


async def environment(client: Any, wait: Wait, env: str, jobs: int, delays: list[float]) -> None:
    """``jobs`` storage jobs in ``env``, one after another, each tracked to terminal."""
    for index in range(jobs):
        response = await client.create_backend_storage(**storage_params(APP, env, index))
        stamp = epoch(await wait(env, response["JobId"]))
        if stamp is not None:
            delays.append(time.time() - stamp)


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
