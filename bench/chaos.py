"""The chaos and fault suite: crashes, API faults, an SQS outage, SIGTERM, competing replicas.

``make chaos`` (``python -m bench.chaos``) runs every scenario at full size against moto's
server and the AmplifyBackend emulator on loopback, with real ``orchestrator run`` processes,
and prints a table (also written to ``bench/results/chaos.json``). ``tests/test_chaos.py``
runs the same scenarios small inside ``make test``.

Each scenario checks the same invariants and reports them:

* every request has an outcome event, and all of a request's events are identical (lost,
  inconsistent);
* no change was made twice: each request's resource was mutated once (duplicates);
* no two jobs overlapped on one environment (the emulator counts conflicts);
* every SUCCEEDED step carries the job its own call made (wrong_job: the job of that id is not
  the step's resource);
* nothing is left on the change queue.

The exactly-once scenario runs once per *variant* of the service the emulator can play (listing
order × timestamp format, with finished jobs of the past in every environment and new jobs late
to be listed): kill -9 at random points plus answers lost after the effect (500s and dropped
connections) and 504s before it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.abc

from orchestrator.producer import send_bodies
from orchestrator.testing import (
    auth_request,
    create_queues,
    multi_step,
    queue_counts,
    send,
    storage_request,
)

APPS = [f"app{i}" for i in range(10)]
ENVIRONMENTS = ["dev", "prod"]
#: Worker settings for chaos runs: short visibility and leases so a killed worker's messages
#: and environments come back within seconds, fast sweeps and backoff.
WORKER_SETTINGS = {
    "metrics_host": "127.0.0.1",
    "metrics_port": "0",
    "concurrency": "32",
    "visibility_timeout": "6",
    "wait_time_seconds": "1",
    "shutdown_grace": "5",
    "lease_ttl": "4",
    "job_timeout": "120",
    "sweep_min": "0.05",
    "sweep_max": "0.5",
    "list_grace": "10",
    "backoff_base": "0.05",
    "backoff_cap": "1",
    "initial_rate": "50",
    "log_level": "INFO",
}


@dataclass
class Stack:
    """What a scenario runs against: an SQS client, the emulator and a scratch directory."""

    sqs: Any
    sqs_endpoint: str
    emulator: Any
    workdir: Path


@dataclass
class Report:
    scenario: str
    requests: int
    injected: str
    outcomes: dict[str, int] = field(default_factory=dict)
    lost: int = 0
    inconsistent: int = 0
    duplicates: int = 0
    overlaps: int = 0
    wrong_job: int = 0
    left_on_queue: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        bad = self.lost + self.inconsistent + self.duplicates + self.overlaps + self.wrong_job
        bad += self.left_on_queue
        return bad == 0 and not [n for n in self.notes if n.startswith("FAIL")]


# --- the change requests --------------------------------------------------------------------


def change_requests(count: int, tag: str) -> list[dict[str, Any]]:
    """Single-step storage requests, every fifth a two-step auth then storage request."""
    bodies = []
    for i in range(count):
        app, env = APPS[i % len(APPS)], ENVIRONMENTS[(i // len(APPS)) % 2]
        storage = storage_request(f"{tag}-{i}", app, env, f"{tag}s{i}")
        if i % 5 == 4:
            auth = auth_request(f"{tag}-{i}", app, env, f"{tag}a{i}")
            storage = multi_step(f"{tag}-{i}", auth, storage)
        bodies.append(storage)
    return bodies


# --- worker processes -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class WorkerProcesses:
    """``orchestrator run`` subprocesses sharing one configuration; output to a log file."""

    def __init__(self, stack: Stack, queues: Any, ledger: str, **overrides: str) -> None:
        settings = {**WORKER_SETTINGS, **overrides}
        self.env = dict(os.environ)
        self.env.update({f"ORCHESTRATOR_{k.upper()}": v for k, v in settings.items()})
        self.env.update(
            ORCHESTRATOR_QUEUE_URL=queues.main,
            ORCHESTRATOR_RESULTS_QUEUE_URL=queues.results,
            ORCHESTRATOR_LEDGER=ledger,
            AWS_ENDPOINT_URL_SQS=overrides.get("sqs_endpoint", stack.sqs_endpoint),
            AWS_ENDPOINT_URL_AMPLIFYBACKEND=stack.emulator.url,
        )
        self.env.pop("ORCHESTRATOR_SQS_ENDPOINT", None)
        self.log_path = stack.workdir / "workers.log"
        self.running: list[anyio.abc.Process] = []

    async def start(self) -> anyio.abc.Process:
        with self.log_path.open("ab") as log_file:
            process = await anyio.open_process(
                [sys.executable, "-m", "orchestrator.cli", "run"],
                env=self.env,
                stdout=log_file,
                stderr=log_file,
            )
        self.running.append(process)
        return process

    async def kill(self, process: anyio.abc.Process) -> None:
        process.kill()  # SIGKILL: no cleanup, no release, no flush
        await process.wait()
        self.running.remove(process)

    async def terminate(self, process: anyio.abc.Process, deadline: float) -> tuple[int, float]:
        """SIGTERM; (exit code, seconds to exit)."""
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
        self.running.clear()


# --- collecting outcomes and checking invariants --------------------------------------------


class Outcomes:
    """Drains the results queue in the background; every event a request got, in order."""

    def __init__(self, sqs: Any, queue_url: str) -> None:
        self._sqs = sqs
        self._url = queue_url
        self.events: dict[str, list[dict[str, Any]]] = {}
        self._changed = anyio.Event()

    async def run(self) -> None:
        while True:
            response = await self._sqs.receive_message(
                QueueUrl=self._url, MaxNumberOfMessages=10, WaitTimeSeconds=1
            )
            messages = response.get("Messages", [])
            for message in messages:
                event = json.loads(message["Body"])
                self.events.setdefault(event["request_id"], []).append(event)
            if messages:
                await self._sqs.delete_message_batch(
                    QueueUrl=self._url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                        for i, m in enumerate(messages)
                    ],
                )
                self._changed.set()
                self._changed = anyio.Event()

    @property
    def finished(self) -> int:
        return len(self.events)

    async def wait_for(self, count: int, deadline: float) -> None:
        with anyio.fail_after(deadline):
            while self.finished < count:
                await self._changed.wait()


@contextlib.asynccontextmanager
async def collecting(sqs: Any, queue_url: str) -> AsyncIterator[Outcomes]:
    outcomes = Outcomes(sqs, queue_url)
    async with anyio.create_task_group() as group:
        group.start_soon(outcomes.run)
        yield outcomes
        group.cancel_scope.cancel()


async def finish(stack: Stack, queues: Any, outcomes: Outcomes, requests: int) -> None:
    """Wait (workers still running) for every outcome, then for redeliveries to be worked off.
    A request still missing at the deadline is reported as lost by :func:`check`."""
    with contextlib.suppress(TimeoutError):
        await outcomes.wait_for(requests, deadline=120 + 2 * requests)
    await settle(stack.sqs, queues.main, deadline=30)


async def check(
    report: Report, stack: Stack, queues: Any, outcomes: Outcomes, bodies: Iterable[dict[str, Any]]
) -> Report:
    """Fill in the invariants: lost, inconsistent, duplicates, overlaps, wrong job ids, left on
    the queue."""
    resources = {body["request_id"]: step_resources(body) for body in bodies}
    report.lost = len(set(resources) - set(outcomes.events))
    report.inconsistent = sum(
        1 for events in outcomes.events.values() if len(_versions(events)) > 1
    )
    report.outcomes = dict(Counter(e[0]["outcome"] for e in outcomes.events.values()))
    jobs = [job for job in stack.emulator.jobs() if not job.get("history")]
    mutations = Counter((job.get("operation"), job.get("resourceName")) for job in jobs)
    report.duplicates = sum(count - 1 for count in mutations.values() if count > 1)
    report.wrong_job = wrong_jobs(outcomes, resources, jobs)
    report.overlaps = int(stack.emulator.stats()["conflicts"])
    visible, in_flight = await settle(stack.sqs, queues.main)
    report.left_on_queue = visible + in_flight
    return report


def step_resources(body: dict[str, Any]) -> list[str]:
    """The resource each step of a change request acts on."""
    steps = body.get("steps") or [body]
    return [str(step["params"].get("ResourceName")) for step in steps]


def wrong_jobs(
    outcomes: Outcomes, resources: dict[str, list[str]], jobs: list[dict[str, Any]]
) -> int:
    """SUCCEEDED steps whose job id is not a job made for that step's resource."""
    made = {str(job["jobId"]): str(job.get("resourceName")) for job in jobs}
    wrong = 0
    for request_id, events in outcomes.events.items():
        event = events[0]
        if event["outcome"] != "SUCCEEDED" or request_id not in resources:
            continue
        for step, resource in zip(event["steps"], resources[request_id], strict=False):
            wrong += made.get(str(step.get("job_id"))) != resource
    return wrong


def _versions(events: list[dict[str, Any]]) -> set[str]:
    return {
        json.dumps({k: v for k, v in e.items() if k != "message_id"}, sort_keys=True)
        for e in events
    }


async def settle(sqs: Any, queue_url: str, deadline: float = 15.0) -> tuple[int, int]:
    """Queue counts once deletes have landed (batched deletes linger briefly)."""
    counts = await queue_counts(sqs, queue_url)
    with anyio.move_on_after(deadline):
        while counts != (0, 0):
            await anyio.sleep(0.2)
            counts = await queue_counts(sqs, queue_url)
    return counts


def readiness(port: int) -> int:
    """HTTP status of the worker's /readyz (0 if it does not answer)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        with exc:  # it holds the response: unclosed, its socket leaks until collected
            return int(exc.code)
    except OSError:
        return 0


async def poll(predicate: Callable[[], bool], deadline: float, every: float = 0.1) -> float:
    """Seconds until ``predicate()`` held; TimeoutError after ``deadline``."""
    began = time.monotonic()
    with anyio.fail_after(deadline):
        # Polling is the only option: the state is in another process, behind HTTP.
        while not await anyio.to_thread.run_sync(predicate):  # noqa: ASYNC110
            await anyio.sleep(every)
    return time.monotonic() - began


# --- a TCP proxy that can take SQS away -----------------------------------------------------


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
                        client = await listener.listeners[0].accept()  # 127.0.0.1: one
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


# --- scenarios ------------------------------------------------------------------------------


async def kill_restart(
    stack: Stack, *, requests: int, kills: int, seed: int = 1, tag: str = "kill"
) -> Report:
    """kill -9 the worker at random points ``kills`` times, restarting it each time (request
    ids and the ledger file are named after ``tag``: each run its own)."""
    rng = random.Random(seed)
    # Every kill makes each message the worker held (up to its read-ahead) count one receive
    # more: with many kills, the queue's usual maxReceiveCount would move requests to the DLQ
    # that nothing is wrong with. This scenario measures exactly-once, not the redrive policy.
    queues = await create_queues(stack.sqs, visibility=6, max_receive_count=100)
    bodies = change_requests(requests, tag)
    report = Report("kill -9 and restart", requests, f"{kills} kills (SIGKILL)")
    ledger = f"sqlite:///{stack.workdir / f'{tag}-ledger.db'}"
    workers = WorkerProcesses(stack, queues, ledger)
    began = time.monotonic()
    await send(stack.sqs, queues.main, bodies)
    async with collecting(stack.sqs, queues.results) as outcomes:
        try:
            for number in range(kills):
                process = await workers.start()
                # Kills spread over the run, each at a random point of its stretch.
                stretch = requests / (kills + 1)
                target = int(stretch * (number + rng.uniform(0.5, 1.0)))
                await outcomes.wait_for(target, deadline=120)
                await anyio.sleep(rng.uniform(0, 0.5))
                await workers.kill(process)
                report.notes.append(f"kill {number + 1} after {outcomes.finished} outcomes")
            await workers.start()
            await finish(stack, queues, outcomes, requests)
        finally:
            await workers.stop_all()
    report.seconds = time.monotonic() - began
    return await check(report, stack, queues, outcomes, bodies)


ORDERS = ("newest", "oldest", "unordered")
FORMATS = ("iso", "iso_offset", "epoch_s", "epoch_ms")
VARIANTS = tuple((order, time_format) for order in ORDERS for time_format in FORMATS)
#: Answers lost after the effect (500, dropped connection), 504s before it, on the mutations.
LOST_ANSWERS = {
    "fault_500_ratio": 0.05,
    "fault_reset_after_ratio": 0.04,
    "fault_504_ratio": 0.03,
    "fault_operations": ["CreateBackendStorage", "CreateBackendAuth"],
}
_FAULT_FREE = {
    "fault_500_ratio": 0.0,
    "fault_reset_after_ratio": 0.0,
    "fault_504_ratio": 0.0,
    "fault_reset_ratio": 0.0,
    "latency_spike_ratio": 0.0,
    "fault_operations": None,
}


def play(stack: Stack, variant: tuple[str, str], history: int) -> None:
    """Make the emulator the variant: listing order, timestamp format, ``history`` finished
    jobs per environment, new jobs unlisted for 0.3 s, a second job on a busy environment
    accepted (and counted as an overlap)."""
    order, time_format = variant
    stack.emulator.configure(
        list_order=order,
        timestamp_format=time_format,
        history=history,
        visibility_delay=0.3,
        conflict_mode="accept",
    )
    stack.emulator.reset()  # the history is made when the environments are seeded


async def exactly_once(
    stack: Stack,
    variant: tuple[str, str],
    *,
    requests: int,
    kills: int,
    history: int = 50,
    seed: int = 1,
) -> Report:
    """One service variant: kill -9 at random points and answers lost after the effect."""
    play(stack, variant, history)
    stack.emulator.configure(**LOST_ANSWERS, seed=seed)
    name = f"exactly once: {variant[0]} first, {variant[1]} times"
    try:
        tag = f"x-{variant[0]}-{variant[1]}"
        report = await kill_restart(stack, requests=requests, kills=kills, seed=seed, tag=tag)
    finally:
        faults = stack.emulator.stats()["faults"]
        stack.emulator.configure(**_FAULT_FREE)
    report.scenario = name
    lost = {kind: faults.get(kind, 0) for kind in ("500", "reset_after", "504")}
    report.injected += ", " + ", ".join(f"{kind} {count}" for kind, count in lost.items())
    return report


async def api_faults(stack: Stack, *, requests: int, seed: int = 2) -> Report:
    """504 before effect, 500 after effect, connection resets and latency spikes."""
    stack.emulator.configure(
        fault_504_ratio=0.10,
        fault_500_ratio=0.05,
        fault_reset_after_ratio=0.03,
        fault_reset_ratio=0.02,
        latency_spike_ratio=0.05,
        latency_spike=1.0,
        seed=seed,
    )
    queues = await create_queues(stack.sqs, visibility=6)
    bodies = change_requests(requests, "fault")
    report = Report("AmplifyBackend faults", requests, "")
    workers = WorkerProcesses(stack, queues, f"sqlite:///{stack.workdir / 'fault-ledger.db'}")
    began = time.monotonic()
    await send(stack.sqs, queues.main, bodies)
    try:
        async with collecting(stack.sqs, queues.results) as outcomes:
            await workers.start()
            try:
                await finish(stack, queues, outcomes, requests)
            finally:
                await workers.stop_all()
    finally:
        faults = stack.emulator.stats()["faults"]
        stack.emulator.configure(**_FAULT_FREE)
    report.injected = ", ".join(f"{kind} {count}" for kind, count in sorted(faults.items()))
    report.seconds = time.monotonic() - began
    return await check(report, stack, queues, outcomes, bodies)


async def sqs_outage(stack: Stack, *, requests: int, outage: float) -> Report:
    """SQS goes away for ``outage`` seconds mid-run: not ready meanwhile, recovers alone."""
    host, _, port = stack.sqs_endpoint.removeprefix("http://").partition(":")
    proxy = Proxy(host, int(port))
    queues = await create_queues(stack.sqs, visibility=6)
    bodies = change_requests(requests, "outage")
    report = Report("SQS outage", requests, f"SQS unreachable for {outage:g} s")
    metrics_port = free_port()
    workers = WorkerProcesses(
        stack,
        queues,
        f"sqlite:///{stack.workdir / 'outage-ledger.db'}",
        sqs_endpoint=proxy.url,
        metrics_port=str(metrics_port),
    )
    began = time.monotonic()
    await send(stack.sqs, queues.main, bodies)
    async with (
        anyio.create_task_group() as group,
        collecting(stack.sqs, queues.results) as outcomes,
    ):
        await group.start(proxy.serve)
        process = await workers.start()
        try:
            await poll(lambda: readiness(metrics_port) == 200, deadline=30)
            await outcomes.wait_for(max(1, requests // 4), deadline=60)
            proxy.down()
            noticed = await poll(lambda: readiness(metrics_port) == 503, deadline=outage + 30)
            report.notes.append(f"/readyz 503 after {noticed:.1f} s")
            await anyio.sleep(max(0.0, outage - noticed))
            if process.returncode is not None:
                report.notes.append(f"FAIL: worker exited during the outage ({process.returncode})")
            report.notes.append(f"{outcomes.finished} outcomes before SQS came back")
            proxy.up()
            recovered = await poll(lambda: readiness(metrics_port) == 200, deadline=60)
            report.notes.append(f"ready again {recovered:.1f} s after SQS came back")
            await finish(stack, queues, outcomes, requests)
        finally:
            await workers.stop_all()
            group.cancel_scope.cancel()
    report.seconds = time.monotonic() - began
    return await check(report, stack, queues, outcomes, bodies)


async def sigterm_under_load(stack: Stack, *, requests: int, grace: float = 5.0) -> Report:
    """SIGTERM mid-run: exits 0 within the grace period; a restart finishes the rest."""
    queues = await create_queues(stack.sqs, visibility=6)
    bodies = change_requests(requests, "term")
    report = Report("SIGTERM under load", requests, f"SIGTERM, grace {grace:g} s")
    ledger = f"sqlite:///{stack.workdir / 'term-ledger.db'}"
    workers = WorkerProcesses(stack, queues, ledger, shutdown_grace=str(grace))
    began = time.monotonic()
    await send(stack.sqs, queues.main, bodies)
    async with collecting(stack.sqs, queues.results) as outcomes:
        try:
            process = await workers.start()
            await outcomes.wait_for(max(1, requests // 3), deadline=60)
            code, took = await workers.terminate(process, deadline=grace + 30)
            report.notes.append(f"exit code {code} after {took:.1f} s")
            if code != 0 or took > grace + 5:
                report.notes.append("FAIL: not a clean exit within the grace period")
            await workers.start()
            await finish(stack, queues, outcomes, requests)
        finally:
            await workers.stop_all()
    report.seconds = time.monotonic() - began
    return await check(report, stack, queues, outcomes, bodies)


async def competing_replicas(
    stack: Stack, ledger_url: str, *, requests: int, replicas: int = 2, fifo: bool = False
) -> Report:
    """Several workers on one queue sharing a DynamoDB ledger, every request sent twice.

    Standard queue: per-environment exclusion comes from the ledger's leases. FIFO queue:
    from ``MessageGroupId = AppId/BackendEnvironmentName`` (``orchestrator send`` sets it), and
    SQS drops the second copy within its deduplication window."""
    stack.emulator.configure(conflict_mode="accept")
    queues = await create_queues(stack.sqs, visibility=6, fifo=fifo)
    bodies = change_requests(requests, "fifo" if fifo else "replica")
    kind = "FIFO" if fifo else "standard"
    report = Report(
        f"{replicas} replicas, {kind} queue, DynamoDB ledger", requests, "every request sent twice"
    )
    workers = WorkerProcesses(stack, queues, ledger_url)
    began = time.monotonic()
    texts = [json.dumps(body) for body in bodies]
    await send_bodies(queues.main, texts + texts)
    try:
        async with collecting(stack.sqs, queues.results) as outcomes:
            for _ in range(replicas):
                await workers.start()
            try:
                await finish(stack, queues, outcomes, requests)
            finally:
                await workers.stop_all()
    finally:
        stack.emulator.configure(conflict_mode="reject")
    report.seconds = time.monotonic() - began
    return await check(report, stack, queues, outcomes, bodies)


# --- make chaos -----------------------------------------------------------------------------


#: The groups of scenarios `make chaos` runs, in order (``--only`` picks some).
GROUPS = ("variants", "kill", "faults", "outage", "sigterm", "replicas")


async def run_all(
    stack: Stack,
    ledger_url: str,
    *,
    scale: float,
    variants: Iterable[tuple[str, str]],
    only: Iterable[str] = GROUPS,
) -> list[Report]:
    size = max(20, int(300 * scale))
    groups = set(only)
    reports = []
    for variant in variants if "variants" in groups else ():
        reports.append(
            await exactly_once(stack, variant, requests=size, kills=max(3, int(5 * scale)))
        )
        stack.emulator.configure(list_order="newest", timestamp_format="iso", history=0)
        stack.emulator.reset()
    stack.emulator.configure(conflict_mode="reject", visibility_delay=0.0)
    if "kill" in groups:
        reports.append(await kill_restart(stack, requests=size, kills=max(5, int(8 * scale))))
        stack.emulator.reset()
    if "faults" in groups:
        reports.append(await api_faults(stack, requests=max(20, int(200 * scale))))
        stack.emulator.reset()
    if "outage" in groups:
        reports.append(await sqs_outage(stack, requests=size // 2, outage=max(3.0, 20 * scale)))
        stack.emulator.reset()
    if "sigterm" in groups:
        reports.append(await sigterm_under_load(stack, requests=size))
    for fifo in (False, True) if "replicas" in groups else ():
        stack.emulator.reset()
        reports.append(
            await competing_replicas(stack, ledger_url, requests=size // 2, replicas=3, fifo=fifo)
        )
    return reports


def print_table(reports: list[Report]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="make chaos")
    for column in ("scenario", "requests", "injected", "outcomes", "lost", "inconsistent",
                   "duplicates", "overlaps", "wrong job", "left", "seconds", "result"):  # fmt: skip
        table.add_column(column)
    for r in reports:
        table.add_row(
            r.scenario, str(r.requests), r.injected,
            ", ".join(f"{k} {v}" for k, v in sorted(r.outcomes.items())),
            str(r.lost), str(r.inconsistent), str(r.duplicates), str(r.overlaps),
            str(r.wrong_job), str(r.left_on_queue), f"{r.seconds:.0f}", "ok" if r.ok else "FAILED",
        )  # fmt: skip
    console = Console(width=200)
    console.print(table)
    for r in reports:
        for note in r.notes:
            console.print(f"  {r.scenario}: {note}", markup=False)


async def _main(
    scale: float, workdir: Path, variants: list[tuple[str, str]], only: Iterable[str]
) -> list[Report]:
    from aiobotocore.session import get_session

    from bench.harness import MotoProcess
    from orchestrator.emulator import EmulatorConfig, EmulatorThread
    from orchestrator.ledger.table import create_table

    os.environ.update(
        AWS_ACCESS_KEY_ID="chaos", AWS_SECRET_ACCESS_KEY="chaos", AWS_DEFAULT_REGION="us-east-1",
        AWS_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true",
    )  # fmt: skip
    # moto in its own process, with keep-alive (bench.moto_server): in this process, sharing
    # the GIL with the emulator and the producers, it failed under the replica scenarios.
    server = MotoProcess()
    endpoint = server.url
    os.environ["AWS_ENDPOINT_URL_SQS"] = os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = endpoint
    config = EmulatorConfig(
        apps={app: ENVIRONMENTS for app in APPS}, job_duration=(0.2, 1.0), seed=11
    )
    try:
        with EmulatorThread(config) as emulator:
            async with get_session().create_client("dynamodb") as dynamodb:
                await create_table(dynamodb, "chaos-ledger")
            async with get_session().create_client("sqs") as sqs:
                stack = Stack(sqs, endpoint, emulator, workdir)
                reports = await run_all(
                    stack, "dynamodb://chaos-ledger", scale=scale, variants=variants, only=only
                )
    finally:
        server.close()
    return reports


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.chaos", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--scale", type=float, default=1.0, help="1 = full size (300 requests, 20 s outage)"
    )
    parser.add_argument(
        "--variant",
        action="append",
        metavar="ORDER:FORMAT",
        help="service variants of the exactly-once scenario (default: all "
        f"{len(VARIANTS)}: {', '.join(ORDERS)} × {', '.join(FORMATS)})",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=GROUPS,
        help="run only these groups of scenarios (repeatable; default: all)",
    )
    parser.add_argument("--out", type=Path, default=Path("bench/results/chaos.json"))
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "orchestrator-chaos"
    )
    args = parser.parse_args(argv)
    shutil.rmtree(args.workdir, ignore_errors=True)
    args.workdir.mkdir(parents=True)
    print(f"worker logs and ledgers in {args.workdir}")
    variants = [_variant(text) for text in args.variant] if args.variant else list(VARIANTS)
    reports = anyio.run(_main, args.scale, args.workdir, variants, args.only or GROUPS)
    print_table(reports)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps([asdict(r) | {"ok": r.ok} for r in reports], indent=2) + "\n")
    print(f"written to {args.out}")
    return 0 if all(r.ok for r in reports) else 1


def _variant(text: str) -> tuple[str, str]:
    order, _, time_format = text.partition(":")
    if (order, time_format) not in VARIANTS:
        raise SystemExit(f"unknown variant {text!r} (ORDER:FORMAT, e.g. oldest:epoch_s)")
    return order, time_format


if __name__ == "__main__":
    raise SystemExit(main())
