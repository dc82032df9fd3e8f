"""The targets of ours, each scenario's: what was measured and whether it met the target."""

from __future__ import annotations

from typing import Any


def targets(results: dict[str, Any]) -> dict[str, Any]:
    """Each target of ours: (measured, met?)."""
    met: dict[str, Any] = {}
    goodput = results.get("goodput")
    if goodput:
        for mode in ("closed_loop", "poisson"):
            ours, adaptive = goodput[mode]["ours"], goodput[mode]["adaptive"]
            met[f"1 {mode}: goodput ≥ 0.95·R"] = (
                ours["goodput_over_R"],
                ours["goodput_over_R"] >= 0.95,
            )
            met[f"1 {mode}: throttled ≤ 2%"] = (
                ours["throttled_ratio"],
                ours["throttled_ratio"] <= 0.02,
            )
            met[f"1 {mode}: 0 failed"] = (ours["failed"], ours["failed"] == 0)
            met[f"1 {mode}: throttled ≤ adaptive"] = (
                f"{ours['throttled_ratio']} vs {adaptive['throttled_ratio']}",
                ours["throttled_ratio"] <= adaptive["throttled_ratio"],
            )
            met[f"1 {mode}: p99 ≤ adaptive"] = (
                f"{ours['latency_p99_s']} vs {adaptive['latency_p99_s']}",
                ours["latency_p99_s"] <= adaptive["latency_p99_s"],
            )
    adaptation = results.get("adaptation")
    if adaptation:
        for step in adaptation["ours"]["steps"]:
            limit = 5.0 if step["to_R"] > step["from_R"] else 2.0
            settle = step["settle_s"]
            met[f"2 {step['from_R']:g}→{step['to_R']:g}: settle ≤ {limit:g} s"] = (
                settle,
                settle is not None and settle <= limit,
            )
    fairness = results.get("fairness")
    if fairness:
        met["3 Jain ≥ 0.95"] = (fairness["jain_index"], fairness["jain_index"] >= 0.95)
        met["3 total ≥ 0.9·R"] = (
            fairness["total_goodput_over_R"],
            fairness["total_goodput_over_R"] >= 0.9,
        )
    tracking = results.get("tracking")
    if tracking:
        met.update(_tracking_targets(tracking))
    overhead = results.get("overhead")
    if overhead:
        met["5 CPU ≤ 1.5× bare"] = (overhead["ratio"], overhead["ratio"] <= 1.5)
    tracing = results.get("tracing")
    if tracing:
        paired = tracing.get("paired_ratio", tracing["ratio"])
        met["8 tracing on ≤ 1.10× off (paired)"] = (paired, paired <= 1.10)
    scale = results.get("scale")
    if scale:
        met["6 RSS ≤ 200 MB"] = (scale["rss_mb"], scale["rss_mb"] <= 200)
        met["6 CPU ≤ 10% of a core"] = (scale["cpu_share"], scale["cpu_share"] <= 0.10)
        met["6 loop lag p99 ≤ 50 ms"] = (scale["loop_lag_p99_ms"], scale["loop_lag_p99_ms"] <= 50)
    noisy = results.get("noisy")
    if noisy:
        ratio = noisy["b_with_flood"]["p99_over_alone"]
        met["7 B p99 ≤ 2× alone"] = (ratio, ratio <= 2.0)
    return met


def _tracking_label(variant: dict[str, Any]) -> str:
    return f"{variant['history']} past jobs, {variant['list_order']} first"


def _tracking_targets(tracking: dict[str, Any]) -> dict[str, Any]:
    """Scenario 4, per variant: ours ≤ 0.5× the CLI's calls/job and detection p99 ≤ sweep
    max + 1 s (scaled); per listing order: ours with 500 past jobs within 10% of none."""
    met: dict[str, Any] = {}
    target = tracking["detection_target_s"]
    for variant in tracking["variants"].values():
        if "ours" not in variant:
            continue
        label = _tracking_label(variant)
        ratio = variant["ours_over_cli_calls"]
        met[f"4 {label}: calls/job ≤ 0.5× CLI"] = (ratio, ratio <= 0.5)
        p99 = variant["ours"]["detection_p99_s"]
        met[f"4 {label}: detection p99 ≤ sweep max + 1 s (scaled)"] = (
            f"{p99} vs {target}",
            p99 <= target,
        )
    for order, ratio in tracking.get("ours_history_ratio", {}).items():
        met[f"4 {order} first: calls/job with 500 past jobs within 10% of none"] = (
            f"{ratio}×",
            abs(ratio - 1) <= 0.10,
        )
    return met
