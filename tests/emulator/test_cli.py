"""The command line: flags to config, ``python -m orchestrator.emulator``, clean shutdown."""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from orchestrator.emulator.cli import add_arguments, config_from_args, run
from tests.emulator.support import wait_until

ROOT = Path(__file__).resolve().parents[2]


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def test_every_flag_reaches_the_config() -> None:
    args = parse(
        "--host",
        "0.0.0.0",
        "--port",
        "0",
        "--rate",
        "20",
        "--burst",
        "4",
        "--per-app-rate",
        "5",
        "--per-app-burst",
        "2",
        "--job-duration",
        "0.1",
        "0.3",
        "--job-duration-dist",
        "exponential",
        "--fail-ratio",
        "0.1",
        "--fail-pattern",
        "bad",
        "--fault-504",
        "0.01",
        "--fault-500",
        "0.02",
        "--fault-reset",
        "0.03",
        "--fault-operations",
        "CreateBackendAuth,get_backend",
        "--latency",
        "0.004",
        "--latency-spike-ratio",
        "0.05",
        "--latency-spike",
        "1.5",
        "--visibility-delay",
        "0.2",
        "--conflict-mode",
        "accept",
        "--page-size",
        "3",
        "--app",
        "a1:dev,prod",
        "--app",
        "a2",
        "--auto-create",
        "--no-require-signature",
        "--seed",
        "9",
    )
    cfg = config_from_args(args)
    assert (args.host, args.port) == ("0.0.0.0", 0)
    assert (cfg.rate, cfg.burst, cfg.per_app_rate, cfg.per_app_burst) == (20, 4, 5, 2)
    assert cfg.job_duration == (0.1, 0.3) and cfg.job_duration_dist == "exponential"
    assert (cfg.fail_ratio, cfg.fail_pattern) == (0.1, "bad")
    assert (cfg.fault_504_ratio, cfg.fault_500_ratio, cfg.fault_reset_ratio) == (
        0.01,
        0.02,
        0.03,
    )
    assert cfg.fault_operations == frozenset({"CreateBackendAuth", "GetBackend"})
    assert (cfg.latency, cfg.latency_spike_ratio, cfg.latency_spike) == (0.004, 0.05, 1.5)
    assert (cfg.visibility_delay, cfg.conflict_mode, cfg.list_page_size) == (0.2, "accept", 3)
    assert cfg.apps == {"a1": ("dev", "prod"), "a2": ()}
    assert cfg.auto_create and not cfg.require_signature and cfg.seed == 9


def test_defaults_and_duration_bounds() -> None:
    defaults = config_from_args(parse())
    assert defaults.require_signature and defaults.rate is None
    assert parse().port == 4580 and parse().host == "127.0.0.1"
    assert config_from_args(parse("--job-duration-min", "1")).job_duration == (1.0, 1.0)
    assert config_from_args(
        parse("--job-duration-min", "0.01", "--job-duration-max", "0.02")
    ).job_duration == (0.01, 0.02)


def test_invalid_flags_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(parse("--fail-ratio", "3")) == 2
    assert "fail_ratio" in capsys.readouterr().err
    assert run(parse("--app", ":dev")) == 2


def test_module_help() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator.emulator", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0
    for flag in ("--rate", "--fault-504", "--visibility-delay", "--no-require-signature"):
        assert flag in done.stdout


def test_serve_stops_cleanly_on_sigterm() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "orchestrator.emulator", "--port", str(port), "--app", "a:dev"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/_emulator/stats"

        def stats() -> dict[str, object] | None:
            try:
                with urllib.request.urlopen(url, timeout=1) as response:
                    return dict(json.load(response))
            except OSError:
                return None

        assert wait_until(stats, timeout=30, step=0.05)["config"]["apps"] == {"a": ["dev"]}
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0
    assert "listening on" in err and "stopped" in err
