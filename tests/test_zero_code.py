"""`opentelemetry-instrument python agent.py` on an unmodified agent: spans, metrics and logs over OTLP/HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from support.otlp_receiver import OtlpReceiver

TEST_LAYER = "e2e"  # every test here is e2e unless marked otherwise (conftest.py)

HERE = Path(__file__).parent
AGENT = HERE / "agents" / "plain_agent.py"
BIN = Path(sys.executable).parent
DISTRO_DIR = Path(sys.prefix) / "extras" / "distro"
SECRET_PROMPT = "PROMPT-MARKER-zebra-quartz"


def run_agent(stub, extra_env: dict[str, str], receiver: OtlpReceiver | None = None,
              script: Path = AGENT, drop: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTWATCH_", "ANTHROPIC_"))}
    env.update(STUB_URL=stub.url, OTEL_SERVICE_NAME="plain-agent", OTEL_METRIC_EXPORT_INTERVAL="200",
               OTEL_BSP_SCHEDULE_DELAY="50", OTEL_BLRP_SCHEDULE_DELAY="50", ANTHROPIC_OPEN_TELEMETRY="false")
    if receiver is not None:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.endpoint
    env.update(extra_env)
    for name in drop:
        env.pop(name, None)
    proc = subprocess.run([str(BIN / "opentelemetry-instrument"), sys.executable, str(script)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "agent done" in proc.stdout
    return proc


@pytest.fixture
def receiver():
    with OtlpReceiver() as r:
        yield r


def _inference_spans(receiver):
    return [s for s in receiver.spans() if s.scope_name == "agentwatch"]


def test_unmodified_agent_exports_spans_metrics_and_logs(stub, receiver):
    run_agent(stub, {}, receiver)  # nothing but the endpoint: the agentwatch distro supplies the rest
    spans = _inference_spans(receiver)
    names = sorted(s.name for s in spans)
    assert names.count("chat claude-haiku-4-5") == 2
    assert names.count("chat gpt-4o-mini") >= 4  # tool round trip, stream, failing call
    assert all(s.kind == "CLIENT" for s in spans)
    assert {s.resource_attributes["service.name"] for s in spans} == {"plain-agent"}
    failed = [s for s in spans if s.status_code == "ERROR"]
    assert len(failed) == 1 and failed[0].attributes["error.type"] == "InternalServerError"
    ok = [s for s in spans if s.status_code != "ERROR"]
    assert all(s.attributes["gen_ai.usage.input_tokens"] > 0 for s in ok)
    assert all(s.attributes["agentwatch.usage.cost_usd"] > 0 for s in ok)
    reasons = [s.attributes.get("gen_ai.response.finish_reasons") for s in ok]
    assert ["tool_calls"] in reasons

    for name in ("gen_ai.client.operation.duration", "gen_ai.client.token.usage",
                 "gen_ai.client.operation.time_to_first_chunk", "agentwatch.llm.cost"):
        assert receiver.metric(name) is not None, name
    duration = receiver.metric("gen_ai.client.operation.duration")
    assert duration.unit == "s" and duration.kind == "histogram"
    assert sum(p.count for p in duration.points) == len(spans)
    assert receiver.metric("gen_ai.client.token.usage").unit == "{token}"
    cost = receiver.metric("agentwatch.llm.cost")
    assert cost.unit == "USD"
    assert sum(p.value for p in cost.points) == pytest.approx(
        sum(s.attributes["agentwatch.usage.cost_usd"] for s in ok), rel=1e-9)

    logs = receiver.logs_with_event("gen_ai.client.inference")
    assert len(logs) == len(spans)
    span_ids = {(s.trace_id, s.span_id) for s in spans}
    assert all((r.trace_id, r.span_id) in span_ids for r in logs)

    raw = receiver.raw_bytes()
    assert b"SECRETKEY" not in raw and b"sk-test" not in raw and b"sk-ant" not in raw
    assert SECRET_PROMPT.encode() not in raw
    assert b"authorization" not in raw.lower()


def test_content_capture_env_turns_prompts_on(stub, receiver):
    run_agent(stub, {"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true"}, receiver)
    assert SECRET_PROMPT.encode() in receiver.raw_bytes()
    assert b"SECRETKEY" not in receiver.raw_bytes()


def test_console_exporter_and_json_lines(stub, tmp_path):
    json_log = tmp_path / "agent.jsonl"
    proc = run_agent(stub, {"OTEL_TRACES_EXPORTER": "console", "OTEL_METRICS_EXPORTER": "none",
                            "OTEL_LOGS_EXPORTER": "none", "AGENTWATCH_JSON_LOGS": str(json_log)})
    assert '"name": "chat gpt-4o-mini"' in proc.stdout
    import json

    records = [json.loads(line) for line in json_log.read_text().splitlines()]
    assert len(records) >= 6
    first = records[0]
    for field in ("@timestamp", "log.level", "message", "trace.id", "span.id", "service.name", "event.outcome",
                  "gen_ai.provider.name", "gen_ai.request.model", "event.duration"):
        assert field in first, field
    assert first["service.name"] == "plain-agent"
    assert len(first["trace.id"]) == 32
    assert {r["log.level"] for r in records} == {"info", "error"}
    assert SECRET_PROMPT not in json_log.read_text()


@pytest.mark.parametrize("choice", [
    {},
    {"OTEL_PYTHON_DISTRO": "agentwatch", "OTEL_PYTHON_CONFIGURATOR": "agentwatch"},
    {"OTEL_PYTHON_DISTRO": "distro", "OTEL_PYTHON_CONFIGURATOR": "configurator"},
], ids=["both-installed-default", "agentwatch-chosen", "opentelemetry-distro-chosen"])
def test_coexists_with_opentelemetry_distro(stub, receiver, choice):
    if not (DISTRO_DIR / "opentelemetry" / "distro").is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"opentelemetry-distro is expected in {DISTRO_DIR} (make setup installs it)")
        pytest.skip(f"opentelemetry-distro not installed in {DISTRO_DIR}; run `make setup`")
    # opentelemetry-distro defaults to gRPC, which agentwatch does not install: say the protocol explicitly
    env = {"PYTHONPATH": str(DISTRO_DIR), "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", **choice}
    run_agent(stub, env, receiver)
    spans = _inference_spans(receiver)
    assert len(spans) >= 6
    assert len([s for s in spans if s.name == "chat claude-haiku-4-5"]) == 2, "instrumented exactly once"
    assert receiver.metric("gen_ai.client.operation.duration") is not None
    assert receiver.logs_with_event("gen_ai.client.inference")


API_AGENT = HERE / "agents" / "api_agent.py"


def test_api_agent_runs_totals_and_metrics(stub, receiver):
    run_agent(stub, {}, receiver, script=API_AGENT)
    spans = receiver.spans()
    by_id = {s.span_id: s for s in spans}
    runs = {}
    for s in spans:
        if s.name.startswith("invoke_agent "):
            runs.setdefault(s.attributes["gen_ai.agent.name"], []).append(s)

    def llm_calls_under(run):
        def inside(span):
            parent = span.parent_span_id
            while parent:
                if parent == run.span_id:
                    return True
                parent = by_id[parent].parent_span_id if parent in by_id else ""
            return False
        return [s for s in spans if s.attributes.get("gen_ai.operation.name") == "chat" and inside(s)]

    assert sorted(r.attributes["gen_ai.invoke_agent.inference_calls"] for r in runs["worker"]) == [1, 2, 3]
    for run in [r for rs in runs.values() for r in rs]:
        calls = llm_calls_under(run)
        assert run.attributes["gen_ai.invoke_agent.inference_calls"] == len(calls), run.name
        assert run.attributes["gen_ai.usage.input_tokens"] == sum(c.attributes["gen_ai.usage.input_tokens"]
                                                                  for c in calls)
        assert run.attributes["agentwatch.usage.cost_usd"] == pytest.approx(
            sum(c.attributes["agentwatch.usage.cost_usd"] for c in calls), rel=1e-12)
    (planner,), (researcher,) = runs["planner"], runs["researcher"]
    assert researcher.parent_span_id == planner.span_id
    assert planner.attributes["gen_ai.invoke_agent.inference_calls"] == 3
    (billing,) = runs["billing"]
    assert billing.attributes["error.type"] == "payment_failed" and billing.status_code == "ERROR"
    assert billing.attributes["agentwatch.agent.tool_errors"] == 1
    (crasher,) = runs["crasher"]
    assert crasher.attributes["error.type"] == "TimeoutError"
    (runaway,) = runs["runaway"]
    assert runaway.attributes["error.type"] == "budget_exceeded"
    assert runaway.attributes["gen_ai.invoke_agent.inference_calls"] == 4

    duration = receiver.metric("gen_ai.invoke_agent.duration")
    assert duration.unit == "s"
    counts = {}
    for p in duration.points:
        key = (p.attributes["gen_ai.agent.name"], p.attributes.get("error.type"))
        counts[key] = counts.get(key, 0) + p.count
    assert counts[("worker", None)] == 3
    assert counts[("billing", "payment_failed")] == 1
    assert counts[("runaway", "budget_exceeded")] == 1
    assert 60.0 in duration.points[0].explicit_bounds
    steps = receiver.metric("gen_ai.invoke_agent.inference_calls")
    assert steps.unit == "{inference_call}" and 15.0 in steps.points[0].explicit_bounds
    tools = receiver.metric("gen_ai.execute_tool.duration")
    failed_tools = [p for p in tools.points if p.attributes.get("error.type") == "PermissionError"]
    assert failed_tools and failed_tools[0].attributes["gen_ai.tool.name"] == "charge_card"
    cost = receiver.metric("agentwatch.agent.cost")
    assert cost.unit == "USD"
    assert receiver.metric("agentwatch.agent.token.usage") is not None
    run_logs = receiver.logs_with_event("gen_ai.invoke_agent")
    assert len(run_logs) == sum(len(r) for r in runs.values())
    assert len(receiver.logs_with_event("gen_ai.execute_tool")) == 7
