"""bench/results/latest.json, latest.md (the README table) and PNG plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_json(results: dict[str, Any], out: Path) -> None:
    def trimmed(value: Any) -> Any:  # per-call series stay in the plots, not the JSON
        if isinstance(value, dict):
            return {
                k: trimmed(v) for k, v in value.items() if k not in {"completions", "latencies"}
            }
        return value

    (out / "latest.json").write_text(json.dumps(trimmed(results), indent=2) + "\n")


def markdown(results: dict[str, Any], command: str, date: str) -> str:
    lines = [
        f"Measured {date} with `{command}` (emulator on loopback, same process and settings for every contender).",
        "",
    ]
    goodput = results.get("goodput")
    if goodput:
        lines += [
            f"**Throttled goodput** (R = {goodput['R']:g} calls/s, burst {goodput['burst']}, {goodput['calls']} mutating calls)",
            "",
            "| offered load | contender | goodput/R | throttled/attempts | attempts/success | failed | p50 s | p99 s | drain s |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for mode, label in (("closed_loop", "64 tasks, closed loop"), ("poisson", "Poisson 1.5·R")):
            for name, row in goodput[mode].items():
                lines.append(
                    f"| {label} | {name} | {row['goodput_over_R']} | {row['throttled_ratio']:.2%} | "
                    f"{row['attempts_per_success']} | {row['failed']} | {row['latency_p50_s']} | "
                    f"{row['latency_p99_s']} | {row['drain_s']} |"
                )
        lines.append("")
    fairness = results.get("fairness")
    if fairness:
        lines += [
            f"**Fairness** ({fairness['processes']} processes, each our client with 16 tasks, one emulator limit R = {fairness['R']:g}/s, {fairness['seconds']:g} s, no coordination)",
            "",
            "| shares | Jain's index | total goodput/R | throttled/attempts |",
            "|---|---|---|---|",
            f"| {' / '.join(f'{s:.3f}' for s in fairness['shares'])} | {fairness['jain_index']} | {fairness['total_goodput_over_R']} | {fairness['throttled_ratio']:.2%} |",
            "",
        ]
    tracking = results.get("tracking")
    if tracking:
        lines += [
            f"**Tracking cost** ({tracking['jobs']} jobs in flight over {tracking['environments']} environments, durations 30–120 s scaled ÷{tracking['time_scale']:g})",
            "",
            "| contender | tracking calls | calls/job | detection p50 s | detection p99 s |",
            "|---|---|---|---|---|",
        ]
        for name in ("ours", "getbackendjob_every_2s"):
            row = tracking[name]
            lines.append(
                f"| {name} | {row['tracking_calls']} | {row['calls_per_job']} | "
                f"{row['detection_p50_s']} | {row['detection_p99_s']} |"
            )
        lines += ["", f"Ours makes {tracking['fewer_calls_ratio']}× fewer tracking calls.", ""]
    return "\n".join(lines)


def plots(results: dict[str, Any], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    goodput = results.get("goodput")
    if not goodput:
        return written
    for mode in ("closed_loop", "poisson"):
        figure, (rate_axis, cdf_axis) = plt.subplots(1, 2, figsize=(12, 4))
        for name, row in goodput[mode].items():
            done = row["completions"]
            if done:
                seconds = int(max(done)) + 1
                per_second = [0] * seconds
                for t in done:
                    per_second[int(t)] += 1
                rate_axis.plot(range(seconds), per_second, label=name)
            latencies = sorted(row["latencies"])
            if latencies:
                cdf_axis.plot(
                    latencies, [(i + 1) / len(latencies) for i in range(len(latencies))], label=name
                )
        rate_axis.axhline(goodput["R"], color="grey", linestyle="--", label="R")
        rate_axis.set(title=f"successes per second ({mode})", xlabel="s", ylabel="calls/s")
        cdf_axis.set(
            title="latency CDF (offer → success)", xlabel="s", ylabel="fraction", xscale="log"
        )
        rate_axis.legend()
        cdf_axis.legend()
        path = out / f"goodput_{mode}.png"
        figure.tight_layout()
        figure.savefig(path, dpi=90)
        plt.close(figure)
        written.append(path)
    return written
