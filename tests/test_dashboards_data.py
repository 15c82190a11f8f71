"""No panel says "No data" on day one: every query of the committed dashboards, with its variables substituted
the way Grafana would, is valid PromQL and returns data from a real Prometheus (Debian package) that scraped a
live workload; and on a healthy fleet every error panel shows 0, not "No data".

The workload, in two scrape jobs of one Prometheus:

* `agentwatch-demo`, a fleet with failures: the four demo agents (`python -m agentwatch.tooling.demo.agents`,
  flaky with --failure-rate 0.7, so failed runs, tool errors and LLM errors exist) and a small agent calling a
  model without a price (tests/agents/unpriced_agent.py);
* `agentwatch-healthy`, a fleet without any error: the support agent and the flaky one with --failure-rate 0,
  every model priced.

Each agent is its own process under `opentelemetry-instrument` with the Prometheus exporter, against the stub
LLM server. Prometheus scrapes them every second and evaluates the committed rules (so the "firing alerts"
panel has Watchdog). One Prometheus and one workload serve every test of this module. Grafana's variable
substitution is support.grafana's; `$job`, `$agent`, `$model` = their all-value `.*` (and, in a second pass,
one real value each; in a third, the healthy job).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from agentwatch import semconv as sc
from agentwatch.tooling.generate import dashboards as gen

from support.alerting import REPO, Daemon, binary, free_port, http_json, wait_until
from support.grafana import Live, all_values, has_data, substitute
from support import grafana

TEST_LAYER = "e2e"  # every test here is e2e unless marked otherwise (conftest.py)

HERE = Path(__file__).parent
BIN = Path(sys.executable).parent
AGENTS = ("support", "research", "flaky", "costly")
JOB = "agentwatch-demo"
HEALTHY_JOB = "agentwatch-healthy"
HEALTHY_AGENTS = ("support", "flaky")  # flaky with --failure-rate 0: not one error
# Every series the dashboards read (histograms through their _count), and Prometheus' ALERTS.
REQUIRED = sorted({h + sc.PROM_COUNT_SUFFIX for h in sc.PROM_HISTOGRAMS} | set(sc.PROM_COUNTERS) | {sc.PROM_ALERTS})
# One real value per variable for the second pass (the demo's flaky agent has every kind of failure).
CONCRETE = {"job": JOB, "agent": "flaky", "model": "gpt-4o-mini"}
# The panel queries whose answer on a healthy fleet is "no error": each must show 0 there, not "No data".
ZERO_ON_A_HEALTHY_FLEET = {
    ("agent-overview.json", "Runs per second by agent", "B"),
    ("agent-overview.json", "Tool-call error rate", "A"),
    ("agent-overview.json", "Tool-call error rate by agent and tool", "A"),
    ("llm-calls.json", "Failed LLM calls", "A"),
    ("llm-calls.json", "Unpriced calls in range", "A"),
    ("llm-calls.json", "Errors per second by provider, model and error type", "A"),
    ("llm-calls.json", "Error ratio by provider", "A"),
    ("llm-calls.json", "Unpriced calls by model in range", "A"),
    ("tools.json", "Tool-call error rate", "A"),
    ("tools.json", "Tool-call error rate by tool", "A"),
    ("tools.json", "Failed tool calls per second by error type", "A"),
    ("tools.json", "Tools failing most in range", "A"),
}


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTWATCH_", "ANTHROPIC_"))}
    env.update(OTEL_METRICS_EXPORTER="prometheus", OTEL_EXPORTER_PROMETHEUS_HOST="127.0.0.1",
               OTEL_TRACES_EXPORTER="none", OTEL_LOGS_EXPORTER="none", ANTHROPIC_OPEN_TELEMETRY="false", **extra)
    return env


def _demo_agent(instrument: str, name: str, failure_rate: float, stub_url: str, log: Path,
                *pacing: str) -> tuple[Daemon, int]:
    port = free_port()
    argv = [instrument, sys.executable, "-m", "agentwatch.tooling.demo.agents", "--agent", name, "--runs", "100000",
            "--seed", "7", "--failure-rate", str(failure_rate), "--stub-url", stub_url, *pacing]
    env = _env(OTEL_SERVICE_NAME=f"demo-{name}", OTEL_EXPORTER_PROMETHEUS_PORT=str(port))
    return Daemon(log.stem, argv, log, f"http://127.0.0.1:{port}/metrics", env=env), port


@pytest.fixture(scope="module")
def live(stub, tmp_path_factory):
    prometheus_bin = binary("prometheus")  # fails in CI, skips elsewhere, before anything starts
    tmp = tmp_path_factory.mktemp("dashboards-data")
    instrument = str(BIN / "opentelemetry-instrument")
    workload = [_demo_agent(instrument, name, 0.7, stub.url, tmp / f"{name}.log") for name in AGENTS]
    # paced (4 runs a second each): enough for every panel, and it keeps the machine free for the scrapes
    healthy = [_demo_agent(instrument, name, 0.0, stub.url, tmp / f"healthy-{name}.log", "--interval", "0.25")
               for name in HEALTHY_AGENTS]
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
        "scrape_configs": [{"job_name": JOB, "static_configs": [{"targets": [f"127.0.0.1:{p}" for _, p in workload]}]},
                           {"job_name": HEALTHY_JOB,
                            "static_configs": [{"targets": [f"127.0.0.1:{p}" for _, p in healthy]}]}],
    }))
    (tmp / "data").mkdir()
    prometheus = Daemon("prometheus", [
        prometheus_bin, f"--config.file={config}", f"--storage.tsdb.path={tmp / 'data'}",
        f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=warn",
    ], tmp / "prometheus.log", f"http://127.0.0.1:{prom_port}/-/ready")
    started = time.monotonic()
    daemons = [d for d, _ in workload + healthy] + [prometheus]
    try:
        with ThreadPoolExecutor(len(daemons)) as pool:
            list(pool.map(lambda d: d.start(timeout=60), daemons))
        live = Live(f"http://127.0.0.1:{prom_port}", started)

        def values(expr: str, label: str) -> set[str]:
            result = http_json(f"{live.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
            return {r["metric"].get(label, "") for r in result["data"]["result"]}

        missing: list[str] = []

        def present():
            names = values('group by (__name__) ({__name__=~"(gen_ai|agentwatch)_.+|ALERTS"})', "__name__")
            runs = f"{sc.PROM_INVOKE_AGENT_DURATION}{sc.PROM_COUNT_SUFFIX}"
            agents = values(f'group by ({gen.AGENT}) ({runs}{{job="{JOB}"}})', gen.AGENT)
            healthy_agents = values(f'group by ({gen.AGENT}) ({runs}{{job="{HEALTHY_JOB}"}})', gen.AGENT)
            missing[:] = (sorted(set(REQUIRED) - names) + [f"{JOB}/{a}" for a in sorted(set(AGENTS) - agents)]
                          + [f"{HEALTHY_JOB}/{a}" for a in sorted(set(HEALTHY_AGENTS) - healthy_agents)])
            return not missing

        try:
            wait_until(present, 90, "every series the dashboards read, from every agent", interval=0.5)
        except AssertionError as exc:
            logs = "\n".join(f"--- {d.name}:\n{d.log()[-1500:]}" for d in daemons)
            targets = http_json(f"{live.url}/api/v1/targets")["data"]["activeTargets"]
            health = "; ".join(f"{t['labels']['job']} {t['scrapeUrl']}: {t['health']} {t['lastError']}"
                               for t in targets)
            raise AssertionError(f"{exc}; missing: {', '.join(missing)}\ntargets: {health}\n{logs}") from None
        yield live
    finally:
        for daemon in daemons:
            daemon.stop()


def boards():
    return grafana.boards(REPO)


def queries():
    return grafana.queries(REPO)


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
            elif not has_data(answer):
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


def test_on_a_healthy_fleet_every_panel_has_data_and_every_error_panel_shows_0(live):
    """With the healthy job selected (no failed run, tool call or LLM call, every model priced) every query
    still has data, and every panel whose answer is "no error" answers 0 for each of its series."""
    named_for_errors = {(name, panel["title"], target["refId"]) for name, _, panel, target in queries()
                        if re.search(r"[Ee]rror|[Ff]ail|[Uu]npriced", panel["title"])}
    assert named_for_errors <= ZERO_ON_A_HEALTHY_FLEET, "an error panel is missing from ZERO_ON_A_HEALTHY_FLEET"
    assert ZERO_ON_A_HEALTHY_FLEET <= {(n, p["title"], t["refId"]) for n, _, p, t in queries()}, "a listed query is gone"

    def healthy(board):
        return {**all_values(board), "job": HEALTHY_JOB}

    problems = poll(live, healthy)
    assert not problems, (f"{len(problems)} panel queries without data on the healthy fleet after "
                          f"{time.monotonic() - live.started:.0f}s of workload:\n{_report(problems)}")
    now = time.time()
    shown: dict[tuple[str, str, str], list[tuple[dict, str]]] = {}
    for name, board, panel, target in queries():
        key = (name, panel["title"], target["refId"])
        if key not in ZERO_ON_A_HEALTHY_FLEET:
            continue
        expr = substitute(board, panel, target["expr"], now, healthy(board))
        answer = live.query(expr, now)
        assert answer["status"] == "success" and answer["data"]["resultType"] == "vector", (key, answer)
        shown[key] = [(s["metric"], s["value"][1]) for s in answer["data"]["result"]]
    for key, samples in shown.items():
        assert samples, (key, "no data")
        assert all(float(value) == 0 for _, value in samples), (key, samples)
    # per series, not one fleet-wide zero: each provider/model, agent and tool with traffic has its own 0
    errors = {(m[gen.PROVIDER], m[gen.MODEL]) for m, _ in
              shown[("llm-calls.json", "Errors per second by provider, model and error type", "A")]}
    assert ("openai", "gpt-4o-mini") in errors, errors
    failed_runs = {m[gen.AGENT] for m, _ in shown[("agent-overview.json", "Runs per second by agent", "B")]}
    assert set(HEALTHY_AGENTS) <= failed_runs, failed_runs
    failed_tools = {m[gen.TOOL] for m, _ in shown[("tools.json", "Failed tool calls per second by error type", "A")]}
    assert {"lookup_order", "check_inventory"} <= failed_tools, failed_tools
