"""bench/results/latest.md (the README table): one Markdown section per scenario, then the
targets."""

from __future__ import annotations

import math
from typing import Any

from bench.report.targets import targets


def _pct(value: float) -> str:
    return f"{value:.2%}"


def _s(value: Any) -> str:
    if value is None:
        return "never"
    if isinstance(value, float) and math.isnan(value):
        return "–"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _md_goodput(goodput: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    lines += [
        f"**1. Throttled goodput** (R = {goodput['R']:g} calls/s, burst {goodput['burst']}, "
        f"{goodput['calls']} mutating calls per contender)",
        "",
        "| offered load | contender | goodput/R | throttled/attempts | attempts/success "
        "| failed | p50 s | p99 s | drain s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    labels = {"closed_loop": f"{goodput['tasks']} tasks, closed loop", "poisson": "Poisson 1.5·R"}
    for mode, label in labels.items():
        for name, row in goodput[mode].items():
            lines.append(
                f"| {label} | {name} | {row['goodput_over_R']} | "
                f"{_pct(row['throttled_ratio'])} | {row['attempts_per_success']} | "
                f"{row['failed']} | {row['latency_p50_s']} | {row['latency_p99_s']} | "
                f"{row['drain_s']} |"
            )
    lines.append("")
    return lines


def _md_adaptation(adaptation: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    plan = " → ".join(f"{r:g}" for _, r in adaptation["plan"])
    lines += [
        f"**2. Adaptation** (R steps {plan} calls/s at "
        f"{', '.join(f'{t:g} s' for t, _ in adaptation['plan'][1:])}; 64 tasks; settle = "
        "time until goodput stays within 10% of the new R; throttles in the "
        f"{adaptation['transition_s']:g} s after the step)",
        "",
        "| contender | "
        + " | ".join(
            f"{s['from_R']:g}→{s['to_R']:g} settle s | throttles"
            for s in adaptation["ours"]["steps"]
        )
        + " |",
        "|---|" + "---|---|" * len(adaptation["ours"]["steps"]),
    ]
    for name, row in adaptation.items():
        if isinstance(row, dict) and "steps" in row:
            cells = " | ".join(
                f"{_s(s['settle_s'])} | {s['throttles_in_transition']}" for s in row["steps"]
            )
            lines.append(f"| {name} | {cells} |")
    lines.append("")
    return lines


def _md_fairness(fairness: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    lines += [
        f"**3. Fairness** ({fairness['processes']} processes, each our client with "
        f"{fairness['tasks_per_process']} tasks, one emulator limit R = {fairness['R']:g}/s, "
        f"no coordination; shares over the {fairness['window_s']:g} s all ran)",
        "",
        "| shares | Jain's index | total goodput/R | throttled/attempts |",
        "|---|---|---|---|",
        f"| {' / '.join(f'{s:.3f}' for s in fairness['shares'])} | {fairness['jain_index']} "
        f"| {fairness['total_goodput_over_R']} | {_pct(fairness['throttled_ratio'])} |",
        "",
    ]
    return lines


def _md_tracking_rows(tracking: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for variant in tracking["variants"].values():
        head = f"| {variant['history']} | {variant['list_order']}"
        if "skipped" in variant:
            lines.append(f"{head} | – | skipped: {variant['skipped']} | | | | |")
            continue
        for name in ("ours", "getbackendjob_every_2s", "list_sweep"):
            row = variant[name]
            lines.append(
                f"{head} | {name} | {row['calls_per_job']} | {row['detection_p50_s']} | "
                f"{row['detection_p99_s']} | {row['noticed']}/{row['jobs']} | "
                f"{row.get('wall_s', '–')} |"
            )
    return lines


def _md_tracking(tracking: dict[str, Any]) -> list[str]:
    scale = tracking["time_scale"]
    ratios = ", ".join(
        f"{v['history']} past {v['list_order']} first {v['ours_over_cli_calls']}×"
        for v in tracking["variants"].values()
        if "ours" in v
    )
    history = ", ".join(f"{o} first {r}×" for o, r in tracking["ours_history_ratio"].items())
    lines = [
        f"**4. Tracking cost** ({tracking['environments']} environments × "
        f"{tracking['jobs_per_environment']} CreateBackendStorage jobs run one after another, "
        "so at most one job of ours in flight per environment, as the worker serialises "
        f"mutations; durations 30–120 s scaled ÷{scale:g}; past jobs per environment and "
        "listing order set on the emulator; each contender on its own emulator with the same "
        "knobs, all three at once)",
        "",
        "| past jobs | listed first | contender | calls/job | detection p50 s | "
        "detection p99 s | noticed | wall s |",
        "|---|---|---|---|---|---|---|---|",
        *_md_tracking_rows(tracking),
        "",
        "ours: the worker's JobTracker with its defaults, time fields scaled; "
        f"getbackendjob_every_2s: the Amplify CLI's way, GetBackendJob every "
        f"{tracking['cli_poll_scaled_s']:g} s (2 s scaled) per job; list_sweep: every "
        f"{tracking['sweep_max_scaled_s']:g} s (sweep max scaled) per environment, "
        "ListBackendJobs pages of 25 until the job is listed. Calls/job = (ListBackendJobs + "
        f"GetBackendJob) / jobs. Ours / CLI calls per job: {ratios or '–'}; ours with 500 past "
        f"jobs / with none: {history or '–'}; detection p99 target (sweep max + 1 s, scaled): "
        f"{tracking['detection_target_s']:g} s.",
        "",
    ]
    return lines


def _md_overhead(overhead: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    per = overhead["calls_per_request"]
    lines += [
        f"**5. Overhead** ({overhead['requests']} change requests through `orchestrator "
        "run` vs the same AWS calls made bare with the same clients; calls per request: "
        f"receive {per['receive']}, create {per['create']}, ListBackendJobs "
        f"{per['list_backend_jobs']}, delete batch {per['delete_batch']}, outcome send 1). "
        f"The bare calls are made at the worker's pace (spread over its "
        f"{overhead['worker_wall_s']:g} s), and for reference back to back (32 tasks): a call "
        "made by a busy process costs less CPU than the same call made alone. CPU ms per "
        f"request, medians of {overhead.get('rounds', 1)} rounds (ratios "
        f"{' / '.join(str(r) for r in overhead.get('ratios', [overhead['ratio']]))}).",
        "",
        "| worker CPU ms/request | bare calls, paced | ratio | bare calls, back to back | ratio |",
        "|---|---|---|---|---|",
        f"| {overhead['worker_cpu_ms_per_request']} | {overhead['bare_cpu_ms_per_request']} "
        f"| {overhead['ratio']}× | {overhead.get('burst_cpu_ms_per_request', '–')} "
        f"| {overhead.get('ratio_to_burst', '–')}× |",
        "",
    ]
    return lines


def _md_tracing(tracing: dict[str, Any]) -> list[str]:
    return [
        f"**8. Tracing cost** ({tracing['requests']} change requests through `orchestrator run` "
        "as in scenario 5, OpenTelemetry tracing off and on (OTLP/HTTP to a local receiver, "
        f"every request sampled, {tracing['spans_per_request']} spans per request) in the same "
        f"run; worker CPU ms per request, medians of {tracing['rounds']} rounds (off "
        f"{' / '.join(str(r) for r in tracing.get('off_cpu_ms_rounds', []))}; on "
        f"{' / '.join(str(r) for r in tracing.get('on_cpu_ms_rounds', []))}; per-round ratios "
        f"{' / '.join(str(r) for r in tracing['ratios'])}).",
        "",
        "| tracing off | tracing on | ratio of medians | median per-round ratio |",
        "|---|---|---|---|",
        f"| {tracing['off_cpu_ms_per_request']} | {tracing['on_cpu_ms_per_request']} "
        f"| {tracing['ratio']}× | {tracing.get('paired_ratio', '–')}× |",
        "",
    ]


def _md_scale(scale: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    lines += [
        f"**6. Scale** ({scale['jobs']:,} jobs in flight over {scale['environments']} "
        f"environments tracked by one process, worker defaults; measured over "
        f"{scale['window_s']:g} s after {scale['warmup_s']:g} s of warm-up)",
        "",
        "| in flight | peak RSS MB | CPU (share of a core) | loop lag p50 ms | p99 ms | "
        "tracking calls/s |",
        "|---|---|---|---|---|---|",
        f"| {scale['in_flight']:,} | {scale['rss_mb']} | {_pct(scale['cpu_share'])} | "
        f"{scale['loop_lag_p50_ms']} | {scale['loop_lag_p99_ms']} | "
        f"{scale['tracking_calls_per_s']} |",
        "",
    ]
    return lines


def _md_noisy(noisy: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    lines += [
        f"**7. Noisy neighbour** (app A floods {noisy['flood']:,} requests, app B sends "
        f"{noisy['b_requests']} one every 0.5 s, one worker, R = {noisy['R']:g}/s; B latency "
        f"= send → outcome event; unfinished after {noisy['limit_s']:g} s counts as "
        f"{noisy['limit_s']:g} s)",
        "",
        "| run | B done | B p50 s | B p99 s | B p99 / alone | A done meanwhile |",
        "|---|---|---|---|---|---|",
    ]
    for name in ("b_alone", "b_with_flood", "b_with_flood_no_fairness"):
        row = noisy[name]
        lines.append(
            f"| {name.replace('_', ' ')} | {row['b_completed']} | {row['b_p50_s']} | "
            f"{row['b_p99_s']} | {row.get('p99_over_alone', 1.0)} | {row['a_done_meanwhile']} |"
        )
    lines.append("")
    return lines


_SECTIONS = (
    ("goodput", _md_goodput),
    ("adaptation", _md_adaptation),
    ("fairness", _md_fairness),
    ("tracking", _md_tracking),
    ("overhead", _md_overhead),
    ("scale", _md_scale),
    ("noisy", _md_noisy),
    ("tracing", _md_tracing),
)


def markdown(results: dict[str, Any], command: str, date: str) -> str:
    lines = [
        f"Measured {date} with `{command}` on a shared 2-core machine (emulator and moto in "
        "their own processes on loopback; every contender of a scenario in the same run, same "
        "emulator settings).",
        "",
    ]
    for name, section in _SECTIONS:
        if results.get(name):
            lines += section(results[name])
    checks = targets(results)
    if checks:
        lines += ["**Targets (ours)**", "", "| target | measured | met |", "|---|---|---|"]
        for name, (value, ok) in checks.items():
            lines.append(f"| {name} | {value} | {'yes' if ok else '**no**'} |")
        lines.append("")
    return "\n".join(lines)
