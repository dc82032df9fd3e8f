"""The emulated service, transport aside: one API call in, a result (or an ApiError) out.

:meth:`Emulator.call` is the pipeline every API call goes through once its request is parsed:
rate limits (global, then per AppId) -> faults decided before any effect (reset, 504) ->
due job transitions applied -> botocore validation of the parameters -> the operation ->
the faults decided after the effect (reset_after, 500). Operations are classified by the
service model: job control (GetBackendJob, ListBackendJobs, UpdateBackendJob), job-creating
mutations (``servicemodel.creates_job``), immediate mutations and reads (:mod:`.direct`).

Job-creating mutations are filed under their ``BackendEnvironmentName``; those without one
(RemoveAllBackends, CreateBackendConfig) under the reserved environment ``_app``, which
CreateBackendConfig returns as its BackendEnvironmentName and ListBackendJobs accepts for any
existing app. Job control needs the app and environment to be known: existing in state, or
having jobs filed (a deleted environment's jobs stay listable). Environments seeded from
``apps`` or made by ``auto_create`` get ``history`` finished jobs (:mod:`.history`). Job
timestamps are written in ``timestamp_format`` (:mod:`.timestamps`) when an answer is built.
"""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from orchestrator import servicemodel
from orchestrator.emulator.config import MAX_PAGE_SIZE, EmulatorConfig
from orchestrator.emulator.direct import DIRECT
from orchestrator.emulator.effects import EFFECTS
from orchestrator.emulator.errors import bad_request, gateway_timeout, internal_error, not_found
from orchestrator.emulator.errors import throttled as throttled_error
from orchestrator.emulator.faults import RESET, RESET_AFTER, FaultInjector
from orchestrator.emulator.history import finished_jobs
from orchestrator.emulator.jobs import EnvKey, Job, JobBoard
from orchestrator.emulator.ratelimit import RateLimiter
from orchestrator.emulator.state import BackendState
from orchestrator.emulator.stats import Stats
from orchestrator.emulator.timestamps import Timebase

APP_SCOPE = "_app"
Params = dict[str, Any]
Result = dict[str, Any]


class ConnectionReset(Exception):
    """The call must end with an aborted connection (the reset and reset_after faults)."""


class Emulator:
    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.time = Timebase()
        self._started = self.time.now()
        self._job_control: dict[str, Callable[[Params, float], Result]] = {
            "GetBackendJob": self._get_job,
            "ListBackendJobs": self._list_jobs,
            "UpdateBackendJob": self._update_job,
        }
        self.reset()

    # -- administration ---------------------------------------------------------------------

    def reset(self) -> None:
        """Forget all state, jobs and counters; keep the config; re-seed the configured apps."""
        self.rng = random.Random(self.config.seed)
        self.counters = Stats()
        self.state = BackendState()
        self.board = JobBoard(self._complete)
        self._apply_config()
        self._seed_apps()

    def configure(self, **updates: Any) -> EmulatorConfig:
        """Change knobs at runtime (buckets re-created; apps added; seed re-seeds the RNG)."""
        self.config = self.config.with_updates(updates)
        if "seed" in updates:
            self.rng.seed(self.config.seed)
        self._apply_config()
        if "apps" in updates:
            self._seed_apps()
        return self.config

    def _apply_config(self) -> None:
        cfg = self.config
        now = self.time.now()
        self.limiter = RateLimiter(cfg.rate, cfg.burst, cfg.per_app_rate, cfg.per_app_burst, now)
        self.faults = FaultInjector(cfg, self.rng)
        self._fail_pattern = re.compile(cfg.fail_pattern) if cfg.fail_pattern else None
        self.show_time = self.time.formatter(cfg.timestamp_format)
        self.state.show_time = self.show_time
        self.board.salt = str(cfg.seed)

    def _seed_apps(self) -> None:
        """Add the configured apps' missing environments, each with its history."""
        now = self.time.now()
        for key in self.state.seed(self.config.apps, now):
            self._add_history(key, now)

    def _add_history(self, key: EnvKey, now: float) -> None:
        if self.config.history > 0:
            jobs = finished_jobs(key, self.config.history, self.config.seed, now)
            self.board.add_history(key, jobs)

    def stats(self) -> dict[str, Any]:
        now = self.time.now()
        self.board.advance(now)
        document = self.counters.as_dict(self.board.counts())
        document["uptime"] = round(now - self._started, 3)
        document["config"] = self.config.as_dict()
        return document

    def jobs(self) -> list[dict[str, Any]]:
        now = self.time.now()
        self.board.advance(now)
        ordered = sorted(self.board, key=lambda job: (job.created, job.seq))
        return [job.admin_view(now, self.time) for job in ordered]

    # -- the call pipeline ------------------------------------------------------------------

    def call(self, operation: str, params: Params, now: float) -> Result:
        """Serve one parsed API call (raises ApiError or ConnectionReset)."""
        refused = self.limiter.refused(params.get("AppId"), now)
        if refused is not None:
            self.counters.throttle(operation, refused)
            raise throttled_error(refused)
        fault = self.faults.before_effect(operation)
        if fault is not None:
            self.counters.faults[fault] += 1
            if fault == RESET:
                raise ConnectionReset
            raise gateway_timeout()
        self.board.advance(now)
        problems = servicemodel.validate_params(operation, params)
        if problems:
            raise bad_request("; ".join(problems))
        result = self._dispatch(operation, params, now)
        fault = self.faults.after_effect(operation)
        if fault is not None:
            self.counters.faults[fault] += 1
            if fault == RESET_AFTER:
                raise ConnectionReset
            raise internal_error()
        return result

    def _dispatch(self, operation: str, params: Params, now: float) -> Result:
        control = self._job_control.get(operation)
        if control is not None:
            return control(params, now)
        if servicemodel.creates_job(operation):
            return self._mutate(operation, params, now)
        if servicemodel.is_mutation(operation):
            self._auto_create(operation, params, now)
            result = DIRECT[operation](self.state, params, self.rng)
            self.counters.mutations[operation] += 1
            return result
        return DIRECT[operation](self.state, params, self.rng)

    # -- job-creating mutations -------------------------------------------------------------

    def _mutate(self, operation: str, params: Params, now: float) -> Result:
        key = (params["AppId"], params.get("BackendEnvironmentName") or APP_SCOPE)
        conflict = self.board.active(key) > 0
        if conflict and self.config.conflict_mode == "reject":
            self.counters.conflicts += 1
            raise bad_request(
                f"{operation} conflicts with a job still running on {key[0]}/{key[1]}; "
                "wait for it to finish"
            )
        self._auto_create(operation, params, now)
        EFFECTS[operation].check(self.state, params)
        if conflict:
            self.counters.conflicts += 1
        job = self.board.create(
            self._new_id(),
            operation,
            key,
            params,
            now,
            self._duration(),
            self.config.visibility_delay,
            self._failure(operation, params),
        )
        self.counters.mutations[operation] += 1
        return {
            "AppId": key[0],
            "BackendEnvironmentName": key[1],
            "JobId": job.job_id,
            "Operation": operation,
            "Status": job.status,
        }

    def _auto_create(self, operation: str, params: Params, now: float) -> None:
        if not self.config.auto_create or operation == "CreateBackend":
            return
        app = self.state.ensure_app(params["AppId"])
        env = params.get("BackendEnvironmentName")
        if env and env not in app.envs:
            app.ensure_env(env, now)
            self._add_history((app.app_id, env), now)

    def _complete(self, job: Job) -> None:
        EFFECTS[job.origin].apply(self.state, job.params, job.updated)

    def _new_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _duration(self) -> float:
        low, high = self.config.job_duration
        dist = self.config.job_duration_dist
        if dist == "fixed" or high <= low:
            return low
        if dist == "uniform":
            return self.rng.uniform(low, high)
        drawn = self.rng.expovariate(2.0 / (low + high))
        return min(high, max(low, drawn))

    def _failure(self, operation: str, params: Params) -> str | None:
        pattern = self._fail_pattern
        if pattern is not None and any(pattern.search(v) for v in _strings(params)):
            return f"{operation} failed: a parameter matches fail_pattern {pattern.pattern!r}"
        ratio = self.config.fail_ratio
        if ratio > 0.0 and self.rng.random() < ratio:
            return f"{operation} failed (injected failure, fail_ratio={ratio:g})"
        return None

    # -- job control ------------------------------------------------------------------------

    def _job_key(self, params: Params) -> EnvKey:
        key: EnvKey = (params["AppId"], params["BackendEnvironmentName"])
        app = self.state.apps.get(key[0])
        if app is None and not self.board.knows_app(key[0]):
            raise not_found("app", f"app {key[0]!r} not found")
        known = key[1] == APP_SCOPE or self.board.knows_env(key)
        if not known and (app is None or key[1] not in app.envs):
            raise not_found("environment", f"backend environment {key[1]!r} not found")
        return key

    def _get_job(self, params: Params, now: float) -> Result:
        return self.board.find(self._job_key(params), params["JobId"], now).api_view(self.show_time)

    def _list_jobs(self, params: Params, now: float) -> Result:
        key = self._job_key(params)
        limit = params.get("MaxResults", self.config.list_page_size)
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise bad_request(f"MaxResults must be between 1 and {MAX_PAGE_SIZE}")
        filters = {k: params[k] for k in ("JobId", "Operation", "Status") if params.get(k)}
        if "Operation" in filters:
            filters["Operation"] = (
                servicemodel.resolve_operation(filters["Operation"]) or (filters["Operation"])
            )
        order, token = self.config.list_order, params.get("NextToken")
        jobs, following = self.board.page(key, order, now, filters, limit, token)
        return {"Jobs": [job.api_view(self.show_time) for job in jobs], "NextToken": following}

    def _update_job(self, params: Params, now: float) -> Result:
        job = self.board.find(self._job_key(params), params["JobId"], now)
        self.board.update(job, params.get("Status"), params.get("Operation"), now)
        return job.api_view(self.show_time)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
