"""Two agents with the same name in two clusters, against a real Prometheus (Debian package): with
`queries.aggregation_labels: [cluster]` in the threshold file, the alerts fire per cluster (only the failing
cluster's), the dashboards' `cluster` variable separates the two (every panel query, with the variable
substituted, returns that cluster's series only) and `agentwatch check` gives one verdict per agent and cluster.

The workload: the demo's flaky agent (`python -m agentwatch.tooling.demo.agents --agent flaky`) twice, each its
own process under `opentelemetry-instrument` with the Prometheus exporter: in cluster east with
--failure-rate 0.7 (its tools fail far above the 5 % threshold), in cluster west with --failure-rate 0 (not one
error). Prometheus scrapes both every second and adds `cluster` as a target label, as a multi-cluster setup
does (relabelling, external labels or a collector's resource attributes). The rules, dashboards and check all
come from one override file: the aggregation label, and the tool-error-rate window and `for` shortened to
20s / 5s so the alert fires within the test (nothing else differs from the bundled table).
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from agentwatch.tooling.generate import promql as q

from support.alerting import Daemon, binary, free_port, generate, http_json, wait_until
from support.clihelp import cli
from support.grafana import Live, all_values, queries, substitute

TEST_LAYER = "e2e"  # every test here is e2e unless marked otherwise (conftest.py)

BIN = Path(sys.executable).parent
AGENT = "flaky"
CLUSTERS = {"east": 0.7, "west": 0.0}  # cluster -> the agent's --failure-rate
WINDOW = "20s"
OVERRIDE = {"queries": {"aggregation_labels": ["cluster"]},
            "signals": {"tool_error_rate": {"window": WINDOW, "for": "5s"}}}
ALERT = "AgentToolErrorRateHigh"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTWATCH_", "ANTHROPIC_"))}
    env.update(OTEL_METRICS_EXPORTER="prometheus", OTEL_EXPORTER_PROMETHEUS_HOST="127.0.0.1",
               OTEL_TRACES_EXPORTER="none", OTEL_LOGS_EXPORTER="none", ANTHROPIC_OPEN_TELEMETRY="false", **extra)
    return env


@pytest.fixture(scope="module")
def clusters(stub, tmp_path_factory):
    prometheus_bin = binary("prometheus")  # fails in CI, skips elsewhere, before anything starts
    tmp = tmp_path_factory.mktemp("two-clusters")
    out = generate(tmp / "out", OVERRIDE)
    thresholds_file = tmp / "out-thresholds.yaml"  # where support.alerting.generate wrote the override
    assert yaml.safe_load(thresholds_file.read_text()) == OVERRIDE
    agents: dict[str, tuple[Daemon, int]] = {}
    for cluster, failure_rate in CLUSTERS.items():
        port = free_port()
        argv = [str(BIN / "opentelemetry-instrument"), sys.executable, "-m", "agentwatch.tooling.demo.agents",
                "--agent", AGENT, "--runs", "100000", "--interval", "0.2", "--seed", "7",
                "--failure-rate", str(failure_rate), "--stub-url", stub.url]
        env = _env(OTEL_SERVICE_NAME=f"{AGENT}-{cluster}", OTEL_EXPORTER_PROMETHEUS_PORT=str(port))
        agents[cluster] = (Daemon(f"{AGENT}-{cluster}", argv, tmp / f"{cluster}.log",
                                  f"http://127.0.0.1:{port}/metrics", env=env), port)
    prom_port = free_port()
    config = tmp / "prometheus.yml"
    config.write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
        "rule_files": [str(p) for p in sorted((out / "alerts" / "rules").glob("*.yaml"))],
        "scrape_configs": [{"job_name": "agents", "static_configs": [
            {"targets": [f"127.0.0.1:{port}"], "labels": {"cluster": cluster}}
            for cluster, (_, port) in agents.items()]}],
    }))
    (tmp / "data").mkdir()
    prometheus = Daemon("prometheus", [
        prometheus_bin, f"--config.file={config}", f"--storage.tsdb.path={tmp / 'data'}",
        f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=warn",
    ], tmp / "prometheus.log", f"http://127.0.0.1:{prom_port}/-/ready")
    daemons = [d for d, _ in agents.values()] + [prometheus]
    started = time.monotonic()
    try:
        with ThreadPoolExecutor(len(daemons)) as pool:
            list(pool.map(lambda d: d.start(timeout=60), daemons))
        live = Live(f"http://127.0.0.1:{prom_port}", started)

        def both_clusters_call_tools():
            result = http_json(f"{live.url}/api/v1/query?" + urllib.parse.urlencode(
                {"query": f"{q.tool_calls_rate(WINDOW)} > 0"}))["data"]["result"]
            return {r["metric"].get("cluster") for r in result} >= set(CLUSTERS)

        try:
            wait_until(both_clusters_call_tools, 90, "tool calls recorded in both clusters", interval=0.5)
        except AssertionError as exc:
            logs = "\n".join(f"--- {d.name}:\n{d.log()[-1500:]}" for d in daemons)
            raise AssertionError(f"{exc}\n{logs}") from None
        yield SimpleNamespace(live=live, out=out, thresholds_file=thresholds_file, prometheus=prometheus)
    finally:
        for daemon in daemons:
            daemon.stop()


def _vector(live: Live, expr: str) -> list[dict]:
    answer = live.query(expr, time.time())
    assert answer["status"] == "success", (expr, answer)
    return answer["data"]["result"]


def test_the_alert_fires_for_the_failing_cluster_only(clusters):
    live = clusters.live

    def alerts(state: str | None = None) -> list[dict]:
        found = [a for a in http_json(f"{live.url}/api/v1/alerts")["data"]["alerts"]
                 if a["labels"]["alertname"] == ALERT]
        return [a for a in found if state is None or a["state"] == state]

    try:
        wait_until(lambda: alerts("firing"), 60, f"{ALERT} firing", interval=0.5)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nprometheus log:\n{clusters.prometheus.log()}") from None
    firing = alerts()
    assert {(a["labels"]["cluster"], a["labels"][q.AGENT]) for a in firing} == {("east", AGENT)}, firing
    assert {a["labels"][q.TOOL] for a in firing} <= {"check_inventory", "reserve_stock"}
    description = firing[0]["annotations"]["description"]
    assert f"of the calls of agent {AGENT} to tool" in description and "(cluster=east)" in description
    assert firing[0]["annotations"]["dashboard_url"].endswith(f"?var-agent={AGENT}&var-cluster=east")

    # both clusters have traffic and their own ratio: west's is 0, east's far above the threshold
    ratios = {(r["metric"]["cluster"], r["metric"][q.TOOL]): float(r["value"][1])
              for r in _vector(live, q.tool_error_ratio(WINDOW))}
    assert {c for c, _ in ratios} == set(CLUSTERS), ratios
    assert all(v == 0 for (c, _), v in ratios.items() if c == "west"), ratios
    assert max(v for (c, _), v in ratios.items() if c == "east") > 0.05, ratios
    # without the aggregation label the two agents are one: one series per tool, no cluster, one merged verdict
    merged = _vector(live, q.signal_query("tool_error_rate", WINDOW))
    assert merged and all("cluster" not in r["metric"] for r in merged), merged
    assert len(merged) == len({t for _, t in ratios}), merged
    # a few evaluations later, still nothing for west: not pending, not firing
    time.sleep(3)
    assert {a["labels"]["cluster"] for a in alerts()} == {"east"}


def test_the_dashboard_variable_separates_the_clusters(clusters):
    live, out = clusters.live, clusters.out
    boards = {name: board for name, board, _, _ in queries(out)}
    for name, board in boards.items():
        names = [v["name"] for v in board["templating"]["list"]]
        assert names.index("cluster") == 1 and names[2] == "job", (name, names)  # chained: cluster -> job -> ...
    variable = next(v for v in boards["tools.json"]["templating"]["list"] if v["name"] == "cluster")
    selector = variable["query"].removeprefix("label_values(").rsplit(",", 1)[0]
    now = time.time()
    values = http_json(f"{live.url}/api/v1/label/cluster/values?" + urllib.parse.urlencode(
        {"match[]": selector, "start": f"{now - 3600:.0f}", "end": f"{now:.0f}"}))["data"]
    assert sorted(values) == sorted(CLUSTERS)

    def run(cluster: str) -> dict[tuple[str, str, str], list[dict]]:
        """Every panel query with `$cluster` = cluster (the other variables at All): its instant vector."""
        answers = {}
        for name, board, panel, target in queries(out):
            chosen = {**all_values(board), "cluster": cluster}
            answers[(name, panel["title"], target["refId"])] = _vector(
                live, substitute(board, panel, target["expr"], time.time(), chosen))
        return answers

    by_cluster = {cluster: run(cluster) for cluster in CLUSTERS}
    for cluster, answers in by_cluster.items():
        labelled = 0
        for key, result in answers.items():
            clusters_seen = {r["metric"]["cluster"] for r in result if "cluster" in r["metric"]}
            assert clusters_seen <= {cluster}, (cluster, key, clusters_seen)
            labelled += bool(clusters_seen)
        assert labelled >= 20, f"only {labelled} panel queries returned {cluster}'s series"
    stat = ("tools.json", "Tool-call error rate", "A")
    assert max(float(r["value"][1]) for r in by_cluster["east"][stat]) > 0.05
    assert {float(r["value"][1]) for r in by_cluster["west"][stat]} == {0.0}
    # a fleet-wide panel (no cluster in its result) is narrowed by the variable too
    failed = ("llm-calls.json", "Failed LLM calls", "A")
    assert float(by_cluster["east"][failed][0]["value"][1]) > 0
    assert float(by_cluster["west"][failed][0]["value"][1]) == 0
    # with All, the grouped panels keep the two agents apart
    board = boards["tools.json"]
    panel = next(p for p in board["panels"] if p["title"] == "Tool-call error rate")
    result = _vector(live, substitute(board, panel, panel["targets"][0]["expr"], time.time(), all_values(board)))
    assert {r["metric"]["cluster"] for r in result if r["metric"].get(q.AGENT) == AGENT} == set(CLUSTERS)


def test_check_gives_one_verdict_per_agent_and_cluster(clusters):
    result = cli("check", "--prometheus", clusters.live.url, "--thresholds", str(clusters.thresholds_file), "--json")
    assert result.returncode == 1, result.stdout + result.stderr  # a critical threshold is breached (east)
    report = json.loads(result.stdout)
    assert report["agents"] == [AGENT]
    verdicts = {(v["agent"], v["labels"]["cluster"], v["signal"]): v for v in report["verdicts"]}
    east, west = verdicts[(AGENT, "east", "tool_error_rate")], verdicts[(AGENT, "west", "tool_error_rate")]
    assert east["status"] == "breached" and east["severity"] == "critical" and east["measured"] > 0.05, east
    assert west["status"] == "ok" and west["measured"] == 0, west
    assert east["window"] == WINDOW
    assert {"agent": AGENT, "labels": {"cluster": "east"}, "signal": "tool_error_rate", "alert": ALERT,
            "severity": "critical", "tool": east["tool"]} in report["breached"]
    assert all(b["labels"] == {"cluster": "east"} for b in report["breached"]), report["breached"]
    assert all(v["status"] in ("ok", "no_data") for (_, c, _), v in verdicts.items() if c == "west")
    table = cli("check", "--prometheus", clusters.live.url, "--thresholds", str(clusters.thresholds_file))
    assert table.returncode == 1
    header = next(line for line in table.stdout.splitlines() if "Agent" in line and "Signal" in line)
    assert header.index("cluster") < header.index("Agent"), header
    assert f"{AGENT} cluster=east tool error rate" in table.stdout and "west" in table.stdout
