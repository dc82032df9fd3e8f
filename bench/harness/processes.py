"""The servers and the worker in their own processes.

The emulator (and moto's SQS server where a scenario needs one) runs in its **own process**, so
the process under measurement shares neither its GIL nor its CPU accounting with the servers;
scenarios reconfigure it at runtime through its admin endpoints (``/_emulator/config``,
``/_emulator/reset``, ``/_emulator/stats``). ``orchestrator run`` under measurement is a
:class:`WorkerProcess`; every child gets :func:`child_env` (fake AWS, quiet logs).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

from bench.harness.measure import cpu_seconds, rss_bytes
from orchestrator.testing.processes import WORKER_COMMAND, free_port, worker_environment

AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}


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
