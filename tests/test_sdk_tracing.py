"""anthropic 2.x traces its own calls; agentwatch makes sure each call has ONE inference span (README).

In process, with global providers (the SDK's spans go to the global tracer provider unless its option names
another): a client the user did not configure gets agentwatch's span and none of the SDK's; a client whose
SDK tracing the user turned on keeps the SDK's span, which the span processor enriches (cost, cost counter,
log record, gen_ai.client.* points), and agentwatch makes none. A `with_options()` copy keeps its source's
choice. The SDK's `content_mode` records prompts only when content capture is on.
"""

from __future__ import annotations

import anthropic
import pytest

import agentwatch

TEST_LAYER = "unit"  # every test here is unit unless marked otherwise (conftest.py)

MODEL = "claude-haiku-4-5"
PROMPT = "summarise the quarterly report please"
MESSAGES = [{"role": "user", "content": PROMPT}]
SDK_SCOPE = "com.anthropic.sdk.python"

pytestmark = pytest.mark.skipif(not hasattr(anthropic.Anthropic, "open_telemetry"),
                                reason="this anthropic SDK has no tracing of its own")


@pytest.fixture
def sdk_env(agent_otel, monkeypatch):
    for name in ("ANTHROPIC_OPEN_TELEMETRY", "ANTHROPIC_OPEN_TELEMETRY_TRACES_CONTENT_MODE"):
        monkeypatch.delenv(name, raising=False)
    return agent_otel


def client(stub, **options):
    return anthropic.Anthropic(base_url=stub.anthropic_base_url, api_key="sk-ant-SECRETKEY0123456789",
                               max_retries=0, **options)


def llm_spans(capture):
    return [s for s in capture.finished() if s.attributes.get("gen_ai.operation.name") == "chat"]


def duration_count(capture) -> int:
    return sum(p.count for p in capture.metric_points("gen_ai.client.operation.duration"))


def test_unconfigured_client_gets_agentwatchs_span_only(sdk_env, stub):
    plain = client(stub)
    assert plain.open_telemetry["traces"]["enabled"] is True, "the SDK would trace this client by default"
    plain.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)
    plain.with_options(timeout=30).messages.create(model=MODEL, max_tokens=64, messages=MESSAGES, stream=True)
    for _ in plain.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES, stream=True):
        pass
    spans = llm_spans(sdk_env)
    assert [s.instrumentation_scope.name for s in spans] == ["agentwatch"] * 3
    assert not [s for s in sdk_env.finished() if s.instrumentation_scope.name.startswith(SDK_SCOPE)]
    assert duration_count(sdk_env) == 3


@pytest.mark.parametrize("how", ["option", "env"])
def test_explicit_sdk_tracing_keeps_the_sdk_span_enriched(sdk_env, stub, monkeypatch, how):
    if how == "env":
        monkeypatch.setenv("ANTHROPIC_OPEN_TELEMETRY", "true")
        traced = client(stub)
    else:
        traced = client(stub, open_telemetry={"traces": True})
    with agentwatch.agent_run("sdk-traced") as run:
        message = traced.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)
        with traced.with_options(timeout=30).messages.stream(model=MODEL, max_tokens=64, messages=MESSAGES) as s:
            s.get_final_message()
    spans = llm_spans(sdk_env)
    assert [s.instrumentation_scope.name for s in spans] == [SDK_SCOPE] * 2, "agentwatch stands down; copy too"
    first = next(s for s in spans if s.attributes.get("gen_ai.response.id") == message.id)
    assert first.attributes["agentwatch.usage.cost_usd"] > 0
    total = sum(s.attributes["agentwatch.usage.cost_usd"] for s in spans)
    run_span = sdk_env.run_span("sdk-traced")
    assert run_span.attributes["gen_ai.invoke_agent.inference_calls"] == 2
    assert run_span.attributes["agentwatch.usage.cost_usd"] == pytest.approx(total, rel=1e-12)
    assert run.state is None  # the run ended
    assert duration_count(sdk_env) == 2, "the SDK records no metrics: agentwatch adds one point per call"
    assert sum(p.value for p in sdk_env.metric_points("agentwatch.llm.cost")) == pytest.approx(total, rel=1e-12)
    logs = [r for r in sdk_env.log_records() if r.event_name == "gen_ai.client.inference"]
    assert sorted(r.span_id for r in logs) == sorted(s.context.span_id for s in spans)


@pytest.mark.parametrize("on", [True, False], ids=["with_content", "no_content"])
def test_sdk_content_mode_follows_the_capture_setting(sdk_env, stub, monkeypatch, on):
    import dataclasses

    from agentwatch.runtime import telemetry

    tel = telemetry.get_telemetry()
    monkeypatch.setattr(tel, "settings", dataclasses.replace(tel.settings, capture_content=on))
    traced = client(stub, open_telemetry={"traces": {"content_mode": "content"}})
    traced.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)
    (span,) = llm_spans(sdk_env)
    assert span.instrumentation_scope.name == SDK_SCOPE
    assert (PROMPT in str(dict(span.attributes))) is on
