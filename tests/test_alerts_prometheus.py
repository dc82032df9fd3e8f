"""Every alert rule proven both ways on a real Prometheus scraping real workers.

Each test is one Prometheus run (the Debian package's binary) scraping in-process workers every
second; the workers talk to moto's SQS and to AmplifyBackend emulators over loopback. The rules
are a time-compressed copy of grafana/alerts/orchestrator.rules.yaml, generated from it so they
cannot drift: every range selector, subquery step, ``offset`` and ``for:`` divided by
:data:`FACTOR` (one production minute is one second here), thresholds untouched; rules are
evaluated every second and the workers sample the queues every 15 s / FACTOR.

For every alert, a scenario must make it pending (polled on /api/v1/alerts with a deadline),
and another must not: once the scenario is over, the rule group is evaluated again (its
``lastEvaluation`` on /api/v1/rules) and the alert must be neither pending nor firing, nor have
fired at any moment of the run (the ALERTS series). :data:`FIRES` and :data:`QUIET` say which
run proves what; a test checks they cover every rule of the real file.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import math
import re
import shutil
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest
import yaml
from botocore.exceptions import ClientError

from orchestrator import monitor, servicemodel
from orchestrator.aws import map_error
from orchestrator.emulator import EmulatorConfig, run_emulator
from orchestrator.emulator.cli import add_arguments, config_from_args
from orchestrator.errors import ApiRejected
from orchestrator.settings import Settings
from orchestrator.testing import (
    Queues,
    amplify_client,
    create_queues,
    drain,
    running_worker,
    send,
    stop_process,
    storage_request,
)
from orchestrator.testing.processes import free_port
from orchestrator.worker import Started, Worker

ROOT = Path(__file__).parents[1]
RULES = ROOT / "grafana" / "alerts" / "orchestrator.rules.yaml"
MISSING = "install the Debian package prometheus (`apt-get install prometheus`; CI's .ci/run does)"
#: Production seconds per test second.
FACTOR = 60
EVALUATION = 1.0  # seconds between rule evaluations (and scrapes)
#: Which run makes each alert pending, and which run proves it stays quiet.
FIRES = {
    "denied": {
        "OrchestratorRequestFailureRatioHigh",
        "OrchestratorDeadLetters",
        "OrchestratorWorkerDown",
    },
    "jobs": {
        "OrchestratorThrottlingSustained",
        "OrchestratorJobFailureRatioHigh",
        "OrchestratorJobsStuck",
        "OrchestratorRequestFailureRatioHigh",
    },
    "stuck": {
        "OrchestratorBacklogNotDraining",
        "OrchestratorDeadLetterMovesFailing",
        "OrchestratorWorkerDown",
        "OrchestratorAbsent",
    },
    "healthy": {"OrchestratorNotReady"},
}
QUIET = {
    "denied": {
        "OrchestratorJobFailureRatioHigh",
        "OrchestratorJobsStuck",
        "OrchestratorThrottlingSustained",
        "OrchestratorDeadLetterMovesFailing",
        "OrchestratorAbsent",
    },
    "jobs": {
        "OrchestratorDeadLetters",
        "OrchestratorDeadLetterMovesFailing",
        "OrchestratorBacklogNotDraining",
        "OrchestratorAbsent",
    },
    "stuck": {
        "OrchestratorRequestFailureRatioHigh",
        "OrchestratorJobFailureRatioHigh",
        "OrchestratorJobsStuck",
        "OrchestratorThrottlingSustained",
        "OrchestratorDeadLetters",
    },
    "healthy": {
        "OrchestratorBacklogNotDraining",
        "OrchestratorDeadLetters",
        "OrchestratorRequestFailureRatioHigh",
        "OrchestratorJobFailureRatioHigh",
        "OrchestratorJobsStuck",
        "OrchestratorThrottlingSustained",
        "OrchestratorDeadLetterMovesFailing",
        "OrchestratorAbsent",
    },
}
#: Per-instance alerts: quiet for the named run's live workers (checked by instance).
QUIET_PER_WORKER = {
    "healthy": {"OrchestratorWorkerDown", "OrchestratorNotReady"},
    "denied": {"OrchestratorNotReady"},
}


def binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"`{name}` not found: {MISSING}")
    return path


# --- the time-compressed rules ---------------------------------------------------------------

_UNITS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_DURATION = r"(?:\d+(?:ms|[smhdw]))+"
_RANGE = re.compile(rf"\[\s*({_DURATION})\s*(?::\s*({_DURATION})?\s*)?\]")
_OFFSET = re.compile(rf"\boffset\s+({_DURATION})")
_ANY_DURATION = re.compile(rf"(?<![\w.]){_DURATION}(?!\w)")
_STRING = re.compile(r"""("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')""")
_RULE_KEYS = {"alert", "expr", "for", "labels", "annotations"}


def millis(duration: str) -> int:
    return sum(int(n) * _UNITS[unit] for n, unit in re.findall(r"(\d+)(ms|[smhdw])", duration))


def shrink(duration: str) -> str:
    """``duration`` divided by FACTOR, as Prometheus writes durations (``15m`` -> ``15s``)."""
    ms = millis(duration) // FACTOR
    assert ms > 0, duration
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def compress_expr(expr: str) -> str:
    """Every range, subquery step and offset of ``expr`` shrunk (string literals left alone);
    ValueError if ``expr`` holds a duration anywhere else (a construct this function would
    silently leave at full length)."""
    rewritten = 0

    def ranged(match: re.Match[str]) -> str:
        nonlocal rewritten
        window, step = match.group(1), match.group(2)
        rewritten += 1 + (step is not None)
        if ":" not in match.group(0):
            return f"[{shrink(window)}]"
        return f"[{shrink(window)}:{shrink(step) if step else ''}]"

    def offset(match: re.Match[str]) -> str:
        nonlocal rewritten
        rewritten += 1
        return f"offset {shrink(match.group(1))}"

    parts = _STRING.split(expr)  # odd indexes are the string literals
    code = parts[::2]
    found = sum(len(_ANY_DURATION.findall(part)) for part in code)
    parts[::2] = [_OFFSET.sub(offset, _RANGE.sub(ranged, part)) for part in code]
    if rewritten != found:
        raise ValueError(f"{found} durations, {rewritten} compressed: {expr}")
    return "".join(parts)


def compressed_rules(source: Path = RULES) -> dict[str, Any]:
    document = yaml.safe_load(source.read_text())
    for group in document["groups"]:
        assert set(group) == {"name", "rules"}, f"group keys the compression ignores: {group}"
        for rule in group["rules"]:
            unknown = set(rule) - _RULE_KEYS
            assert not unknown, f"{rule['alert']}: keys the compression ignores: {unknown}"
            rule["expr"] = compress_expr(rule["expr"])
            if "for" in rule:
                rule["for"] = shrink(rule["for"])
    return document


def rule(name: str) -> dict[str, Any]:
    """The compressed rule ``name``."""
    (found,) = [r for g in compressed_rules()["groups"] for r in g["rules"] if r["alert"] == name]
    return found


def alert_names() -> set[str]:
    return {r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]}


def test_compression_shrinks_every_duration_and_nothing_else() -> None:
    """1. Ranges, subqueries (window and step) and offsets are divided by FACTOR; numbers,
       thresholds and label values are not. 2. A duration anywhere else is refused.
    3. The compressed copy of the real file keeps every rule, and no expression of it still
       holds a minute-scale duration."""
    expr = 'sum(increase(x{a="5m"}[15m])) > 100 and max(y offset 10m) > deriv(z[1h:1m]) * 0.10'
    assert compress_expr(expr) == (
        'sum(increase(x{a="5m"}[15s])) > 100 and max(y offset 10s) > deriv(z[60s:1s]) * 0.10'
    )
    assert shrink("90s") == "1500ms" and shrink("2m") == "2s"
    with pytest.raises(ValueError, match="2 durations, 1 compressed"):
        compress_expr("rate(x[5m]) @ 5m")
    rules = [r for g in compressed_rules()["groups"] for r in g["rules"]]
    assert {r["alert"] for r in rules} == alert_names()
    for rule in rules:
        assert not re.search(r"\d+[mhdw]\b", rule["expr"] + rule.get("for", "")), rule["alert"]


def test_every_alert_is_proven_both_ways() -> None:
    """Every alert of the real rules file has a run that fires it and one that keeps it quiet."""
    fired = set().union(*FIRES.values())
    quiet = set().union(*QUIET.values(), *QUIET_PER_WORKER.values())
    assert fired == alert_names(), fired ^ alert_names()
    assert quiet == alert_names(), quiet ^ alert_names()


# --- the emulator's AccessDenied knob ----------------------------------------------------------


async def test_fault_403_answers_access_denied_as_aws_does() -> None:
    """1. ``--fault-403 1 --fault-operations CreateBackendStorage`` reaches the config.
    2. The call is answered 403 ``AccessDeniedException`` with IAM's message, parsed by
       botocore like the real service's; nothing happened (no job); other operations pass.
    3. The worker maps it to a permanent error (a request FAILED ``client_error``)."""
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--fault-403", "1", "--fault-operations", "CreateBackendStorage"])
    config = config_from_args(args)
    assert config.fault_403_ratio == 1.0
    config = EmulatorConfig(
        apps={"app1": ["dev"]}, fault_403_ratio=1.0, fault_operations=config.fault_operations
    )
    async with run_emulator(config) as emu, amplify_client_on(emu.url) as client:
        params = storage_request("r", "app1", "dev", "s")["params"]
        with pytest.raises(ClientError) as caught:
            await client.create_backend_storage(**params)
        response = caught.value.response
        assert response["Error"]["Code"] == "AccessDeniedException"
        assert "not authorized to perform: amplifybackend:CreateBackendStorage" in str(
            response["Error"]["Message"]
        )
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 403
        assert emu.jobs() == []
        await client.list_backend_jobs(AppId="app1", BackendEnvironmentName="dev")
        assert isinstance(map_error(caught.value), ApiRejected)
        assert emu.stats()["responses"]["403"] == 1


@contextlib.asynccontextmanager
async def amplify_client_on(url: str) -> AsyncIterator[Any]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_ENDPOINT_URL_AMPLIFYBACKEND", url)
        async with amplify_client() as client:
            yield client


# --- a real Prometheus -----------------------------------------------------------------------


@contextlib.contextmanager
def silent_target() -> Iterator[str]:
    """A port that accepts connections and never answers: its scrapes time out."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield f"127.0.0.1:{sock.getsockname()[1]}"


def _timestamp(text: str) -> float:
    """An RFC 3339 time as Go writes it (nanoseconds) -> epoch seconds."""
    text = re.sub(r"(\.\d{6})\d*", r"\1", text).replace("Z", "+00:00")
    return datetime.fromisoformat(text).timestamp()


@dataclass
class Prometheus:
    url: str
    http: aiohttp.ClientSession
    log: Path
    started: float

    async def api(self, path: str, **params: str) -> Any:
        async with self.http.get(f"{self.url}/api/v1/{path}", params=params) as response:
            body = await response.json()
        assert body["status"] == "success", body
        return body["data"]

    async def query(self, expr: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = (await self.api("query", query=expr))["result"]
        return result

    async def value(self, expr: str) -> float | None:
        result = await self.query(expr)
        return float(result[0]["value"][1]) if result else None

    async def alerts(self, name: str, **labels: str) -> list[dict[str, Any]]:
        every = (await self.api("alerts"))["alerts"]
        return [
            a
            for a in every
            if a["labels"]["alertname"] == name and labels.items() <= a["labels"].items()
        ]

    async def groups(self) -> list[dict[str, Any]]:
        groups: list[dict[str, Any]] = (await self.api("rules"))["groups"]
        return groups

    async def until(
        self, check: Callable[[], Awaitable[Any]], what: str, deadline: float = 30.0
    ) -> Any:
        """Poll ``check()`` until it returns something true; fail naming ``what``."""
        with anyio.move_on_after(deadline):
            while True:
                # Polling is the only option: the state lives in another process, behind HTTP.
                if result := await check():
                    return result
                await anyio.sleep(0.25)
        try:
            alerts = (await self.api("alerts"))["alerts"]
            active = str([(a["labels"]["alertname"], a["state"]) for a in alerts])
        except aiohttp.ClientError as exc:
            active = f"unknown ({exc})"
        pytest.fail(f"{what}: not within {deadline} s; active alerts: {active}; {self.tail()}")

    async def until_active(
        self,
        name: str,
        state: str = "pending",
        deadline: float = 30.0,
        since: float | None = None,
        **labels: str,
    ) -> None:
        """Wait until ``name`` is, or was at some evaluation since ``since`` (default: the
        run's start), pending or firing (``state="firing"``: firing). The ALERTS series keeps
        a state that lasted one evaluation between two polls, or while another alert was
        being waited for."""
        states = ("pending", "firing") if state == "pending" else ("firing",)

        async def seen() -> bool:
            if any(a["state"] in states for a in await self.alerts(name, **labels)):
                return True
            return any([await self.ever(name, s, since, **labels) for s in states])

        await self.until(seen, f"{name} {state}", deadline)

    async def evaluated(self, times: int = 2) -> None:
        """Wait until every rule group was evaluated ``times`` intervals after now (so a
        scrape taken after now has been judged), and its rules are healthy."""
        after = time.time() + times * EVALUATION

        async def done() -> bool:
            groups = await self.groups()
            unhealthy = [r for g in groups for r in g["rules"] if r["health"] == "err"]
            assert not unhealthy, unhealthy
            return all(_timestamp(g["lastEvaluation"]) >= after for g in groups)

        await self.until(done, "rule evaluation", deadline=times * EVALUATION + 15)

    async def ever(self, name: str, state: str, since: float | None = None, **labels: str) -> bool:
        """Whether ``name`` was in ``state`` at any evaluation since ``since`` (default: since
        the rules were loaded)."""
        window = max(1, int(time.time() - (self.started if since is None else since)))
        matchers = "".join(f', {k}="{v}"' for k, v in labels.items())
        series = f'ALERTS{{alertname="{name}", alertstate="{state}"{matchers}}}'
        return bool(await self.query(f"count_over_time({series}[{window}s])"))

    async def assert_quiet(self, names: set[str], evaluate: bool = True, **labels: str) -> None:
        """After the scenario: evaluated again (unless the caller just waited for that), each
        of ``names`` neither pending nor firing, and none ever fired during the run."""
        if evaluate:
            await self.evaluated()
        for name in sorted(names):
            active = await self.alerts(name, **labels)
            assert not active, (name, active)
            if await self.ever(name, "firing", **labels):
                pytest.fail(f"{name} fired during the run: {await self.history(name)}")

    async def history(self, name: str) -> str:
        """The alert's states and the targets' health over the run, for failure messages."""
        window = math.ceil(time.time() - self.started) + 2
        lines = []
        for expr in (f'ALERTS{{alertname="{name}"}}', "up", "scrape_duration_seconds"):
            for series in (await self.api("query", query=f"{expr}[{window}s]"))["result"]:
                points = [f"{float(t) - self.started:.0f}s={v[:5]}" for t, v in series["values"]]
                lines.append(f"{series['metric']}: {' '.join(points)}")
        return "\n".join(lines)

    async def ready(self) -> bool:
        try:
            async with self.http.get(f"{self.url}/-/ready") as response:
                return response.status == 200
        except aiohttp.ClientError:
            return False

    def tail(self) -> str:
        return "prometheus log: " + " | ".join(self.log.read_text().splitlines()[-5:])


@contextlib.asynccontextmanager
async def prometheus(tmp_path: Path, targets: list[str]) -> AsyncIterator[Prometheus]:
    """Prometheus scraping ``targets`` (job "orchestrator") every second, its look-back
    compressed too. The time-compressed rules are loaded (a configuration reload) only once
    every target has been scraped: Prometheus starts scraping about 5 s after it starts (its
    discovery updates are throttled) but evaluates rules at once, which would judge the
    first seconds on no data at all (OrchestratorAbsent pending with its for: of 5 s)."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump(compressed_rules(), sort_keys=False))
    config: dict[str, Any] = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {"job_name": "orchestrator", "static_configs": [{"targets": targets}]},
        ],
    }
    config_file = tmp_path / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config))
    port = free_port()
    command = [
        binary("prometheus"),
        f"--config.file={config_file}",
        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
        f"--query.lookback-delta={shrink('5m')}",
        "--web.enable-lifecycle",
        "--log.level=warn",
    ]
    log_path = tmp_path / "prometheus.log"
    with log_path.open("wb") as log:
        process = await anyio.open_process(command, stdout=log, stderr=log)
        url = f"http://127.0.0.1:{port}"
        try:
            async with aiohttp.ClientSession() as http:
                prom = Prometheus(url, http, log_path, time.time())
                await prom.until(prom.ready, "prometheus ready")

                async def scraped() -> bool:
                    return len(await prom.query('up{job="orchestrator"}')) == len(targets)

                await prom.until(scraped, "every target scraped")
                config["rule_files"] = [str(rules)]
                config_file.write_text(yaml.safe_dump(config))
                async with http.post(f"{url}/-/reload") as response:
                    assert response.status == 200, await response.text()
                await prom.until(prom.groups, "rules loaded")
                prom.started = time.time()
                yield prom
        finally:
            await stop_process(process)


# --- workers -----------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def queue_sampling(monkeypatch: pytest.MonkeyPatch) -> None:
    """The workers sample queue depth every 15 s; compressed time needs it every 15 s / FACTOR
    (the one production period that is not a setting)."""
    sample = functools.partial(monitor.sample_queue_depth, period=15.0 / FACTOR)
    monkeypatch.setattr(monitor, "sample_queue_depth", sample)


@pytest.fixture
def stack(sqs: Any, monkeypatch: pytest.MonkeyPatch) -> Stack:
    return Stack(sqs, monkeypatch)


@dataclass
class Stack:
    sqs: Any
    monkeypatch: pytest.MonkeyPatch

    @contextlib.asynccontextmanager
    async def worker(
        self, emulator_url: str, settings: Settings
    ) -> AsyncIterator[tuple[Worker, Started, str]]:
        """A worker on ``emulator_url`` (its clients read the endpoint when it starts); its
        scrape target."""
        self.monkeypatch.setenv("AWS_ENDPOINT_URL_AMPLIFYBACKEND", emulator_url)
        async with running_worker(settings) as (worker, started):
            yield worker, started, f"127.0.0.1:{started.metrics_port}"

    async def queues(self, **options: Any) -> Queues:
        return await create_queues(self.sqs, **options)


def invalid(request_id: str) -> str:
    return json.dumps({"request_id": request_id, "operation": "CreateBackendAuth", "params": {}})


def requests(prefix: str, count: int, envs: list[str], resource: str = "s") -> list[Any]:
    return [
        storage_request(f"{prefix}-{i}", "app1", envs[i % len(envs)], f"{resource}{i}")
        for i in range(count)
    ]


ENVS = [f"e{i}" for i in range(10)]


async def test_denied_mutations_and_invalid_requests(
    stack: Stack, sqs: Any, tmp_path: Path
) -> None:
    """1. Every mutation is answered 403 AccessDeniedException; 30 requests are sent, and
       invalid requests keep coming; a second target accepts scrapes but never answers.
    2. Pending: OrchestratorRequestFailureRatioHigh (30/30 FAILED client_error, no job),
       OrchestratorDeadLetters (moves), OrchestratorWorkerDown for the silent target only.
    3. Quiet: the job failure ratio and JobsStuck (no job was ever made: the on-call gap the
       request ratio closes), throttling (403 is not a throttle), DLQ moves succeed, the
       worker is present and ready."""
    emulator = EmulatorConfig(
        apps={"app1": ENVS}, fault_403_ratio=1.0, fault_operations=servicemodel.mutations()
    )
    queues = await stack.queues()
    async with (
        run_emulator(emulator) as emu,
        stack.worker(emu.url, queues.settings()) as (_, _, target),
    ):
        with silent_target() as silent:
            async with prometheus(tmp_path, [target, silent]) as prom:
                await send(sqs, queues.main, requests("denied", 30, ENVS))
                events = await drain(sqs, queues.results, 30, deadline=60)
                assert {(e["outcome"], e["reason"]) for e in events} == {("FAILED", "client_error")}
                async with anyio.create_task_group() as tg:
                    tg.start_soon(keep_sending_invalid, sqs, queues.main, "bad")
                    await prom.until_active("OrchestratorRequestFailureRatioHigh")
                    await prom.until_active("OrchestratorDeadLetters")
                    await prom.until_active("OrchestratorWorkerDown", instance=silent)
                    tg.cancel_scope.cancel()
                assert await prom.value("sum(orchestrator_jobs_finished_total)") == 0
                assert emu.jobs() == []
                assert await prom.value("sum(orchestrator_dlq_moves_total)")
                await prom.assert_quiet(QUIET["denied"])
                await prom.assert_quiet(QUIET_PER_WORKER["denied"], evaluate=False, instance=target)
                assert not await prom.alerts("OrchestratorWorkerDown", instance=target)


async def keep_sending_invalid(sqs: Any, queue_url: str, prefix: str) -> None:
    """An invalid request every half second until cancelled."""
    for i in range(10_000):
        await send(sqs, queue_url, [invalid(f"{prefix}-{i}")])
        await anyio.sleep(0.5)


async def test_throttling_failed_jobs_and_a_job_timeout(
    stack: Stack, sqs: Any, tmp_path: Path
) -> None:
    """1. Worker A calls an emulator limited to 4 calls/s (starting at 50/s) whose jobs FAIL
       ("doomed"); worker B calls one whose jobs never end, with a 1.5 s job timeout.
    2. Pending: throttling, the job failure ratio, the request failure ratio (job_failed),
       and OrchestratorJobsStuck on B's first (and only) timeout.
    3. Quiet: no dead letter, no refused move, no backlog; both workers present."""
    limited = EmulatorConfig(
        apps={"app1": ENVS}, rate=4.0, burst=1, fail_pattern="doomed", job_duration=(0.1, 0.2)
    )
    endless = EmulatorConfig(apps={"app1": ["dev"]}, job_duration=(3600.0, 3600.0))
    qa, qb = await stack.queues(), await stack.queues()
    async with (
        run_emulator(limited) as emu_a,
        run_emulator(endless) as emu_b,
        stack.worker(emu_a.url, qa.settings(initial_rate=50.0)) as (_, _, target_a),
        stack.worker(emu_b.url, qb.settings(job_timeout=1.5)) as (_, _, target_b),
        prometheus(tmp_path, [target_a, target_b]) as prom,
    ):
        await send(sqs, qa.main, requests("doomed", 10, ENVS, resource="doomed"))
        await send(sqs, qb.main, requests("endless", 1, ["dev"]))
        [timed_out] = await drain(sqs, qb.results, 1, deadline=30)
        assert (timed_out["outcome"], timed_out["reason"]) == ("FAILED", "job_timeout")
        await prom.until_active("OrchestratorJobsStuck", state="firing")
        await prom.until_active("OrchestratorThrottlingSustained")
        await prom.until_active("OrchestratorJobFailureRatioHigh", deadline=45)
        await prom.until_active("OrchestratorRequestFailureRatioHigh")
        events = await drain(sqs, qa.results, 10, deadline=60)
        assert {(e["outcome"], e["reason"]) for e in events} == {("FAILED", "job_failed")}
        await prom.assert_quiet(QUIET["jobs"])


async def test_stuck_backlog_refused_dead_letters_then_every_worker_gone(
    stack: Stack, sqs: Any, tmp_path: Path
) -> None:
    """1. Worker A runs one request at a time against jobs that never end: 150 requests wait
       in its read-ahead (the queue itself is empty). Worker B's DLQ is deleted under it and
       it receives invalid requests.
    2. OrchestratorBacklogNotDraining fires (pending, then firing through its for:) while the
       queue's visible count is below the threshold: the read-ahead is what it counts.
       OrchestratorDeadLetterMovesFailing is pending.
    3. Quiet meanwhile: nothing finished, so no failure ratio; no timeout, no throttle; a
       refused move is no dead letter.
    4. Both workers stop: OrchestratorWorkerDown for each target and OrchestratorAbsent."""
    endless = EmulatorConfig(apps={"app1": ENVS}, job_duration=(3600.0, 3600.0))
    qa, qb = await stack.queues(), await stack.queues(max_receive_count=100)
    one_at_a_time = qa.settings(concurrency=1, job_timeout=3600.0, shutdown_grace=0.5)
    async with run_emulator(endless) as emu, contextlib.AsyncExitStack() as workers:
        _, _, target_a = await workers.enter_async_context(stack.worker(emu.url, one_at_a_time))
        _, _, target_b = await workers.enter_async_context(
            stack.worker(emu.url, qb.settings(shutdown_grace=0.5))
        )
        async with prometheus(tmp_path, [target_a, target_b]) as prom:
            await sqs.delete_queue(QueueUrl=qb.dlq)
            await send(sqs, qb.main, [invalid("refused-1"), invalid("refused-2")])
            await send(sqs, qa.main, requests("waiting", 150, ENVS))
            await prom.until_active("OrchestratorDeadLetterMovesFailing")
            await prom.until_active("OrchestratorBacklogNotDraining", state="firing", deadline=45)
            waiting = await prom.value("sum(orchestrator_messages_waiting)")
            visible = await prom.value(
                'max(orchestrator_queue_messages{queue="main", state="visible"})'
            )
            assert waiting is not None and waiting > 100, waiting
            assert visible is not None and visible < 100, visible
            backlog_alerts = await prom.alerts("OrchestratorBacklogNotDraining")
            assert [a["state"] for a in backlog_alerts] == ["firing"], backlog_alerts
            await prom.assert_quiet(QUIET["stuck"])
            stopped = time.time()
            await workers.aclose()
            for target in (target_a, target_b):
                await prom.until_active("OrchestratorWorkerDown", since=stopped, instance=target)
            await prom.until_active("OrchestratorAbsent", since=stopped)


async def test_a_healthy_draining_backlog_and_an_unreachable_queue(
    stack: Stack, sqs: Any, tmp_path: Path
) -> None:
    """1. A worker runs 4 requests at a time on 1 s jobs; its DLQ holds 3 old messages that
       never change. Once the rules are loaded, 190 requests arrive: the backlog stays above
       100 for longer than the backlog alert's for: (at least 22 s, however fast the
       machine), while requests finish. A second worker's change queue is deleted under it
       (it cannot receive).
    2. Pending: OrchestratorNotReady for the second worker.
    3. Quiet, and never fired during the drain: the backlog alert (progress), the dead-letter
       alert (a constant DLQ), every failure, throttling, stuck-job and DLQ alert; the
       healthy worker is neither down nor not ready."""
    healthy = EmulatorConfig(
        apps={"app1": ENVS}, job_duration=(1.0, 1.0), job_duration_dist="fixed"
    )
    qa, qb = await stack.queues(), await stack.queues()
    await send(sqs, qa.dlq, [invalid(f"old-{i}") for i in range(3)])
    four = qa.settings(concurrency=4, shutdown_grace=2.0)
    async with (
        run_emulator(healthy) as emu,
        stack.worker(emu.url, four) as (_, _, target_a),
        stack.worker(emu.url, qb.settings()) as (_, _, target_b),
        prometheus(tmp_path, [target_a, target_b]) as prom,
    ):
        await send(sqs, qa.main, requests("drain", 190, ENVS))
        await sqs.delete_queue(QueueUrl=qb.main)
        await prom.until_active("OrchestratorNotReady", instance=target_b)
        backlog = (
            'max(orchestrator_queue_messages{queue="main", state="visible"})'
            " + sum(orchestrator_messages_waiting)"
        )

        async def below_threshold() -> bool:
            value = await prom.value(backlog)
            return value is not None and value < 100

        await prom.until(below_threshold, "the backlog drained below 100", deadline=90)
        await prom.evaluated()
        judged = math.ceil(time.time() - prom.started)  # seconds since the rules were loaded
        above = await prom.value(f"count_over_time(({backlog} > 100)[{judged}s:1s])")
        for_seconds = millis(rule("OrchestratorBacklogNotDraining")["for"]) / 1000
        assert above is not None and above > for_seconds + 1, above
        assert await prom.value("sum(orchestrator_requests_total)")
        dlq = await prom.value('max(orchestrator_queue_messages{queue="dlq", state="visible"})')
        assert dlq == 3
        await prom.assert_quiet(QUIET["healthy"])
        await prom.assert_quiet(QUIET_PER_WORKER["healthy"], evaluate=False, instance=target_a)
        assert not await prom.alerts("OrchestratorWorkerDown")
