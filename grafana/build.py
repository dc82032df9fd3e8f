"""Generate the committed Grafana/alerting artefacts: `.venv/bin/python grafana/build.py`.

* grafana/dashboards/orchestrator.json from the panels below;
* grafana/alerts/orchestrator.rules.test.yaml (for `promtool test rules`) from the cases in
  grafana/alerts/cases.yaml, each expected alert completed with the annotations its rule
  renders (so the runbook text lives in one place, the rules).

The committed files must equal this script's output (tests/test_observability.py checks): edit
here or in the rules/cases, run the script, commit all.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

SEL = 'instance=~"$instance"'
RATE = "$__rate_interval"
HERE = Path(__file__).parent
OUT = HERE / "dashboards" / "orchestrator.json"
RULES = HERE / "alerts" / "orchestrator.rules.yaml"
CASES = HERE / "alerts" / "cases.yaml"
RULE_TESTS = HERE / "alerts" / "orchestrator.rules.test.yaml"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
#: From an exemplar of the request-duration panel to its trace in Explore (Tempo, uid "tempo").
TRACE_LINK = {
    "title": "Trace ${__data.fields.trace_id}",
    "targetBlank": True,
    "url": '/explore?schemaVersion=1&panes={"trace":{"datasource":"tempo","queries":[{"refId":'
    '"A","datasource":{"type":"tempo","uid":"tempo"},"queryType":"traceql","query":'
    '"${__data.fields.trace_id}"}],"range":{"from":"now-6h","to":"now"}}}',
}


def q(metric: str, extra: str = "") -> str:
    """``metric{instance=~"$instance",extra}``."""
    return f"{metric}{{{SEL}{',' + extra if extra else ''}}}"


def rate(metric: str, by: str = "", extra: str = "") -> str:
    group = f" by ({by})" if by else ""
    return f"sum{group} (rate({q(metric, extra)}[{RATE}]))"


def quantile(phi: float, histogram: str, by: str = "") -> str:
    labels = f"le, {by}" if by else "le"
    return (
        f"histogram_quantile({phi}, sum by ({labels}) (rate({q(histogram + '_bucket')}[{RATE}])))"
    )


def ratio(numerator: str, denominator: str) -> str:
    return f"({numerator}) / clamp_min({denominator}, 1e-9)"


class Layout:
    """Places panels left to right in rows of 24 grid units; numbers the panels."""

    def __init__(self) -> None:
        self.panels: list[dict[str, Any]] = []
        self.x = self.y = 0
        self.next_id = 1

    def row(self, title: str) -> None:
        self.y += 0 if self.x == 0 else 8
        self.x = 0
        self._add({"type": "row", "title": title, "collapsed": False, "panels": []}, 24, 1)
        self.y += 1

    def panel(self, panel: dict[str, Any], width: int = 8, height: int = 8) -> None:
        if self.x + width > 24:
            self.x, self.y = 0, self.y + height
        self._add(panel, width, height)
        self.x += width

    def _add(self, panel: dict[str, Any], width: int, height: int) -> None:
        panel["id"] = self.next_id
        panel["gridPos"] = {"x": self.x, "y": self.y, "w": width, "h": height}
        self.next_id += 1
        self.panels.append(panel)


def targets(*queries: tuple[str, str]) -> list[dict[str, Any]]:
    return [
        {"datasource": DATASOURCE, "expr": expr, "legendFormat": legend, "refId": chr(65 + i)}
        for i, (expr, legend) in enumerate(queries)
    ]


def timeseries(
    title: str, unit: str, *queries: tuple[str, str], stack: bool = False
) -> dict[str, Any]:
    custom: dict[str, Any] = {"fillOpacity": 10, "showPoints": "never"}
    if stack:
        custom["stacking"] = {"mode": "normal"}
    return {
        "type": "timeseries",
        "title": title,
        "datasource": DATASOURCE,
        "targets": targets(*queries),
        "fieldConfig": {"defaults": {"unit": unit, "custom": custom}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
    }


def stat(
    title: str, unit: str, query: str, thresholds: list[tuple[float | None, str]]
) -> dict[str, Any]:
    steps = [{"value": value, "color": color} for value, color in thresholds]
    return {
        "type": "stat",
        "title": title,
        "datasource": DATASOURCE,
        "targets": targets((query, title)),
        "fieldConfig": {
            "defaults": {"unit": unit, "thresholds": {"mode": "absolute", "steps": steps}},
            "overrides": [],
        },
        "options": {"reduceOptions": {"calcs": ["lastNotNull"]}, "colorMode": "background"},
    }


def heatmap(title: str, histogram: str) -> dict[str, Any]:
    query = {
        "datasource": DATASOURCE,
        "expr": f"sum by (le) (increase({q(histogram + '_bucket')}[{RATE}]))",
        "format": "heatmap",
        "legendFormat": "{{le}}",
        "refId": "A",
    }
    return {
        "type": "heatmap",
        "title": title,
        "datasource": DATASOURCE,
        "targets": [query],
        "options": {"calculate": False, "yAxis": {"unit": "s"}, "color": {"scheme": "Oranges"}},
    }


def overview(layout: Layout) -> None:
    layout.row("Overview")
    finished = rate("orchestrator_requests_total", extra='outcome=~"SUCCEEDED|FAILED"')
    succeeded = rate("orchestrator_requests_total", extra='outcome="SUCCEEDED"')
    layout.panel(
        timeseries(
            "Requests/s by outcome",
            "reqps",
            (rate("orchestrator_requests_total", "outcome"), "{{outcome}}"),
            stack=True,
        )
    )
    layout.panel(
        stat(
            "Success ratio (SUCCEEDED / finished)",
            "percentunit",
            ratio(succeeded, finished),
            [(None, "red"), (0.9, "orange"), (0.99, "green")],
        ),
        width=4,
    )
    layout.panel(
        stat(
            "Requests in progress",
            "short",
            f"sum({q('orchestrator_requests_in_progress')})",
            [(None, "green")],
        ),
        width=4,
    )
    layout.panel(
        timeseries(
            "FAILED and REJECTED by reason",
            "reqps",
            (
                rate(
                    "orchestrator_requests_total", "outcome, reason", 'outcome=~"FAILED|REJECTED"'
                ),
                "{{outcome}} {{reason}}",
            ),
            stack=True,
        )
    )
    latency = timeseries(
        "End-to-end latency (receive → outcome sent)",
        "s",
        (quantile(0.5, "orchestrator_request_duration_seconds"), "p50"),
        (quantile(0.99, "orchestrator_request_duration_seconds"), "p99"),
    )
    # Exemplars: the trace id of a request behind the histogram (tracing on, docs/tracing.md),
    # each linked to its trace in the tracing datasource of uid "tempo".
    for target in latency["targets"]:
        target["exemplar"] = True
    latency["fieldConfig"]["defaults"]["links"] = [TRACE_LINK]
    layout.panel(latency)


def api(layout: Layout) -> None:
    layout.row("AmplifyBackend API")
    calls = "orchestrator_api_calls_total"
    layout.panel(
        timeseries(
            "Calls/s by operation and result",
            "reqps",
            (rate(calls, "operation, result"), "{{operation}} {{result}}"),
        )
    )
    layout.panel(
        timeseries(
            "Throttle ratio (TooManyRequestsException / calls)",
            "percentunit",
            (ratio(rate(calls, extra='result="throttled"'), rate(calls)), "throttled"),
        )
    )
    layout.panel(
        timeseries(
            "Adaptive limiter: allowed rate, cuts",
            "short",
            (f"sum({q('orchestrator_rate_limiter_rate')})", "allowed calls/s"),
            (rate("orchestrator_rate_limiter_cuts_total"), "cuts/s"),
            (rate("orchestrator_rate_limiter_delayed_total"), "delayed calls/s"),
        )
    )
    layout.panel(
        timeseries(
            "Call latency by operation",
            "s",
            (
                quantile(0.5, "orchestrator_api_call_duration_seconds", "operation"),
                "p50 {{operation}}",
            ),
            (
                quantile(0.99, "orchestrator_api_call_duration_seconds", "operation"),
                "p99 {{operation}}",
            ),
        )
    )
    layout.panel(
        timeseries(
            "Retries/s by reason",
            "reqps",
            (rate("orchestrator_api_retries_total", "reason"), "{{reason}}"),
        )
    )
    layout.panel(
        timeseries(
            "Time waiting for a limiter token",
            "s",
            (quantile(0.99, "orchestrator_rate_limiter_wait_seconds"), "p99"),
            (
                ratio(
                    rate("orchestrator_rate_limiter_wait_seconds_sum"),
                    rate("orchestrator_rate_limiter_wait_seconds_count"),
                ),
                "mean",
            ),
        )
    )


def jobs(layout: Layout) -> None:
    layout.row("Jobs")
    timed_out = q("orchestrator_jobs_finished_total", 'status="TIMED_OUT"')
    layout.panel(
        timeseries(
            "Jobs in flight by operation",
            "short",
            (f"sum by (operation) ({q('orchestrator_jobs_in_flight')})", "{{operation}}"),
            stack=True,
        )
    )
    layout.panel(
        timeseries(
            "Job completions/s by status",
            "short",
            (rate("orchestrator_jobs_finished_total", "status"), "{{status}}"),
        )
    )
    layout.panel(heatmap("Job duration", "orchestrator_job_duration_seconds"))
    layout.panel(
        stat(
            "Jobs past their timeout (1 h)",
            "short",
            f"sum(increase({timed_out}[1h]))",
            [(None, "green"), (1, "red")],
        ),
        width=4,
    )
    layout.panel(
        timeseries(
            "Detection delay (UpdateTime → noticed)",
            "s",
            (quantile(0.5, "orchestrator_job_detection_delay_seconds"), "p50"),
            (quantile(0.99, "orchestrator_job_detection_delay_seconds"), "p99"),
        ),
        width=10,
    )
    layout.panel(
        timeseries(
            "Tracker: sweeps/s, pages per sweep, sweep p99",
            "short",
            (rate("orchestrator_tracker_sweeps_total"), "sweeps/s"),
            (
                ratio(
                    rate("orchestrator_tracker_sweep_pages_sum"),
                    rate("orchestrator_tracker_sweep_pages_count"),
                ),
                "pages per sweep",
            ),
            (quantile(0.99, "orchestrator_tracker_sweep_duration_seconds"), "sweep p99 (s)"),
        ),
        width=10,
    )


def queue(layout: Layout) -> None:
    layout.row("Queue")
    visible = q("orchestrator_queue_messages", 'queue="main", state="visible"')
    layout.panel(
        timeseries(
            "Queue depth (GetQueueAttributes)",
            "short",
            (f"max by (queue, state) ({q('orchestrator_queue_messages')})", "{{queue}} {{state}}"),
        )
    )
    layout.panel(
        timeseries(
            "Backlog: visible on the queue + held in read-ahead",
            "short",
            (f"max({visible})", "visible on the queue"),
            (
                f"sum by (instance) ({q('orchestrator_messages_waiting')})",
                "read-ahead {{instance}}",
            ),
            stack=True,
        )
    )
    layout.panel(
        timeseries(
            "Time on the queue before receipt",
            "s",
            (quantile(0.5, "orchestrator_message_wait_seconds"), "p50"),
            (quantile(0.99, "orchestrator_message_wait_seconds"), "p99"),
        )
    )
    layout.panel(
        timeseries(
            "DLQ moves/s by reason, refused moves/s",
            "short",
            (rate("orchestrator_dlq_moves_total", "reason"), "{{reason}}"),
            (rate("orchestrator_dlq_move_failures_total", "reason"), "refused {{reason}}"),
        )
    )
    layout.panel(
        timeseries(
            "Receives, deletes, visibility extensions",
            "short",
            (rate("orchestrator_sqs_receives_total", "result"), "receives {{result}}"),
            (rate("orchestrator_messages_received_total"), "messages received"),
            (rate("orchestrator_sqs_deletes_total"), "messages deleted"),
            (rate("orchestrator_sqs_calls_total", "operation"), "{{operation}} calls"),
            (
                rate("orchestrator_sqs_visibility_extensions_total", "result"),
                "extensions {{result}}",
            ),
        )
    )


def worker(layout: Layout) -> None:
    layout.row("Worker")
    layout.panel(
        timeseries(
            "Event-loop lag p99",
            "s",
            (quantile(0.99, "orchestrator_event_loop_lag_seconds", "instance"), "{{instance}}"),
        ),
        width=6,
    )
    layout.panel(
        timeseries(
            "CPU (cores)",
            "short",
            (f"rate({q('process_cpu_seconds_total')}[{RATE}])", "{{instance}}"),
        ),
        width=6,
    )
    layout.panel(
        timeseries(
            "Resident memory",
            "bytes",
            (q("process_resident_memory_bytes"), "{{instance}}"),
        ),
        width=6,
    )
    layout.panel(
        timeseries(
            "Up and ready",
            "short",
            (q("up"), "up {{instance}}"),
            (q("orchestrator_ready"), "ready {{instance}}"),
        ),
        width=6,
    )


def dashboard() -> dict[str, Any]:
    layout = Layout()
    for section in (overview, api, jobs, queue, worker):
        section(layout)
    return {
        "uid": "orchestrator",
        "title": "Orchestrator (AmplifyBackend jobs)",
        "tags": ["orchestrator", "amplifybackend", "sqs"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-3h", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Data source",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                },
                {
                    "name": "instance",
                    "label": "Instance",
                    "type": "query",
                    "datasource": DATASOURCE,
                    "query": {
                        "query": "label_values(orchestrator_build_info, instance)",
                        "refId": "instance",
                    },
                    "definition": "label_values(orchestrator_build_info, instance)",
                    "refresh": 2,
                    "multi": True,
                    "includeAll": True,
                    "allValue": ".*",
                    "current": {"text": "All", "value": "$__all"},
                    "sort": 1,
                    "hide": 0,
                },
            ]
        },
        "annotations": {"list": []},
        "panels": layout.panels,
    }


def render() -> str:
    return json.dumps(dashboard(), indent=2, sort_keys=True) + "\n"


def _annotations(rule: dict[str, Any], labels: dict[str, str]) -> dict[str, str]:
    def fill(text: str) -> str:
        return re.sub(r"{{\s*\$labels\.(\w+)\s*}}", lambda m: labels.get(m.group(1), ""), text)

    return {name: fill(text) for name, text in rule["annotations"].items()}


def render_rule_tests() -> str:
    rules = {
        rule["alert"]: rule
        for group in yaml.safe_load(RULES.read_text())["groups"]
        for rule in group["rules"]
    }
    cases = yaml.safe_load(CASES.read_text())
    for test in cases["tests"]:
        for check in test.get("alert_rule_test", []):
            rule = rules[check["alertname"]]
            for alert in check.get("exp_alerts") or []:
                alert["exp_annotations"] = _annotations(rule, alert["exp_labels"])
    header = "# Generated by grafana/build.py from cases.yaml and the rules: do not edit.\n"
    return header + yaml.safe_dump(cases, sort_keys=False, width=100, allow_unicode=True)


def main() -> None:
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(render())
    RULE_TESTS.write_text(render_rule_tests())
    print(f"wrote {OUT} and {RULE_TESTS}")


if __name__ == "__main__":
    main()
