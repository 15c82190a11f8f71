"""`agentwatch demo` end to end: the CLI in a subprocess, four real agent processes under opentelemetry-instrument.

Checked against what the agents' telemetry really contains (the JSON log files, the console-exported span
files, a live Prometheus scrape, an OTLP receiver), not against the demo's own claims only.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from agentwatch import semconv as sc
from agentwatch.tooling.demo.runner import AGENTS
from support.clihelp import env as clean_env
from support.clihelp import free_port_base
from support.otlp_receiver import OtlpReceiver

TEST_LAYER = "e2e"  # every test here is e2e unless marked otherwise (conftest.py)

CLI = Path(sys.executable).parent / "agentwatch"
RUNS = 2
SEED = 7


def _run_demo(out_dir: Path, port: int, env: dict[str, str] | None = None, *args: str,
              timeout: float = 120) -> subprocess.CompletedProcess:
    cmd = [str(CLI), "demo", "--runs", str(RUNS), "--seed", str(SEED), "--prometheus-port", str(port),
           "--out-dir", str(out_dir), *args]
    return subprocess.run(cmd, env=env or clean_env(), capture_output=True, text=True, timeout=timeout)


def _records(path: Path, event: str | None = sc.LOG_EVENT_LLM_CALL) -> list[dict]:
    """The JSON log records of one agent: its LLM calls by default, every record with `event=None`."""
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r for r in records if event is None or r["event.action"] == event]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    port = free_port_base()
    proc = _run_demo(out, port)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    return proc, out, port, summary


def test_exit_code_and_all_four_agents_in_the_summary(demo):
    proc, out, port, summary = demo
    assert set(summary["agents"]) == set(AGENTS) == {"support", "research", "flaky", "costly"}
    for name, agent in summary["agents"].items():
        assert agent["runs"] == RUNS, name
        assert agent["calls"] > 0, name
    # The printed table names every agent and every model, and has a totals row.
    for name in AGENTS:
        assert re.search(rf"│ {name}\s+│", proc.stdout), name
    for model in ("gpt-4o-mini", "claude-haiku-4-5", "claude-sonnet-4-6", "gpt-4.1", "claude-opus-4-5"):
        assert model in proc.stdout
    assert re.search(r"│ Total\s+│", proc.stdout)
    for name in AGENTS:
        assert str(out / f"{name}.jsonl") in proc.stdout
        assert str(out / f"{name}.spans.json") in proc.stdout


def test_json_log_records_carry_trace_and_span_ids(demo):
    _, out, _, summary = demo
    for name in AGENTS:
        every = _records(out / f"{name}.jsonl", event=None)
        records = _records(out / f"{name}.jsonl")
        assert len(records) == summary["agents"][name]["calls"] > 0
        runs = [r for r in every if r["event.action"] == sc.LOG_EVENT_AGENT_RUN]
        assert len(runs) == summary["runs"], "one record per agent run, with its totals"
        assert sum(r[sc.GEN_AI_INVOKE_AGENT_INFERENCE_CALLS_ATTR] for r in runs) == len(records)
        if name != "costly":  # the costly agent uses no tools
            assert any(r["event.action"] == sc.LOG_EVENT_TOOL_CALL for r in every)
        for record in every:
            assert re.fullmatch(r"[0-9a-f]{32}", record["trace.id"]) and record["trace.id"] != "0" * 32
            assert re.fullmatch(r"[0-9a-f]{16}", record["span.id"])
            assert record["service.name"] == f"demo-{name}"
            assert record["event.duration"] > 0
        # The same ids are on the console-exported spans of that process.
        spans_text = (out / f"{name}.spans.json").read_text()
        assert f'"trace_id": "0x{records[0]["trace.id"]}"' in spans_text
        assert f'"span_id": "0x{records[-1]["span.id"]}"' in spans_text


def test_models_per_agent(demo):
    summary = demo[3]
    models = {(m["agent"], m["model"]) for m in summary["models"]}
    assert models == {
        ("support", "gpt-4o-mini"), ("flaky", "gpt-4o-mini"),
        ("research", "claude-haiku-4-5"), ("research", "claude-sonnet-4-6"),
        ("costly", "gpt-4.1"), ("costly", "claude-opus-4-5"),
    }
    assert all(m["unpriced_calls"] == 0 for m in summary["models"]), "every demo model has a price"


def test_only_the_flaky_agent_has_llm_errors(demo):
    _, out, _, summary = demo
    agents = summary["agents"]
    assert agents["flaky"]["errors"] > 0
    for name in ("support", "research", "costly"):
        assert agents[name]["errors"] == 0, name
        assert agents[name]["failed_runs"] == 0, name
    flaky = _records(out / "flaky.jsonl")
    failed = [r for r in flaky if r["event.outcome"] == "failure"]
    assert len(failed) == agents["flaky"]["errors"]
    assert {r["error.type"] for r in failed} <= {"InternalServerError", "RateLimitError"}
    assert all(r["log.level"] == "error" for r in failed)
    assert all(sc.AGENTWATCH_COST_USD not in r for r in failed)


def test_costly_agent_has_the_highest_cost_per_run(demo):
    _, out, _, summary = demo
    # from the log records themselves, not the summary's arithmetic
    per_run = {name: sum(r.get(sc.AGENTWATCH_COST_USD, 0.0) for r in _records(out / f"{name}.jsonl")) / RUNS
               for name in AGENTS}
    assert max(per_run, key=per_run.get) == "costly"
    assert per_run["costly"] > 10 * max(v for k, v in per_run.items() if k != "costly")
    for name in AGENTS:
        assert summary["agents"][name]["cost_per_run"] == pytest.approx(per_run[name], rel=1e-9)
    assert summary["total_cost_usd"] == pytest.approx(sum(per_run.values()) * RUNS, rel=1e-9)


def test_prometheus_scrape_found_the_series(demo):
    proc, _, port, summary = demo
    for name, agent in summary["agents"].items():
        assert agent["prometheus_found"] == {
            sc.PROM_CLIENT_OPERATION_DURATION + "_bucket": True, sc.PROM_LLM_COST: True}, name
        assert agent["prometheus_series"] > 0
    total = sum(a["prometheus_series"] for a in summary["agents"].values())
    assert f"Prometheus metrics served on :{port}–{port + 3}: {total:,} series" in proc.stdout


def test_port_in_use_gives_exit_1_and_one_clear_line(tmp_path):
    port = free_port_base()
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", port + 1))
        blocker.listen()
        proc = _run_demo(tmp_path, port, timeout=30)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert f"port {port + 1} is already in use" in lines[0]
    assert "--prometheus-port" in lines[0]
    assert "Traceback" not in proc.stdout + proc.stderr
    assert not (tmp_path / "support.jsonl").exists(), "nothing was started"


def _fingerprint(summary: dict) -> list[tuple]:
    return sorted((m["agent"], m["model"], m["calls"], m["errors"], m["input_tokens"], m["output_tokens"],
                   round(m["cost_usd"], 12), sorted(m["error_types"].items())) for m in summary["models"])


def test_otlp_endpoint_sends_spans_and_logs_over_otlp_and_the_seed_decides_the_calls(tmp_path, demo):
    with OtlpReceiver() as receiver:
        # an inherited exporter choice is overridden: with an endpoint, traces and logs go over OTLP
        env = clean_env(OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint, OTEL_TRACES_EXPORTER="console")
        proc = _run_demo(tmp_path, free_port_base(), env)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        spans = [s for s in receiver.spans() if s.scope_name == "agentwatch"
                 and s.attributes.get("gen_ai.operation.name") in sc.INFERENCE_OPERATIONS]
        logs = receiver.logs_with_event(sc.LOG_EVENT_LLM_CALL)
    assert {s.resource_attributes["service.name"] for s in spans} == {f"demo-{a}" for a in AGENTS}
    records = [r for a in AGENTS for r in _records(tmp_path / f"{a}.jsonl")]
    assert len(spans) == len(logs) == len(records)
    assert {(r["trace.id"], r["span.id"]) for r in records} == {(s.trace_id, s.span_id) for s in spans}
    assert not list(tmp_path.glob("*.spans.json")), "no console span files in OTLP mode"
    # same seed, same runs: the very same calls, errors, tokens and cost as the console-mode run
    assert _fingerprint(json.loads((tmp_path / "summary.json").read_text())) == _fingerprint(demo[3])


def test_cli_version_and_help_with_examples():
    version = subprocess.run([str(CLI), "--version"], capture_output=True, text=True, timeout=30)
    assert version.returncode == 0 and re.fullmatch(r"agentwatch \d+\.\d+\.\d+\S*\n", version.stdout)
    for command in ("demo", "stub"):
        help_text = subprocess.run([str(CLI), command, "--help"], capture_output=True, text=True, timeout=30)
        assert help_text.returncode == 0
        assert "Example" in help_text.stdout and f"agentwatch {command}" in help_text.stdout
