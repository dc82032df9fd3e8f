"""bench/results/latest.json, latest.md (the README table), the targets and PNG plots.

* :mod:`bench.report.results_json`: :func:`write_json`, latest.json without per-call series;
* :mod:`bench.report.tables`: :func:`markdown`, latest.md;
* :mod:`bench.report.targets`: :func:`targets`, each target of ours, measured and met or not;
* :mod:`bench.report.plots`: :func:`plots`, the PNG plots.
"""

from __future__ import annotations

from bench.report.plots import plots
from bench.report.results_json import write_json
from bench.report.tables import markdown
from bench.report.targets import targets

__all__ = ["markdown", "plots", "targets", "write_json"]
