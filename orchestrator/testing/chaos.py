"""The chaos scenarios: crashes, AmplifyBackend faults, an SQS outage, SIGTERM, competing
replicas, each run with real ``orchestrator run`` processes against moto's server and the
emulator on loopback.

``make chaos`` (bench/chaos.py) runs them at full size, tests/test_chaos.py small; each returns
a :class:`~orchestrator.testing.invariants.Report` of the same invariants.

The exactly-once scenario runs once per *variant* of the service the emulator can play (listing
order × timestamp format, with finished jobs of the past in every environment and new jobs late
to be listed): kill -9 at random points plus answers lost after the effect (500s and dropped
connections) and 504s before it.
"""

from __future__ import annotations

import json
import random
import time
from typing import Any

import anyio

from orchestrator.producer import send_bodies
from orchestrator.testing import auth_request, create_queues, multi_step, send, storage_request
from orchestrator.testing.invariants import Report, Stack, check, collecting, finish, poll
from orchestrator.testing.processes import WorkerProcesses, free_port, readiness, worker_environment
from orchestrator.testing.proxy import Proxy

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


def worker_processes(
    stack: Stack, queues: Any, ledger: str, *, sqs_url: str | None = None, **overrides: str
) -> WorkerProcesses:
    """Worker processes of the chaos settings (plus ``overrides``) on ``queues``, reaching SQS
    at ``sqs_url`` (default: the stack's endpoint); logs in the work directory."""
    settings = {
        **WORKER_SETTINGS,
        **overrides,
        "queue_url": queues.main,
        "results_queue_url": queues.results,
        "ledger": ledger,
    }
    env = worker_environment(
        settings, amplify_url=stack.emulator.url, sqs_url=sqs_url or stack.sqs_endpoint
    )
    return WorkerProcesses(env, stack.workdir / "workers.log")


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
    began = time.monotonic()
    await send(stack.sqs, queues.main, bodies)
    async with (
        collecting(stack.sqs, queues.results) as outcomes,
        worker_processes(stack, queues, ledger) as workers,
    ):
        for number in range(kills):
            process = await workers.start()
            # Kills spread over the run, each at a random point of its stretch.
            stretch = requests / (kills + 1)
            await outcomes.wait_for(int(stretch * (number + rng.uniform(0.5, 1.0))), deadline=120)
            await anyio.sleep(rng.uniform(0, 0.5))
            await workers.kill(process)
            report.notes.append(f"kill {number + 1} after {outcomes.finished} outcomes")
        await workers.start()
        await finish(stack, queues, outcomes, requests)
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
    ledger = f"sqlite:///{stack.workdir / 'fault-ledger.db'}"
    began = time.monotonic()
    await send(stack.sqs, queues.main, bodies)
    try:
        async with (
            collecting(stack.sqs, queues.results) as outcomes,
            worker_processes(stack, queues, ledger) as workers,
        ):
            await workers.start()
            await finish(stack, queues, outcomes, requests)
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
    ledger = f"sqlite:///{stack.workdir / 'outage-ledger.db'}"
    began = time.monotonic()
    await send(stack.sqs, queues.main, bodies)
    async with (
        anyio.create_task_group() as group,
        collecting(stack.sqs, queues.results) as outcomes,
        worker_processes(
            stack, queues, ledger, sqs_url=proxy.url, metrics_port=str(metrics_port)
        ) as workers,
    ):
        await group.start(proxy.serve)
        process = await workers.start()
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
    began = time.monotonic()
    await send(stack.sqs, queues.main, bodies)
    async with (
        collecting(stack.sqs, queues.results) as outcomes,
        worker_processes(stack, queues, ledger, shutdown_grace=str(grace)) as workers,
    ):
        process = await workers.start()
        await outcomes.wait_for(max(1, requests // 3), deadline=60)
        code, took = await workers.terminate(process, deadline=grace + 30)
        report.notes.append(f"exit code {code} after {took:.1f} s")
        if code != 0 or took > grace + 5:
            report.notes.append("FAIL: not a clean exit within the grace period")
        await workers.start()
        await finish(stack, queues, outcomes, requests)
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
    began = time.monotonic()
    texts = [json.dumps(body) for body in bodies]
    await send_bodies(queues.main, texts + texts)
    try:
        async with (
            collecting(stack.sqs, queues.results) as outcomes,
            worker_processes(stack, queues, ledger_url) as workers,
        ):
            for _ in range(replicas):
                await workers.start()
            await finish(stack, queues, outcomes, requests)
    finally:
        stack.emulator.configure(conflict_mode="reject")
    report.seconds = time.monotonic() - began
    return await check(report, stack, queues, outcomes, bodies)
