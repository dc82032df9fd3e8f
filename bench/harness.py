"""What every benchmark scenario shares: the emulator, the contenders, processes, measurements.

The emulator (and moto's SQS server where a scenario needs one) runs in its **own process**, so
the process under measurement shares neither its GIL nor its CPU accounting with the servers;
scenarios reconfigure it at runtime through its admin endpoints (``/_emulator/config``,
``/_emulator/reset``, ``/_emulator/stats``).

Contenders for mutating calls:

* ``ours``: the worker's :class:`~orchestrator.amplify.AmplifyApi` (one attempt per botocore
  call) under its :class:`~orchestrator.ratelimit.AdaptiveRateLimiter` and
  :class:`~orchestrator.backoff.RetryPolicy`, configured as the worker's defaults configure them;
* ``legacy``, ``standard``, ``adaptive``: a plain aiobotocore client with botocore's own retry
  mode of that name and its default attempts (legacy 5, standard 3, adaptive 3): what a user
  gets without us.

All of them run against the same emulator settings, one after the other, and the emulator's
counters (reset between contenders) give attempts and throttles.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

from orchestrator import servicemodel
from orchestrator.amplify import AmplifyApi
from orchestrator.errors import OrchestratorError
from orchestrator.metrics import Metrics
from orchestrator.ratelimit import AdaptiveRateLimiter
from orchestrator.settings import Settings
from orchestrator.testing.processes import WORKER_COMMAND, free_port, worker_environment
from orchestrator.worker import limiter_settings, retry_policy

PEERS = ("legacy", "standard", "adaptive")
CONTENDERS = ("ours", *PEERS)
APP = "bench"
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}


# --- measurements ---------------------------------------------------------------------------


@dataclass
class Calls:
    """Offer → success (or final failure) times of each call, seconds since the start."""

    offered: list[float] = field(default_factory=list)
    done: list[float] = field(default_factory=list)
    failed: int = 0

    def latencies(self) -> list[float]:
        return [d - o for o, d in zip(self.offered, self.done, strict=True)]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def jain(values: list[float]) -> float:
    total = sum(values)
    return total * total / (len(values) * sum(v * v for v in values)) if total else 0.0


def since(start: float) -> float:
    return time.perf_counter() - start


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (Linux /proc), seconds."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


# --- servers in their own processes ---------------------------------------------------------


def _http(url: str, body: Any = None, timeout: float = 30.0) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="GET" if data is None else "POST")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read() or b"null")


def _wait_listening(port: int, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"{what} did not listen on {port}")


class EmulatorProcess:
    """``python -m orchestrator.emulator`` on a free port, driven through its admin API."""

    def __init__(self, *args: str) -> None:
        self.args = args  # the command-line knobs, to start a sibling with the same ones
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "orchestrator.emulator", "--port", str(self.port)]
        self.process = subprocess.Popen(
            [*command, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        _wait_listening(self.port, self.process, "emulator")

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = _http(f"{self.url}/_emulator/stats")
        return result

    def configure(self, **updates: Any) -> dict[str, Any]:
        result: dict[str, Any] = _http(f"{self.url}/_emulator/config", updates)
        return result

    def reset(self) -> None:
        _http(f"{self.url}/_emulator/reset", {})

    def cpu(self) -> float:
        return cpu_seconds(self.process.pid)

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class MotoProcess:
    """moto's server (SQS) on a free port in its own process."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.moto_server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_listening(self.port, self.process, "moto")

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(10)


@contextlib.contextmanager
def moto() -> Iterator[MotoProcess]:
    server = MotoProcess()
    saved = os.environ.get("AWS_ENDPOINT_URL_SQS")
    os.environ["AWS_ENDPOINT_URL_SQS"] = server.url
    try:
        yield server
    finally:
        server.close()
        if saved is None:
            os.environ.pop("AWS_ENDPOINT_URL_SQS", None)
        else:
            os.environ["AWS_ENDPOINT_URL_SQS"] = saved


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a benchmark child process (fake AWS, quiet logs)."""
    return {**os.environ, **AWS_ENV, "ORCHESTRATOR_LOG_LEVEL": "WARNING", **extra}


# --- contenders -----------------------------------------------------------------------------


class Contender:
    """A way to make one mutating call until it succeeds or fails for good."""

    def __init__(self, name: str, client: Any, api: AmplifyApi | None) -> None:
        self.name = name
        self.client = client
        self.api = api

    async def call(self, operation: str, params: dict[str, Any]) -> bool:
        try:
            if self.api is not None:
                await self.api.call(operation, params)
            else:
                await getattr(self.client, servicemodel.method_name(operation))(**params)
        except (OrchestratorError, Exception):  # a peer's final failure is a botocore error
            return False
        return True


def worker_settings(**overrides: Any) -> Settings:
    return Settings(queue_url="unused", **overrides)


@contextlib.asynccontextmanager
async def contender(name: str, endpoint: str, **overrides: Any) -> AsyncIterator[Contender]:
    """``ours`` with the worker's defaults (``overrides`` change Settings fields), or a peer."""
    if name == "ours":
        # The worker's AmplifyBackend client (orchestrator.aws.open_clients): botocore retries
        # off, one attempt per call; ours retries under its limiter.
        config = AioConfig(retries={"mode": "standard", "total_max_attempts": 1},
                           max_pool_connections=128)  # fmt: skip
    else:
        config = AioConfig(retries={"mode": name}, max_pool_connections=128)
    async with get_session().create_client(
        servicemodel.SERVICE_NAME, endpoint_url=endpoint, config=config
    ) as client:
        api = None
        if name == "ours":
            settings = worker_settings(**overrides)
            limiter = AdaptiveRateLimiter(limiter_settings(settings))
            api = AmplifyApi(client, limiter, retry_policy(settings), Metrics())
        yield Contender(name, client, api)


def storage_params(app: str, env: str, index: int | str) -> dict[str, Any]:
    return {
        "AppId": app,
        "BackendEnvironmentName": env,
        "ResourceName": f"r{index}",
        "ResourceConfig": {"ServiceName": "S3", "Permissions": {"Authenticated": ["READ"]}},
    }


def storage_request(request_id: str, app: str, env: str, **extra: Any) -> dict[str, Any]:
    """A change request (the SQS body) creating one storage resource."""
    return {
        "request_id": request_id,
        "operation": "CreateBackendStorage",
        "params": storage_params(app, env, request_id.replace(".", "-")),
        **extra,
    }


def throttle_counts(stats: dict[str, Any], operation: str) -> tuple[int, int]:
    """(attempts, throttled attempts) of ``operation`` in emulator stats."""
    attempts = int(stats["calls"].get(operation, 0))
    throttled = int(stats.get("throttled_by_operation", {}).get(operation, 0))
    return attempts, throttled


def bins(times: list[float], width: float, until: float) -> list[float]:
    """Events per second in consecutive bins of ``width`` seconds from 0 to ``until``."""
    counts = [0] * max(1, int(until / width) + 1)
    for t in times:
        if 0 <= t < until:
            counts[int(t / width)] += 1
    return [c / width for c in counts]


class StatsSampler:
    """Samples the emulator's counters every ``period`` s: attempts and throttles over time."""

    def __init__(self, emulator: EmulatorProcess, period: float = 0.5) -> None:
        self._emulator = emulator
        self._period = period
        self.samples: list[tuple[float, int, int]] = []  # (t, total calls, total throttled)

    async def run(self, start: float) -> None:
        import anyio

        while True:
            stats = await anyio.to_thread.run_sync(self._emulator.stats)
            throttled = int(sum(stats["throttled"].values()))
            self.samples.append((round(since(start), 3), int(stats["total_calls"]), throttled))
            await anyio.sleep(self._period)

    def series(self) -> dict[str, list[float]]:
        """Per-interval attempts/s and throttles/s, stamped at each interval's end."""
        t, attempts, throttles = [], [], []
        for (t0, c0, h0), (t1, c1, h1) in zip(self.samples, self.samples[1:], strict=False):
            if t1 > t0:
                t.append(t1)
                attempts.append(round((c1 - c0) / (t1 - t0), 2))
                throttles.append(round((h1 - h0) / (t1 - t0), 2))
        return {"t": t, "attempts_per_s": attempts, "throttles_per_s": throttles}


@contextlib.asynccontextmanager
async def sampling(emulator: EmulatorProcess, start: float) -> AsyncIterator[StatsSampler]:
    import anyio

    sampler = StatsSampler(emulator)
    async with anyio.create_task_group() as group:
        group.start_soon(sampler.run, start)
        try:
            yield sampler
        finally:
            group.cancel_scope.cancel()


class WorkerProcess:
    """``orchestrator run`` in its own process (worker defaults unless overridden), logs to a
    file; ready once ``/readyz`` answers 200. ``cwd``: run the ``orchestrator`` package found
    there (another checkout, for an A/B comparison) instead of the installed one."""

    def __init__(
        self, queue_url: str, results_url: str, workdir: str, *, cwd: str | None = None,
        env: dict[str, str] | None = None, **settings: Any,
    ) -> None:  # fmt: skip
        self.metrics_port = free_port()
        values = {
            "queue_url": queue_url,
            "results_queue_url": results_url,
            "metrics_host": "127.0.0.1",
            "metrics_port": str(self.metrics_port),
            "ledger": f"sqlite:///{workdir}/ledger-{self.metrics_port}.db",
            **{k: str(v) for k, v in settings.items()},
        }
        values.setdefault("log_level", "INFO")
        env = worker_environment(values, base=child_env(**(env or {})))
        self.log_path = f"{workdir}/worker-{self.metrics_port}.log"
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                list(WORKER_COMMAND), env=env, stdout=log, stderr=log, cwd=cwd
            )

    def wait_ready(self, deadline: float = 60.0) -> None:
        until = time.monotonic() + deadline
        while time.monotonic() < until:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited with {self.process.returncode}")
            url = f"http://127.0.0.1:{self.metrics_port}/readyz"
            try:
                with urllib.request.urlopen(url, timeout=1) as response:
                    if response.status == 200:
                        return
            except urllib.error.HTTPError as exc:  # 503: not ready yet
                exc.close()  # it holds the response and its socket
            except OSError:  # not listening yet
                pass
            time.sleep(0.1)
        raise TimeoutError("worker not ready")

    def metrics(self) -> dict[str, float]:
        """Prometheus samples of the worker's /metrics, ``name{labels}`` → value."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
        samples = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                samples[name] = float(value)
        return samples

    def cpu(self) -> float:
        return cpu_seconds(self.process.pid)

    def rss(self) -> int:
        return rss_bytes(self.process.pid)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(40)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
