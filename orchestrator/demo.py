"""``orchestrator demo``: the whole service on one machine, no AWS account, no Docker.

Starts moto's SQS server and the AmplifyBackend emulator on loopback (with a modest rate limit
so throttling shows), creates a change queue with a DLQ and a results queue, sends a realistic
mix of change requests (single- and multi-step, a few invalid, one whose job fails), runs the
worker and shows live progress, then a summary. The worker's JSON logs go to a file.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from typing import Any

import anyio
from moto.server import ThreadedMotoServer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from orchestrator import logs
from orchestrator.emulator import EmulatorConfig, EmulatorThread
from orchestrator.metrics import Metrics
from orchestrator.settings import Settings
from orchestrator.testing import auth_request, create_queues, storage_request
from orchestrator.worker import Worker

APPS = {"shop": ["dev", "prod"], "blog": ["dev"], "crm": ["dev", "test"]}


def _auth(app: str, env: str, name: str) -> dict[str, Any]:
    params: dict[str, Any] = auth_request("", app, env, name)["params"]
    return params


def _storage(app: str, env: str, name: str) -> dict[str, Any]:
    params: dict[str, Any] = storage_request("", app, env, name)["params"]
    return params


def demo_requests(count: int) -> list[str]:
    """``count`` valid requests (one of which fails), then three invalid bodies."""
    targets = [(app, env) for app, envs in APPS.items() for env in envs]
    bodies: list[str] = []
    for i in range(count):
        app, env = targets[i % len(targets)]
        if i % 6 == 5:
            steps = [
                {
                    "operation": "CreateBackend",
                    "params": {"AppId": app, "AppName": app, "BackendEnvironmentName": f"pr{i}"},
                },
                {"operation": "CreateBackendAuth", "params": _auth(app, f"pr{i}", f"auth{i}")},
                {
                    "operation": "create_backend_storage",
                    "params": _storage(app, f"pr{i}", f"files{i}"),
                },
            ]
            bodies.append(json.dumps({"request_id": f"demo-{i:03d}", "steps": steps}))
            continue
        name = f"broken-bucket{i}" if i == 8 else f"bucket{i}"
        operation, params = (
            ("CreateBackendAuth", _auth(app, env, f"auth{i}"))
            if i % 2
            else ("create_backend_storage", _storage(app, env, name))
        )
        bodies.append(
            json.dumps({"request_id": f"demo-{i:03d}", "operation": operation, "params": params})
        )
    bodies += [
        "{this is not json",
        json.dumps({"request_id": "demo-bad-op", "operation": "LaunchRockets", "params": {}}),
        json.dumps(
            {
                "request_id": "demo-bad-params",
                "operation": "CreateBackendAuth",
                "params": {"AppId": "shop"},
            }
        ),
    ]
    return bodies


class _Progress:
    def __init__(self, metrics: Metrics, total: int) -> None:
        self._m = metrics
        self.total = total

    def _outcomes(self) -> dict[str, float]:
        totals = {"SUCCEEDED": 0.0, "FAILED": 0.0, "REJECTED": 0.0}
        for metric in self._m.requests.collect():
            for sample in metric.samples:
                if sample.name.endswith("_total"):
                    totals[sample.labels["outcome"]] += sample.value
        return totals

    def finished(self) -> int:
        return int(sum(self._outcomes().values()))

    def table(self, rate: float) -> Table:
        outcomes = self._outcomes()
        throttled = sum(
            s.value
            for m in self._m.api_calls.collect()
            for s in m.samples
            if s.name.endswith("_total") and s.labels["result"] == "throttled"
        )
        in_flight = sum(s.value for m in self._m.jobs_in_flight.collect() for s in m.samples)
        table = Table(title="orchestrator demo", show_header=False)
        table.add_row("requests finished", f"{self.finished()} / {self.total}")
        for outcome, value in outcomes.items():
            table.add_row(f"  {outcome.lower()}", str(int(value)))
        table.add_row("jobs in flight", str(int(in_flight)))
        table.add_row("API calls throttled", str(int(throttled)))
        table.add_row("client rate limit", f"{rate:.1f} calls/s")
        return table


def run_demo(requests: int = 24, rate: float = 8.0) -> int:
    console = Console()
    _demo_aws_environment()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request access log
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    os.environ["AWS_ENDPOINT_URL_SQS"] = f"http://{host}:{port}"
    config = EmulatorConfig(
        apps=APPS, rate=rate, burst=4, job_duration=(1.0, 4.0), fail_pattern="broken", seed=42
    )
    log_path = os.path.join(tempfile.gettempdir(), "orchestrator-demo.log")
    try:
        with EmulatorThread(config) as emulator, open(log_path, "w") as log_file:
            os.environ["AWS_ENDPOINT_URL_AMPLIFYBACKEND"] = emulator.url
            logs.configure("INFO", stream=log_file, json=True)
            console.print(
                f"SQS (moto) at http://{host}:{port}; AmplifyBackend emulator at "
                f"{emulator.url} (rate limit {rate:g}/s)"
            )
            results = anyio.run(_run_worker, console, requests)
            stats = emulator.stats()
    finally:
        moto.stop()
    _summary(console, results, stats, log_path)
    return 0


def _demo_aws_environment() -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "demo",
        "AWS_SECRET_ACCESS_KEY": "demo",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        os.environ[name] = value


async def _run_worker(console: Console, requests: int) -> list[dict[str, Any]]:
    from aiobotocore.session import get_session

    from orchestrator.producer import send_bodies

    async with get_session().create_client("sqs") as sqs:
        urls = await _queues(sqs)
        bodies = demo_requests(requests)
        await send_bodies(urls["main"], bodies)
        console.print(f"sent {len(bodies)} change requests ({requests} valid, 3 invalid)")
        # A fresh ledger each run: the request ids repeat, and a ledger that already finished
        # them would (correctly) only re-send their stored outcomes.
        ledger_dir = tempfile.mkdtemp(prefix="orchestrator-demo-")
        settings = Settings(
            ledger=f"sqlite:///{ledger_dir}/ledger.db",
            queue_url=urls["main"],
            results_queue_url=urls["results"],
            metrics_host="127.0.0.1",
            metrics_port=0,
            wait_time_seconds=1,
            sweep_min=0.5,
            sweep_max=2.0,
            initial_rate=4.0,
        )
        worker = Worker(settings)
        progress = _Progress(worker.metrics, len(bodies))
        stop = anyio.Event()
        async with anyio.create_task_group() as tg:
            started = await tg.start(worker.run, stop)
            console.print(f"worker metrics: http://127.0.0.1:{started.metrics_port}/metrics")
            with Live(progress.table(worker.limiter.rate), console=console) as live:
                while progress.finished() < len(bodies):
                    await anyio.sleep(0.25)
                    live.update(progress.table(worker.limiter.rate))
            stop.set()
        return await _collect(sqs, urls["results"], len(bodies))


async def _queues(sqs: Any) -> dict[str, str]:
    queues = await create_queues(sqs, prefix="demo-")
    return {"main": queues.main, "dlq": queues.dlq, "results": queues.results}


async def _collect(sqs: Any, url: str, count: int) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    with anyio.move_on_after(30):
        while len(events) < count:
            response = await sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1
            )
            events += [json.loads(m["Body"]) for m in response.get("Messages", [])]
    return events


def _summary(
    console: Console, events: list[dict[str, Any]], stats: dict[str, Any], log_path: str
) -> None:
    table = Table(title="outcome events (results queue)")
    for column in ("request", "outcome", "reason", "steps (operation: job status)"):
        table.add_column(column)
    problems = []
    for event in sorted(events, key=lambda e: str(e.get("request_id"))):
        steps = " → ".join(f"{s['operation']}: {s['status']}" for s in event["steps"])
        table.add_row(str(event["request_id"]), event["outcome"], event["reason"], steps)
        if event["error"]:
            problems.append(f"{event['request_id']}: {event['error']}")
    console.print(table)
    for problem in problems:
        console.print(f"  [bold]{problem}[/bold]", highlight=False)
    throttled = sum(stats.get("throttled", {}).values())
    console.print(
        f"emulator saw {sum(stats['calls'].values())} API calls, throttled {throttled}, "
        f"{stats['conflicts']} conflicts"
    )
    console.print(f"worker logs (JSON lines): {log_path}")
