"""Benchmarks (`make bench`) and the chaos suite (`make chaos`); see bench/__main__.py."""

import sys

from orchestrator import logs

# Benchmark processes (and their children) log warnings and errors only. Not under pytest:
# the tests import bench.chaos and capture log events at INFO themselves.
if "pytest" not in sys.modules:
    logs.configure("WARNING")
