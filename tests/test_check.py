"""`agentwatch demo --with-prometheus` and `agentwatch check` against the same real Prometheus.

One module fixture runs the demo (10 runs per agent, paced at 1 run/s, default seed and failure rate: the
shape `make demo` has, only shorter) with a real Prometheus + Alertmanager scraping the agents every second
(`--keep-prometheus` leaves them up), then runs `agentwatch check` against that Prometheus. Every test
here reads those results, or exercises an error path.

Why the demo's table and check's table agree on verdicts but not to the last digit:

* the demo computes each signal exactly, from every run and tool record;
* check asks Prometheus, with the alerts' PromQL: `rate()` over the signal's window counts the increase of
  each series from its first scrape on, so what a series counted before Prometheus first saw it (the first
  run or the first failed tool call of an agent, typically) is missing; and p99 comes from
  `histogram_quantile`, which interpolates linearly inside the bucket the 99th percentile falls into.

Pacing the runs at 1/s (the scrape interval) keeps that loss to about one event per series. Hence the
tolerances: ratios within 0.1, means within 25 %, p99 within one bucket of the exact value.
"""

from __future__ import annotations

import json
import math
import socket
from datetime import datetime
from types import SimpleNamespace

import pytest

from agentwatch import semconv as sc
from agentwatch import thresholds
from agentwatch.tooling.demo.runner import AGENTS, DemoError, plan_runs
from agentwatch.tooling.demo.with_prometheus import parse_time
from agentwatch.thresholds import SIGNALS
from agentwatch.tooling.verdicts import from_records

from support.alerting import binary
from support.clihelp import cli, env, free_port_base, one_error_line

TEST_LAYER = "e2e"  # every test here is e2e unless marked otherwise (conftest.py)

RUNS, RATE, SEED = 10, 1.0, 7
OTHERS = ("support", "research", "costly")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    binary("prometheus"), binary("prometheus-alertmanager")  # fail in CI, skip elsewhere
    out = tmp_path_factory.mktemp("fleet")
    port = free_port_base()
    try:
        demo = cli("demo", "--runs", str(RUNS), "--rate", str(RATE), "--seed", str(SEED), "--prometheus-port",
                   str(port), "--out-dir", str(out), "--keep-prometheus", "--json", cwd=out, timeout=240)
        assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
        result = json.loads(demo.stdout)
        url = result["prometheus"]["prometheus_url"]
        check = cli("check", "--prometheus", url, "--json", cwd=out)
        table = cli("check", "--prometheus", url, cwd=out)
        yield SimpleNamespace(out=out, demo=demo, result=result, url=url, check=check,
                              report=json.loads(check.stdout), table=table,
                              alertmanager=result["prometheus"]["alertmanager_url"])
    finally:
        cli("stack", "down", "--state-dir", str(out / "prometheus"))


def verdicts_of(report: dict) -> dict[tuple[str, str], dict]:
    return {(v["agent"], v["signal"]): v for v in report["verdicts"]}


# --- the demo's table -------------------------------------------------------------------------------------

def test_demo_json_has_the_summary_the_threshold_table_and_the_alerts(fleet):
    result = fleet.result
    assert result["runs"] == RUNS and result["rate"] == RATE and result["seed"] == SEED
    assert set(result["agents"]) == set(AGENTS)
    assert all(a["runs"] == RUNS for a in result["agents"].values())
    assert {(m["agent"], m["model"]) for m in result["models"]} >= {("costly", "gpt-4.1"), ("flaky", "gpt-4o-mini")}
    table = result["thresholds"]
    assert table["agents"] == list(AGENTS)
    assert len(table["verdicts"]) == len(AGENTS) * len(SIGNALS)
    for v in table["verdicts"]:
        assert set(v) >= {"agent", "signal", "alert", "measured", "comparison", "threshold", "unit", "severity",
                          "status", "breached"}
        assert v["threshold"] == thresholds.load()[v["signal"]].value
    # the summary file holds the same JSON as stdout
    assert json.loads((fleet.out / "summary.json").read_text()) == result
    # stdout is JSON only; the human tables went to stderr
    assert "Threshold table" in fleet.demo.stderr and "WOULD FIRE" in fleet.demo.stderr


def test_the_flaky_agent_would_page_and_every_other_agent_is_ok(fleet):
    table = verdicts_of(fleet.result["thresholds"])
    flaky = table[("flaky", "tool_error_rate")]
    assert flaky["status"] == "breached" and flaky["severity"] == "critical"
    assert flaky["measured"] > 0.05 and flaky["tool"] in ("check_inventory", "reserve_stock")
    for name in OTHERS:
        for signal in SIGNALS:
            assert table[(name, signal)]["status"] in ("ok", "no_data"), (name, signal, table[(name, signal)])
    assert table[("costly", "tool_error_rate")]["status"] == "no_data", "the costly agent uses no tools"
    assert fleet.result["thresholds"]["critical_breached"] is True


def test_the_costly_agent_is_the_most_expensive_yet_within_its_thresholds(fleet):
    table = verdicts_of(fleet.result["thresholds"])
    cost = {name: table[(name, "cost_per_run")]["measured"] for name in AGENTS}
    tokens = {name: table[(name, "tokens_per_run")]["measured"] for name in AGENTS}
    assert max(cost, key=cost.get) == "costly" and max(tokens, key=tokens.get) == "costly"
    assert cost["costly"] > 10 * max(v for k, v in cost.items() if k != "costly")
    assert tokens["costly"] < 50_000 and cost["costly"] < 1.0


def test_the_table_is_computed_from_the_json_records(fleet):
    records = {name: [json.loads(line) for line in (fleet.out / f"{name}.jsonl").read_text().splitlines()]
               for name in AGENTS}
    assert from_records(records, thresholds.load()).to_dict()["verdicts"] == fleet.result["thresholds"]["verdicts"]
    runs = [r for r in records["flaky"] if r["event.action"] == sc.LOG_EVENT_AGENT_RUN]
    tools = [r for r in records["flaky"] if r["event.action"] == sc.LOG_EVENT_TOOL_CALL]
    failed = [r for r in tools if r["event.outcome"] == "failure"]
    flaky = verdicts_of(fleet.result["thresholds"])[("flaky", "tool_error_rate")]
    assert flaky["samples"] == len(tools) and fleet.result["agents"]["flaky"]["tool_errors"] == len(failed)
    # --rate 1: run i of an agent starts no earlier than i seconds after the first
    starts = sorted(datetime.fromisoformat(r["@timestamp"].replace("Z", "+00:00")).timestamp()
                    - r["event.duration"] / 1e9 for r in runs)
    assert len(starts) == RUNS
    assert starts[-1] - starts[0] >= (RUNS - 1) / RATE - 0.1


def test_the_demo_alertmanager_pages_nobody(fleet):
    config = (fleet.out / "prometheus" / "alerts" / "alertmanager" / "alertmanager.yml").read_text()
    assert "/etc/alertmanager/secrets" not in config and "deadmans-switch.invalid" not in config
    assert str(fleet.out / "prometheus" / "no-secrets" / "pagerduty-routing-key") in config
    assert "http://127.0.0.1:9/pagerduty" in config
    rules = (fleet.out / "prometheus" / "alerts" / "rules" / "agentwatch-alerts.yaml").read_text()
    assert "tool_errors:ratio_rate1m > 0.05" in rules and "for: 5s" in rules


def test_the_alerts_the_table_predicts_fired_and_were_routed(fleet):
    prom = fleet.result["prometheus"]
    assert prom["predicted"] == [["AgentToolErrorRateHigh", "flaky"]] and prom["missing"] == []
    firing = [a for a in prom["alerts"] if a["state"] == "firing"]
    tool_alerts = [a for a in firing if a["alert"] == "AgentToolErrorRateHigh"]
    assert tool_alerts and all(a["agent"] == "flaky" and a["receivers"] == ["oncall-pager"] for a in tool_alerts)
    assert {a["agent"] for a in firing if a["agent"]} == {"flaky"}, "no other agent alerts"
    assert any(a["alert"] == "Watchdog" for a in firing)
    assert "Every WOULD FIRE row of the threshold table fired." in fleet.demo.stderr
    assert "AgentToolErrorRateHigh" in fleet.demo.stderr and "oncall-pager" in fleet.demo.stderr


# --- check against the Prometheus that scraped the demo -----------------------------------------------------

def _bucket(value: float) -> tuple[float, float]:
    """The (lower, upper] bounds of the run-duration bucket holding `value`, and the bucket below."""
    bounds = thresholds.with_boundaries(sc.INVOKE_AGENT_DURATION_BUCKETS, thresholds.load()["p99_latency"].value)
    upper = next(b for b in bounds if value <= b)
    below = [b for b in bounds if b < upper]
    return (below[-2] if len(below) > 1 else 0.0), upper


def test_check_agrees_with_the_demo_table(fleet):
    assert fleet.check.returncode == 1, fleet.check.stderr  # a critical threshold (flaky's tool errors) breached
    assert fleet.report["exit_code"] == 1 and fleet.report["critical_breached"] is True
    assert fleet.report["source"] == fleet.url
    demo, check = verdicts_of(fleet.result["thresholds"]), verdicts_of(fleet.report)
    assert sorted(fleet.report["agents"]) == sorted(AGENTS)
    assert set(check) == set(demo)
    for key, d in demo.items():
        c = check[key]
        assert c["status"] == d["status"], (key, d, c)
        if d["measured"] is None:
            assert c["measured"] is None, key
            continue
        unit = d["unit"]
        if unit == "ratio":
            assert abs(c["measured"] - d["measured"]) <= 0.1, (key, d["measured"], c["measured"])
        elif d["signal"] == "p99_latency":
            low, high = _bucket(d["measured"])
            assert low <= c["measured"] <= high, (key, d["measured"], c["measured"], (low, high))
        else:
            assert c["measured"] == pytest.approx(d["measured"], rel=0.25), key
    assert check[("flaky", "tool_error_rate")]["tool"] == demo[("flaky", "tool_error_rate")]["tool"]


def test_check_prints_the_same_table(fleet):
    text = fleet.table.stdout
    assert fleet.table.returncode == 1, fleet.table.stderr
    for name in AGENTS:
        assert f"│ {name} " in text
    for label in ("success rate", "steps per run", "p99 latency", "tokens per run", "cost per run", "tool error rate"):
        assert text.count(label) >= len(AGENTS), label
    assert text.count("BREACHED") == 1 and "no data" in text
    assert "CRITICAL 1 threshold(s) breached: flaky tool error rate" in text
    assert "windows: 15m for success rate" in text


def test_check_one_agent_and_an_agent_without_traffic(fleet):
    support = cli("check", "--prometheus", fleet.url, "--agent", "support", "--json", cwd=fleet.out)
    assert support.returncode == 0, support.stderr
    report = json.loads(support.stdout)
    assert report["agents"] == ["support"] and {v["status"] for v in report["verdicts"]} == {"ok"}
    idle = cli("check", "--prometheus", fleet.url, "--agent", "nobody", "--agent", "flaky", "--json", cwd=fleet.out)
    assert idle.returncode == 1
    report = json.loads(idle.stdout)
    assert report["agents"] == ["nobody", "flaky"]
    assert {v["status"] for v in report["verdicts"] if v["agent"] == "nobody"} == {"no_data"}
    assert all(v["measured"] is None and not v["breached"] for v in report["verdicts"] if v["agent"] == "nobody")


def test_check_uses_the_thresholds_file_values_and_severities(fleet, tmp_path):
    override = tmp_path / "thresholds.yaml"
    # tool errors only a warning; a token budget the costly agent breaks (a warning too)
    override.write_text("signals:\n  tool_error_rate:\n    severity: warning\n"
                        "  tokens_per_run:\n    value: 20000\n")
    proc = cli("check", "--prometheus", fleet.url, "--thresholds", str(override), "--json", cwd=fleet.out)
    assert proc.returncode == 0, proc.stderr  # breached, but nothing critical
    report = json.loads(proc.stdout)
    assert report["thresholds"].endswith("thresholds.yaml") and str(override) in report["thresholds"]
    assert {(b["agent"], b["signal"], b["severity"]) for b in report["breached"]} == {
        ("flaky", "tool_error_rate", "warning"), ("costly", "tokens_per_run", "warning")}


# --- check's error paths: one line, exit 2 ------------------------------------------------------------------

def test_check_malformed_thresholds_file(fleet, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("signals: [unclosed\n")
    proc = cli("check", "--prometheus", fleet.url, "--thresholds", str(bad), cwd=tmp_path)
    assert proc.returncode == 2
    assert f"{bad}: not valid YAML" in one_error_line(proc)
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("signals:\n  success_rate:\n    value: lots\n")
    proc = cli("check", "--prometheus", fleet.url, "--thresholds", str(wrong), cwd=tmp_path)
    assert proc.returncode == 2
    assert "value must be a non-negative number" in one_error_line(proc)


def test_check_an_address_that_is_not_prometheus(fleet, stub, tmp_path):
    for url in (fleet.alertmanager, stub.url):
        proc = cli("check", "--prometheus", url, cwd=tmp_path)
        assert proc.returncode == 2, proc.stdout
        line = one_error_line(proc)
        assert f"{url} does not answer like Prometheus" in line and "check the URL" in line


def test_check_unresolvable_host(tmp_path):
    proc = cli("check", "--prometheus", "http://agentwatch-no-such-host.invalid:9090", cwd=tmp_path)
    assert proc.returncode == 2
    assert "cannot resolve the host of http://agentwatch-no-such-host.invalid:9090" in one_error_line(proc)


def test_check_nothing_listening(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = cli("check", "--prometheus", f"http://127.0.0.1:{port}", cwd=tmp_path)
    assert proc.returncode == 2
    assert f"Prometheus at http://127.0.0.1:{port} is not reachable: connection refused" in one_error_line(proc)


def test_check_a_server_that_never_answers(tmp_path):
    with socket.socket() as server:  # accepts connections (kernel backlog) and never answers
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        url = f"http://127.0.0.1:{server.getsockname()[1]}"
        proc = cli("check", "--prometheus", url, "--timeout", "0.5", cwd=tmp_path)
    assert proc.returncode == 2
    assert f"no answer from {url} within 0.5s" in one_error_line(proc)


@pytest.mark.parametrize("args, message", [
    (["--prometheus", "localhost:9090"], "is not an http(s) URL"),
    (["--prometheus", "http://127.0.0.1:9090/api/v1/query?query=up"], "without a query"),
    ([], "Missing option '--prometheus'"),
    (["--prometheus", "http://127.0.0.1:9090", "--timeout", "0"], "--timeout"),
])
def test_check_usage_errors_exit_2(tmp_path, args, message):
    proc = cli("check", *args, cwd=tmp_path)  # tmp_path: no local stack to fall back on
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr


# --- demo: the run plan, usage errors and help ---------------------------------------------------------------

@pytest.mark.unit
def test_verdicts_from_records_edge_cases():
    table = thresholds.load()

    def run(outcome="success", cost=0.5, tokens=(100, 50), unknown=False, unavailable=0, seconds=2.0):
        record = {"event.action": sc.LOG_EVENT_AGENT_RUN, "event.outcome": outcome, "event.duration": seconds * 1e9,
                  sc.GEN_AI_INVOKE_AGENT_INFERENCE_CALLS_ATTR: 4, sc.GEN_AI_USAGE_INPUT_TOKENS: tokens[0],
                  sc.GEN_AI_USAGE_OUTPUT_TOKENS: tokens[1], sc.AGENTWATCH_COST_USD: cost}
        if outcome == "failure":
            record[sc.ERROR_TYPE] = "RuntimeError"
        if unknown:
            record[sc.AGENTWATCH_COST_UNKNOWN] = True
        if unavailable:
            record[sc.AGENTWATCH_RUN_USAGE_UNAVAILABLE_CALLS] = unavailable
        return record

    def tool(name, ok=True):
        return {"event.action": sc.LOG_EVENT_TOOL_CALL, sc.GEN_AI_TOOL_NAME: name,
                "event.outcome": "success" if ok else "failure"}

    report = from_records({
        "a": [run(), run(outcome="failure", cost=3.0, unknown=True, unavailable=1, tokens=(10**6, 0), seconds=70),
              tool("x"), tool("x", ok=False), tool("y", ok=False), tool("y", ok=False), tool("y")],
        "idle": [{"event.action": sc.LOG_EVENT_LLM_CALL}],
    }, table)
    a = {v.signal: v for v in report.verdicts if v.agent == "a"}
    assert a["success_rate"].measured == 0.5 and a["success_rate"].breached
    assert a["p99_latency"].measured == 70 and a["p99_latency"].breached  # nearest rank of two runs: the slower
    # the run with unknown cost / unavailable usage is left out of the means, as the metrics leave it out
    assert a["cost_per_run"].measured == 0.5 and a["tokens_per_run"].measured == 150
    assert a["tool_error_rate"].tool == "y" and a["tool_error_rate"].measured == pytest.approx(2 / 3)
    assert a["tool_error_rate"].by_tool == {"x": 0.5, "y": pytest.approx(2 / 3)}
    assert {v.status for v in report.verdicts if v.agent == "idle"} == {"no_data"}
    assert not any(v.breached for v in report.verdicts if v.agent == "idle")
    assert [(b.agent, b.signal) for b in report.breached] == [
        ("a", "success_rate"), ("a", "p99_latency"), ("a", "tool_error_rate")]
    assert report.to_dict()["critical_breached"] is True


@pytest.mark.unit
def test_plan_runs():
    assert plan_runs() == plan_runs(runs=20)
    assert plan_runs().interval == 0 and plan_runs().runs == 20
    p = plan_runs(duration=10, rate=0.3)
    assert (p.runs, p.interval) == (3, pytest.approx(1 / 0.3))
    p = plan_runs(duration=60, rate=2)
    assert (p.runs, p.interval) == (120, 0.5)
    p = plan_runs(runs=5, duration=10)
    assert (p.runs, p.interval) == (5, 2.0)
    p = plan_runs(runs=6, rate=3)
    assert (p.runs, p.interval, p.duration) == (6, pytest.approx(1 / 3), 2.0)
    p = plan_runs(duration=30)
    assert (p.runs, p.interval, p.duration) == (None, 0.0, 30)
    with pytest.raises(DemoError, match="at most two"):
        plan_runs(runs=1, duration=1, rate=1)
    with pytest.raises(DemoError, match="--rate must be a positive number"):
        plan_runs(rate=math.inf)


def test_demo_usage_errors_exit_2(tmp_path):
    proc = cli("demo", "--runs", "3", "--duration", "5", "--rate", "1", "--out-dir", str(tmp_path), cwd=tmp_path)
    assert proc.returncode == 2 and "at most two of --runs, --duration and --rate" in proc.stderr
    proc = cli("demo", "--rate", "0", "--out-dir", str(tmp_path), cwd=tmp_path)
    assert proc.returncode == 2 and "--rate" in proc.stderr
    assert not (tmp_path / "support.jsonl").exists()


def test_demo_malformed_thresholds_file_is_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("signals:\n  nonsense: {}\n")
    proc = cli("demo", "--runs", "1", "--out-dir", str(tmp_path / "out"), "--prometheus-port",
               str(free_port_base()), cwd=tmp_path, environ=env(AGENTWATCH_THRESHOLDS_FILE=str(bad)))
    assert proc.returncode == 1
    assert "unknown signal 'nonsense'" in one_error_line(proc)


def test_demo_malformed_prices_file_is_one_line(tmp_path):
    bad = tmp_path / "prices.yaml"
    bad.write_text("models: [\n")
    proc = cli("demo", "--runs", "1", "--out-dir", str(tmp_path / "out"), "--prometheus-port",
               str(free_port_base()), cwd=tmp_path, environ=env(AGENTWATCH_PRICES_FILE=str(bad)))
    assert proc.returncode == 1
    assert f"AGENTWATCH_PRICES_FILE: {bad}: not valid YAML" in one_error_line(proc)
    assert not (tmp_path / "out" / "support.jsonl").exists(), "nothing was started"


def test_help_of_every_new_command_has_an_example():
    for command in (["demo"], ["check"], ["stack"], ["stack", "up"], ["stack", "down"], ["stack", "status"]):
        proc = cli(*command, "--help")
        assert proc.returncode == 0, command
        assert "Example" in proc.stdout and f"agentwatch {' '.join(command)}" in proc.stdout, command
    for option in ("--duration", "--rate", "--with-prometheus", "--json"):
        assert option in cli("demo", "--help").stdout
    assert "Exit status" in cli("check", "--help").stdout


@pytest.mark.unit
def test_parse_prometheus_times():
    assert parse_time("2026-01-02T03:04:05.123456789Z") == pytest.approx(
        datetime.fromisoformat("2026-01-02T03:04:05.123456+00:00").timestamp())
    assert parse_time("2026-01-02T03:04:05Z") is not None
    assert parse_time("0001-01-01T00:00:00Z") is None and parse_time("") is None

