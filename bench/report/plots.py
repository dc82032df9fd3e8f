"""The PNG plots in bench/results/, from the per-call series of goodput, adaptation,
fairness and the noisy neighbour."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _rate_line(axis: Any, done: list[float], label: str) -> None:
    if done:
        per_second = [0] * (int(max(done)) + 1)
        for t in done:
            per_second[int(t)] += 1
        axis.plot(range(len(per_second)), per_second, label=label)


def _cdf(axis: Any, values: list[float], label: str) -> None:
    ordered = sorted(values)
    if ordered:
        axis.plot(ordered, [(i + 1) / len(ordered) for i in range(len(ordered))], label=label)


def _plot_goodput(plt: Any, goodput: dict[str, Any]) -> dict[str, Any]:
    figures = {}
    for mode in ("closed_loop", "poisson"):
        figure, (rate_axis, throttle_axis, cdf_axis) = plt.subplots(1, 3, figsize=(16, 4))
        for name, row in goodput[mode].items():
            _rate_line(rate_axis, row["completions"], name)
            series = row.get("series", {})
            throttle_axis.plot(series.get("t", []), series.get("throttles_per_s", []), label=name)
            _cdf(cdf_axis, row["latencies"], name)
        rate_axis.axhline(goodput["R"], color="grey", linestyle="--", label="R")
        rate_axis.set(title=f"successes per second ({mode})", xlabel="s", ylabel="calls/s")
        throttle_axis.set(title="throttled attempts per second", xlabel="s", ylabel="429/s")
        cdf_axis.set(title="latency CDF (offer → success)", xlabel="s", ylabel="fraction",
                     xscale="log")  # fmt: skip
        for axis in (rate_axis, throttle_axis, cdf_axis):
            axis.legend()
        figures[f"goodput_{mode}.png"] = figure
    return figures


def _plot_adaptation(plt: Any, adaptation: dict[str, Any]) -> dict[str, Any]:
    figure, (rate_axis, throttle_axis) = plt.subplots(1, 2, figsize=(14, 4))
    for name, row in adaptation.items():
        if isinstance(row, dict) and "steps" in row:
            _rate_line(rate_axis, row["completions"], name)
            throttle_axis.plot(row["series"]["t"], row["series"]["throttles_per_s"], label=name)
    plan = adaptation["plan"]
    end = plan[-1][0] + (plan[-1][0] - plan[-2][0])
    xs = [t for t, _ in plan] + [end]
    rate_axis.step(xs, [r for _, r in plan] + [plan[-1][1]], where="post", color="grey",
                   linestyle="--", label="R")  # fmt: skip
    rate_axis.set(title="successes per second, R steps", xlabel="s", ylabel="calls/s")
    throttle_axis.set(title="throttled attempts per second", xlabel="s", ylabel="429/s")
    rate_axis.legend()
    throttle_axis.legend()
    return {"adaptation.png": figure}


def _plot_fairness(plt: Any, fairness: dict[str, Any]) -> dict[str, Any]:
    figure, axis = plt.subplots(figsize=(8, 4))
    for index, series in enumerate(fairness.get("per_process_rate", [])):
        axis.plot(range(len(series)), series, label=f"process {index}")
    axis.axhline(fairness["R"] / fairness["processes"], color="grey", linestyle="--",
                 label="R / 3")  # fmt: skip
    axis.set(title="successes per second per process", xlabel="s", ylabel="calls/s")
    axis.legend()
    return {"fairness.png": figure}


def _plot_noisy(plt: Any, noisy: dict[str, Any]) -> dict[str, Any]:
    figure, axis = plt.subplots(figsize=(8, 4))
    for name in ("b_alone", "b_with_flood", "b_with_flood_no_fairness"):
        _cdf(axis, noisy[name]["b_latencies"], name.replace("_", " "))
    axis.set(title="app B latency CDF (send → outcome)", xlabel="s", ylabel="fraction",
             xscale="log")  # fmt: skip
    axis.legend()
    return {"noisy_neighbour.png": figure}


_PLOTS = (
    ("goodput", _plot_goodput),
    ("adaptation", _plot_adaptation),
    ("fairness", _plot_fairness),
    ("noisy", _plot_noisy),
)


def plots(results: dict[str, Any], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written: list[Path] = []
    for name, draw in _PLOTS:
        if results.get(name):
            for filename, figure in draw(plt, results[name]).items():
                figure.tight_layout()
                figure.savefig(out / filename, dpi=90)
                plt.close(figure)
                written.append(out / filename)
    return written
