"""`opentelemetry-instrument python agent.py` on an unmodified agent: spans, metrics and logs over OTLP/HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from otlp_receiver import OtlpReceiver

HERE = Path(__file__).parent
AGENT = HERE / "agents" / "plain_agent.py"
BIN = Path(sys.executable).parent
DISTRO_DIR = Path(sys.prefix) / "extras" / "distro"
SECRET_PROMPT = "PROMPT-MARKER-zebra-quartz"


def run_agent(stub, extra_env: dict[str, str], receiver: OtlpReceiver | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTWATCH_", "ANTHROPIC_"))}
    env.update(STUB_URL=stub.url, OTEL_SERVICE_NAME="plain-agent", OTEL_METRIC_EXPORT_INTERVAL="200",
               OTEL_BSP_SCHEDULE_DELAY="50", OTEL_BLRP_SCHEDULE_DELAY="50", ANTHROPIC_OPEN_TELEMETRY="false")
    if receiver is not None:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.endpoint
    env.update(extra_env)
    proc = subprocess.run([str(BIN / "opentelemetry-instrument"), sys.executable, str(AGENT)], env=env,
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
