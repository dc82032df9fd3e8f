"""The dashboard and the alert rules, proven: generated files in sync, promtool unit tests, and
every query evaluated by a real Prometheus scraping a worker during a run against the emulator.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest
import yaml

from orchestrator.testing import Queues, drain, running_worker, send, stop_process, storage_request
from orchestrator.testing.processes import free_port

ROOT = Path(__file__).parents[1]
GRAFANA = ROOT / "grafana"
RULES = GRAFANA / "alerts" / "orchestrator.rules.yaml"
DASHBOARD = GRAFANA / "dashboards" / "orchestrator.json"
MISSING = "install the Debian package prometheus (`apt-get install prometheus`; CI's .ci/run does)"


def tool(name: str) -> str:
    """The path of ``name``; the test fails (never skips) without it."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"`{name}` not found: {MISSING}")
    return path


@pytest.fixture(scope="module")
def build() -> Any:
    sys.path.insert(0, str(GRAFANA))
    try:
        import build as module  # grafana/build.py
    finally:
        sys.path.remove(str(GRAFANA))
    return module


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, expr) for every query of every panel."""
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [(p["title"], t["expr"]) for p in panels for t in p.get("targets", [])]


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def metric_names(expr: str) -> set[str]:
    """Metric names an expression reads (histogram suffixes folded to the family)."""
    names = set(re.findall(r"\b((?:orchestrator|process)_[a-z0-9_]+|up)\b(?!\s*\()", expr))
    return {re.sub(r"_(bucket|sum|count)$", "", name) for name in names}


def test_committed_files_are_what_build_generates(build: Any) -> None:
    assert DASHBOARD.read_text() == build.render(), "run .venv/bin/python grafana/build.py"
    tests_file = GRAFANA / "alerts" / "orchestrator.rules.test.yaml"
    assert tests_file.read_text() == build.render_rule_tests(), "run grafana/build.py"


def test_dashboard_shape() -> None:
    """Rows for each area, datasource and instance variables, every query filtered by instance."""
    dashboard = json.loads(DASHBOARD.read_text())
    rows = [p["title"] for p in dashboard["panels"] if p["type"] == "row"]
    assert rows == ["Overview", "AmplifyBackend API", "Jobs", "Queue", "Worker"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["instance"]["multi"] and variables["instance"]["includeAll"]
    for title, expr in dashboard_queries():
        assert 'instance=~"$instance"' in expr, title
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_every_alert_has_severity_and_a_runbook() -> None:
    rules = alert_rules()
    assert {r["alert"] for r in rules} >= {
        "OrchestratorWorkerDown",
        "OrchestratorNotReady",
        "OrchestratorThrottlingSustained",
        "OrchestratorJobFailureRatioHigh",
        "OrchestratorJobsStuck",
        "OrchestratorBacklogNotDraining",
        "OrchestratorDeadLetters",
        "OrchestratorRequestFailureRatioHigh",
        "OrchestratorDeadLetterMovesFailing",
    }
    for rule in rules:
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        annotations = rule["annotations"]
        assert annotations["summary"] and annotations["description"], rule["alert"]
        assert len(annotations["runbook"].splitlines()) >= 4, rule["alert"]


def test_promtool_checks_and_unit_tests_pass() -> None:
    """`promtool check rules` and `promtool test rules`: each alert fires when it should and
    stays quiet in at least one case where it must not."""
    promtool = tool("promtool")
    alerts_dir = GRAFANA / "alerts"
    for command in (
        ["check", "rules", RULES.name],
        ["test", "rules", "orchestrator.rules.test.yaml"],
    ):
        result = subprocess.run(
            [promtool, *command], cwd=alerts_dir, capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stdout + result.stderr
    cases = yaml.safe_load((alerts_dir / "cases.yaml").read_text())["tests"]
    checked = [c for t in cases for c in t.get("alert_rule_test", [])]
    for rule in alert_rules():
        mine = [c for c in checked if c["alertname"] == rule["alert"]]
        assert any(c.get("exp_alerts") for c in mine), f"{rule['alert']} never fires in a test"
        assert any(not c.get("exp_alerts") for c in mine), f"{rule['alert']}: no quiet case"


def test_counter_alerts_are_tested_on_series_born_at_their_first_increment() -> None:
    """Every alert that counts events with `(X unless X offset W) or increase(X[W])` has a case
    that fires on a counter series with no leading sample (born at its first increment, which
    increase() alone would miss), and a case that fires on series initialised at 0."""
    cases = yaml.safe_load((GRAFANA / "alerts" / "cases.yaml").read_text())["tests"]
    for rule in alert_rules():
        if " unless " not in rule["expr"]:
            continue
        counters = {name for name in metric_names(rule["expr"]) if name.endswith("_total")}
        shapes = set()
        for case in cases:
            if not any(
                c["alertname"] == rule["alert"] and c.get("exp_alerts")
                for c in case.get("alert_rule_test", [])
            ):
                continue
            for series in case["input_series"]:
                if series["series"].split("{")[0] in counters:
                    shapes.add("born" if series["values"].startswith("_") else "initialised")
        assert shapes == {"born", "initialised"}, (rule["alert"], shapes)


def test_every_dashboard_query_parses(tmp_path: Path) -> None:
    """Each dashboard query (Grafana's variables made concrete) as a recording rule: promtool's
    rule check parses every expression as PromQL, without a server."""
    queries = dashboard_queries()
    rules = [
        {"record": f"dashboard:query_{i}", "expr": concrete(expr)}
        for i, (_, expr) in enumerate(queries)
    ]
    rule_file = tmp_path / "dashboard.rules.yaml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run(
        [tool("promtool"), "check", "rules", str(rule_file)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(queries)} rules found" in result.stdout


# --- a real Prometheus ----------------------------------------------------------------------


@pytest.fixture
def emulator_config() -> Any:
    from orchestrator.emulator import EmulatorConfig

    return EmulatorConfig(
        apps={"app1": ["dev", "prod"], "app2": ["dev"]},
        job_duration=(0.1, 0.4),
        fail_pattern="doomed",
        rate=6.0,
        burst=1,
        seed=4,
    )


@contextlib.asynccontextmanager
async def prometheus(tmp_path: Path, target_port: int) -> AsyncIterator[str]:
    """A real Prometheus scraping the worker every second, with the alert rules loaded."""
    port = free_port()
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [
            {
                "job_name": "orchestrator",
                "static_configs": [{"targets": [f"127.0.0.1:{target_port}"]}],
            }
        ],
    }
    config_file = tmp_path / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config))
    command = [
        tool("prometheus"),
        f"--config.file={config_file}",
        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ]
    log = (tmp_path / "prometheus.log").open("wb")
    process = await anyio.open_process(command, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            await poll_http(http, f"{url}/-/ready")
        yield url
    finally:
        await stop_process(process)
        log.close()


async def poll_http(http: aiohttp.ClientSession, url: str, deadline: float = 30) -> None:
    with anyio.fail_after(deadline):
        while True:
            try:
                async with http.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await anyio.sleep(0.2)


async def query(http: aiohttp.ClientSession, url: str, expr: str) -> dict[str, Any]:
    async with http.get(f"{url}/api/v1/query", params={"query": expr}) as response:
        body: dict[str, Any] = await response.json()
    return body


def concrete(expr: str) -> str:
    """Grafana's variables replaced as Grafana would for a 1 s scrape interval."""
    return (
        expr.replace("$__rate_interval", "15s")
        .replace("$__interval", "1s")
        .replace('instance=~"$instance"', 'instance=~".*"')
    )


CORE_PANELS = {
    "Requests/s by outcome",
    "Calls/s by operation and result",
    "Job completions/s by status",
    "Queue depth (GetQueueAttributes)",
    "Event-loop lag p99",
    "Adaptive limiter: allowed rate, cuts",
}


async def test_every_query_works_on_a_real_prometheus(
    sqs: Any, queues: Queues, emulator: Any, tmp_path: Path
) -> None:
    """1. A worker runs requests against a rate-limited emulator: successes, a failed job,
       a rejected body; Prometheus scrapes it every second with the alert rules loaded.
    2. Every metric the dashboard and the rules read exists in the worker's exposition.
    3. Every dashboard query and alert expression evaluates without error through
       /api/v1/query, and the core panels return data; the rule groups are healthy."""
    bodies: list[Any] = [storage_request(f"p-{i}", "app1", "dev", f"s{i}") for i in range(6)]
    bodies += [storage_request("p-doomed", "app2", "dev", "doomed"), '{"request_id": "p-bad"}']
    await send(sqs, queues.main, bodies)
    async with running_worker(queues.settings(initial_rate=40.0)) as (_, started):
        assert started.metrics_port
        async with prometheus(tmp_path, started.metrics_port) as url:
            await drain(sqs, queues.results, len(bodies), deadline=60)
            async with aiohttp.ClientSession() as http:
                exposition = await (
                    await http.get(f"http://127.0.0.1:{started.metrics_port}/metrics")
                ).text()
                await _until_scraped(http, url)
                await _check_names(exposition)
                await _check_queries(http, url)
                await _check_rules(http, url)


async def _until_scraped(http: aiohttp.ClientSession, url: str) -> None:
    """Poll until Prometheus holds several samples of the run's outcome counter."""
    with anyio.fail_after(30):
        while True:
            body = await query(
                http, url, "count_over_time(orchestrator_requests_total{outcome='FAILED'}[1m])"
            )
            result = body["data"]["result"]
            if result and float(result[0]["value"][1]) >= 3:
                return
            await anyio.sleep(0.5)


async def _check_names(exposition: str) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    exposed = {f.name for f in text_string_to_metric_families(exposition)} | {"up"}
    exposed |= {name + suffix for name in exposed for suffix in ("_total", "_info")}
    variables = json.loads(DASHBOARD.read_text())["templating"]["list"]
    used = set().union(*(metric_names(v.get("definition", "")) for v in variables))
    for _, expr in dashboard_queries():
        used |= metric_names(expr)
    for rule in alert_rules():
        used |= metric_names(rule["expr"])
    missing = sorted(name for name in used if name not in exposed)
    assert not missing, missing


async def _check_queries(http: aiohttp.ClientSession, url: str) -> None:
    with_data = set()
    for title, expr in dashboard_queries():
        body = await query(http, url, concrete(expr))
        assert body["status"] == "success", (title, expr, body)
        if body["data"]["result"]:
            with_data.add(title)
    assert CORE_PANELS <= with_data, CORE_PANELS - with_data
    # The emulator's 6 calls/s limit is below the tracker's sweep rate: throttles were seen.
    throttled = await query(http, url, 'sum(orchestrator_api_calls_total{result="throttled"}) > 0')
    assert throttled["data"]["result"], "no throttled call reached Prometheus"
    for rule in alert_rules():
        body = await query(http, url, rule["expr"])
        assert body["status"] == "success", (rule["alert"], body)


async def _check_rules(http: aiohttp.ClientSession, url: str) -> None:
    async with http.get(f"{url}/api/v1/rules") as response:
        groups = (await response.json())["data"]["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert len(rules) == len(alert_rules())
    assert all(rule["health"] in {"ok", "unknown"} for rule in rules), rules
    with anyio.fail_after(15):
        while not all(rule["health"] == "ok" for rule in rules):
            await anyio.sleep(0.5)
            async with http.get(f"{url}/api/v1/rules") as response:
                groups = (await response.json())["data"]["groups"]
            rules = [rule for group in groups for rule in group["rules"]]
