"""No panel says "No data" on day one: every query of the committed dashboards, with its variables substituted
the way Grafana would, is valid PromQL and returns data from a real Prometheus (Debian package) that scraped a
live workload.

The workload: the four demo agents (`python -m agentwatch.tooling.demo.agents`, flaky with --failure-rate 0.7, so
failed runs, tool errors and LLM errors exist) and a small agent calling a model without a price
(tests/agents/unpriced_agent.py), each its own process under `opentelemetry-instrument` with the Prometheus
exporter, against the stub LLM server. Prometheus scrapes them every second and evaluates the committed rules
(so the "firing alerts" panel has Watchdog). One Prometheus and one workload serve every test of this module.

Grafana's variables are substituted as Grafana does for the dashboards' default time range and the
provisioned datasource (timeInterval 15s): `$__interval` = max(range / 1000, the panel's min interval or 15s),
`$__rate_interval` = max(`$__interval` + 15s, 4 x 15s), `$__range` = the panel's relative time (today, this
month, 7d) or the dashboard's range; `$job`, `$agent`, `$model` = their all-value `.*` (and, in a second
pass, one real value each). Queries are instant queries (/api/v1/query with `time` = now).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml

from agentwatch import semconv as sc
from agentwatch.tooling.generate import dashboards as gen
from agentwatch.thresholds import duration_seconds

from support.alerting import REPO, Daemon, binary, free_port, http_json, wait_until

HERE = Path(__file__).parent
BIN = Path(sys.executable).parent
AGENTS = ("support", "research", "flaky", "costly")
JOB = "agentwatch-demo"
DATASOURCE_SCRAPE = duration_seconds(gen.PROMETHEUS_SCRAPE_INTERVAL)
MAX_DATA_POINTS = 1000
# Every series the dashboards read (histograms through their _count), and Prometheus' ALERTS.
REQUIRED = sorted({h + sc.PROM_COUNT_SUFFIX for h in sc.PROM_HISTOGRAMS} | set(sc.PROM_COUNTERS) | {sc.PROM_ALERTS})
# One real value per variable for the second pass (the demo's flaky agent has every kind of failure).
CONCRETE = {"job": JOB, "agent": "flaky", "model": "gpt-4o-mini"}


@dataclass
class Live:
    url: str
    started: float

    def query(self, expr: str, at: float) -> dict[str, Any]:
        params = urllib.parse.urlencode({"query": expr, "time": f"{at:.3f}"})
        try:
            return http_json(f"{self.url}/api/v1/query?{params}", timeout=10)
        except urllib.error.HTTPError as exc:  # 400/422: the body says why
            return json.loads(exc.read() or b"{}") or {"status": "error", "error": str(exc)}


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTWATCH_", "ANTHROPIC_"))}
    env.update(OTEL_METRICS_EXPORTER="prometheus", OTEL_EXPORTER_PROMETHEUS_HOST="127.0.0.1",
               OTEL_TRACES_EXPORTER="none", OTEL_LOGS_EXPORTER="none", ANTHROPIC_OPEN_TELEMETRY="false", **extra)
    return env


@pytest.fixture(scope="module")
def live(stub, tmp_path_factory):
    prometheus_bin = binary("prometheus")  # fails in CI, skips elsewhere, before anything starts
    tmp = tmp_path_factory.mktemp("dashboards-data")
    instrument = str(BIN / "opentelemetry-instrument")
    workload: list[tuple[Daemon, int]] = []
    for name in AGENTS:
        port = free_port()
        argv = [instrument, sys.executable, "-m", "agentwatch.tooling.demo.agents", "--agent", name, "--runs", "100000",
                "--seed", "7", "--failure-rate", "0.7", "--stub-url", stub.url]
        env = _env(OTEL_SERVICE_NAME=f"demo-{name}", OTEL_EXPORTER_PROMETHEUS_PORT=str(port))
        workload.append((Daemon(name, argv, tmp / f"{name}.log", f"http://127.0.0.1:{port}/metrics", env=env), port))
    port = free_port()
    workload.append((Daemon("unpriced", [instrument, sys.executable, str(HERE / "agents" / "unpriced_agent.py")],
                            tmp / "unpriced.log", f"http://127.0.0.1:{port}/metrics",
                            env=_env(OTEL_SERVICE_NAME="unpriced-agent", OTEL_EXPORTER_PROMETHEUS_PORT=str(port),
                                     STUB_URL=stub.url), stdin=subprocess.PIPE), port))
    prom_port = free_port()
    config = tmp / "prometheus.yml"
    config.write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
        "rule_files": [str(p) for p in sorted((REPO / "alerts" / "rules").glob("*.yaml"))],
        "scrape_configs": [{"job_name": JOB, "static_configs": [
            {"targets": [f"127.0.0.1:{p}" for _, p in workload]}]}],
    }))
    (tmp / "data").mkdir()
    prometheus = Daemon("prometheus", [
        prometheus_bin, f"--config.file={config}", f"--storage.tsdb.path={tmp / 'data'}",
        f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=warn",
    ], tmp / "prometheus.log", f"http://127.0.0.1:{prom_port}/-/ready")
    started = time.monotonic()
    daemons = [d for d, _ in workload] + [prometheus]
    try:
        with ThreadPoolExecutor(len(daemons)) as pool:
            list(pool.map(lambda d: d.start(timeout=60), daemons))
        live = Live(f"http://127.0.0.1:{prom_port}", started)

        def values(expr: str, label: str) -> set[str]:
            result = http_json(f"{live.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
            return {r["metric"].get(label, "") for r in result["data"]["result"]}

        def present():
            names = values('group by (__name__) ({__name__=~"(gen_ai|agentwatch)_.+|ALERTS"})', "__name__")
            agents = values(f"group by ({gen.AGENT}) ({sc.PROM_INVOKE_AGENT_DURATION}{sc.PROM_COUNT_SUFFIX})",
                            gen.AGENT)
            return set(REQUIRED) <= names and set(AGENTS) <= agents

        try:
            wait_until(present, 60, "every series the dashboards read, from every agent", interval=0.5)
        except AssertionError as exc:
            logs = "\n".join(f"--- {d.name}:\n{d.log()[-1500:]}" for d in daemons)
            raise AssertionError(f"{exc}\n{logs}") from None
        yield live
    finally:
        for daemon in daemons:
            daemon.stop()


# --- Grafana's variable substitution ------------------------------------------------------------------
def _seconds_since(start: datetime, now: datetime) -> float:
    return max((now - start).total_seconds(), 60.0)


def panel_range(board: dict[str, Any], panel: dict[str, Any], now: float) -> float:
    """Seconds of the panel's time range: its relative time (now/d, now/M, 7d) or the dashboard's."""
    moment = datetime.fromtimestamp(now, timezone.utc)
    relative = panel.get("timeFrom")
    if relative == "now/d":
        return _seconds_since(moment.replace(hour=0, minute=0, second=0, microsecond=0), moment)
    if relative == "now/M":
        return _seconds_since(moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0), moment)
    if relative:
        return duration_seconds(relative)
    start = board["time"]["from"]
    assert start.startswith("now-"), start
    return duration_seconds(start.removeprefix("now-"))


def substitute(board: dict[str, Any], panel: dict[str, Any], expr: str, now: float,
               values: dict[str, str]) -> str:
    range_s = panel_range(board, panel, now)
    interval = max(range_s / MAX_DATA_POINTS, duration_seconds(panel["interval"]) if panel.get("interval")
                   else DATASOURCE_SCRAPE)
    rate_interval = max(interval + DATASOURCE_SCRAPE, 4 * DATASOURCE_SCRAPE)
    builtins = {"__rate_interval": f"{int(rate_interval)}s", "__interval": f"{int(interval)}s",
                "__range": f"{int(range_s)}s"}
    for name, value in {**builtins, **values}.items():
        expr = expr.replace("${%s}" % name, value)
        expr = re.sub(r"\$%s\b" % re.escape(name), lambda _m, v=value: v, expr)
    assert "$" not in expr, f"unsubstituted variable in {expr!r}"
    return expr


def all_values(board: dict[str, Any]) -> dict[str, str]:
    return {v["name"]: v["allValue"] for v in board["templating"]["list"] if v["type"] == "query"}


def boards() -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text()) for p in sorted((REPO / "dashboards").glob("*.json"))}


def queries():
    for name, board in boards().items():
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                yield name, board, panel, target


def _has_data(answer: dict[str, Any]) -> bool:
    data = answer.get("data") or {}
    result = data.get("result")
    if data.get("resultType") == "scalar":
        return result is not None and result[1] != "NaN"
    return bool(result) and any(sample["value"][1] != "NaN" for sample in result)


# --- the tests ----------------------------------------------------------------------------------------
def test_every_variable_query_returns_values(live):
    now = time.time()
    for name, board in boards().items():
        values = all_values(board)
        for variable in board["templating"]["list"]:
            if variable["type"] != "query":
                continue
            match = re.fullmatch(r"label_values\((.+), *([a-zA-Z_][a-zA-Z0-9_]*)\)", variable["query"])
            assert match, variable["query"]
            selector, label = match.groups()
            for var, value in values.items():
                selector = selector.replace(f"${var}", value)
            params = urllib.parse.urlencode({"match[]": selector, "start": f"{now - 6 * 3600:.0f}",
                                             "end": f"{now:.0f}"})
            answer = http_json(f"{live.url}/api/v1/label/{label}/values?{params}")
            assert answer["status"] == "success" and answer["data"], (name, variable["name"], answer)
            if variable["name"] in CONCRETE:
                assert CONCRETE[variable["name"]] in answer["data"], (name, variable["name"], answer["data"])


def poll(live: Live, values_for, may_be_empty=lambda title: False, timeout: float = 45):
    """Evaluates every panel query, again and again for those without data, until each has data (or may be
    empty) or `timeout` passes. Rates need two scrapes and histogram quantiles a call in their window, so a
    query can be empty for the first seconds of the workload. Returns {(file, panel, refId): problem}."""
    pending = list(queries())
    problems: dict[tuple[str, str, str], str] = {}
    deadline = time.monotonic() + timeout
    while True:
        now = time.time()
        still = []
        for name, board, panel, target in pending:
            expr = substitute(board, panel, target["expr"], now, values_for(board))
            answer = live.query(expr, now)
            key = (name, panel["title"], target["refId"])
            if answer.get("status") != "success":
                problems[key] = f"invalid PromQL: {answer.get('error')}\n{expr}"
            elif not _has_data(answer):
                problems[key] = f"no data\n{expr}"
                still.append((name, board, panel, target))
            else:
                problems.pop(key, None)
        pending = still
        waiting = [p for p in pending if not may_be_empty(p[2]["title"])]
        invalid = any(v.startswith("invalid") for v in problems.values())
        if not waiting or invalid or time.monotonic() > deadline:
            return problems
        time.sleep(1)


def _report(problems: dict[tuple[str, str, str], str]) -> str:
    return "\n\n".join(f"{' / '.join(k)}: {v}" for k, v in sorted(problems.items()))


def test_every_panel_query_returns_data(live):
    """With every variable at All (the dashboards' default), every query answers with at least one non-NaN
    sample; fails listing each query that is invalid or stays empty."""
    assert len(list(queries())) >= 50
    problems = poll(live, all_values)
    assert not problems, (f"{len(problems)} panel queries without data after "
                          f"{time.monotonic() - live.started:.0f}s of workload:\n{_report(problems)}")


def test_every_panel_query_is_valid_for_one_job_agent_and_model(live):
    """With one real value per variable (job, agent=flaky, model=gpt-4o-mini) every query is valid, and only
    the panels that cannot have data for that choice are empty: the unpriced calls (another model) and the
    firing alerts (none of flaky's has held for its `for` yet)."""

    def allowed(title: str) -> bool:
        return "Unpriced" in title or title == "Firing agentwatch alerts"

    problems = poll(live, lambda board: {var: CONCRETE[var] for var in all_values(board)}, allowed)
    unexpected = {k: v for k, v in problems.items() if v.startswith("invalid") or not allowed(k[1])}
    assert not unexpected, _report(unexpected)
