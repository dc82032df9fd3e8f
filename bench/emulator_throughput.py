"""Emulator throughput: calls/s the AmplifyBackend emulator serves on one core.

The emulator runs in a subprocess pinned to one core (``taskset -c <server core>``); this
process pins itself to another core and drives it with aiohttp: ``--concurrency`` workers on
keep-alive connections, each sending GetBackendJob (a simple signed-looking GET) in a loop for
``--duration`` seconds. Prints calls/s per run and the median of ``--runs`` runs.

    .venv/bin/python bench/emulator_throughput.py [--duration 5] [--runs 3] [--concurrency 64]

``--min-rate N`` makes the exit status 1 when the median is below N calls/s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp

from orchestrator.testing.processes import free_port

ROOT = Path(__file__).resolve().parent.parent
APP, ENV = "bench", "dev"
HEADERS = {
    "Authorization": (
        "AWS4-HMAC-SHA256 Credential=testing/20250101/us-east-1/amplifybackend/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64
    ),
    "X-Amz-Date": "20250101T000000Z",
    "Content-Type": "application/json",
}


@contextlib.contextmanager
def emulator_process(port: int, core: int) -> Iterator[subprocess.Popen[bytes]]:
    command = [sys.executable, "-m", "orchestrator.emulator", "--port", str(port)]
    command += ["--app", f"{APP}:{ENV}", "--job-duration", "0", "0", "--seed", "1"]
    if shutil.which("taskset"):
        command = ["taskset", "-c", str(core), *command]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
    try:
        yield process
    finally:
        process.terminate()
        process.wait(timeout=10)


async def _wait_ready(session: aiohttp.ClientSession, url: str) -> None:
    deadline = time.monotonic() + 15
    while True:
        try:
            async with session.get(f"{url}/_emulator/health") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientConnectionError:
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.05)


async def _create_job(session: aiohttp.ClientSession, url: str) -> str:
    body = json.dumps({"appId": APP, "appName": APP, "backendEnvironmentName": ENV})
    async with session.post(f"{url}/backend", data=body, headers=HEADERS) as response:
        document = await response.json()
    return str(document["jobId"])


async def _worker(session: aiohttp.ClientSession, target: str, stop_at: float) -> int:
    done = 0
    while time.monotonic() < stop_at:
        async with session.get(target, headers=HEADERS) as response:
            await response.read()
            done += response.status == 200
    return done


async def _run(session: aiohttp.ClientSession, target: str, args: argparse.Namespace) -> float:
    started = time.monotonic()
    stop_at = started + args.duration
    counts = await asyncio.gather(
        *(_worker(session, target, stop_at) for _ in range(args.concurrency))
    )
    return sum(counts) / (time.monotonic() - started)


async def measure(url: str, args: argparse.Namespace) -> list[float]:
    connector = aiohttp.TCPConnector(limit=args.concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        await _wait_ready(session, url)
        job_id = await _create_job(session, url)
        target = f"{url}/backend/{APP}/job/{ENV}/{job_id}"
        warm = argparse.Namespace(duration=0.5, concurrency=args.concurrency)
        await _run(session, target, warm)
        rates = []
        for run in range(args.runs):
            rate = await _run(session, target, args)
            print(f"run {run + 1}: {rate:,.0f} calls/s", flush=True)
            rates.append(rate)
        return rates


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--server-core", type=int, default=0)
    parser.add_argument("--client-core", type=int, default=1)
    parser.add_argument("--min-rate", type=float, default=0.0)
    args = parser.parse_args(argv)
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setaffinity(0, {args.client_core})
    port = free_port()
    with emulator_process(port, args.server_core):
        rates = asyncio.run(measure(f"http://127.0.0.1:{port}", args))
    median = statistics.median(rates)
    print(
        f"GetBackendJob: median {median:,.0f} calls/s over {args.runs} runs of "
        f"{args.duration:g}s, concurrency {args.concurrency}, server pinned to core "
        f"{args.server_core}"
    )
    return 0 if median >= args.min_rate else 1


if __name__ == "__main__":
    sys.exit(main())
