"""One inference span and one set of gen_ai.client.* points per LLM call, whoever else instruments the client.

An unmodified OpenAI + Anthropic agent (tests/agents/plain_agent.py: 4 OpenAI calls, one of them failing,
and 2 Anthropic calls) runs under the real `opentelemetry-instrument`, exporting over OTLP to a receiver:
- with anthropic 2.x's own tracing at its default, and with ANTHROPIC_OPEN_TELEMETRY=false / =true;
- with the official contrib instrumentations (genai-openai, genai-anthropic) or OpenLLMetry's installed
  beside agentwatch (their side folders on PYTHONPATH), activated by the same opentelemetry-instrument.

Each case asserts the spans (one LLM-call span per call, and whose), the gen_ai.client.operation.duration
points (one per call) and the cost: every successful call's span carries its cost, and the
`agentwatch.llm.cost` counter adds up to exactly those costs.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from support.otlp_receiver import OtlpReceiver
from test_zero_code import run_agent

from agentwatch.semconv import INFERENCE_OPERATIONS

TEST_LAYER = "e2e"  # every test here is e2e unless marked otherwise (conftest.py)

EXTRAS = Path(sys.prefix) / "extras"
CALLS = 6  # plain_agent.py: 4 OpenAI chat calls (one fails with a 500) and 2 Anthropic calls
FAILED = 1
SDK_SCOPE = "com.anthropic.sdk.python"
LEGACY_REQUEST_TYPES = {"chat": "chat", "completion": "text_completion", "embedding": "embeddings"}


@pytest.fixture
def receiver():
    with OtlpReceiver() as r:
        yield r


def side_folder(name: str, marker: str) -> Path:
    folder = EXTRAS / name
    if not (folder / marker).is_file():
        message = f"{folder} lacks {marker} (`make setup` installs it)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return folder


def llm_spans(receiver):
    def operation(span):
        a = span.attributes
        return a.get("gen_ai.operation.name") or LEGACY_REQUEST_TYPES.get(a.get("llm.request.type"))

    return [s for s in receiver.spans() if operation(s) in INFERENCE_OPERATIONS]


def duration_counts_by_scope(receiver) -> dict[str, int]:
    """Calls measured by each instrumentation scope (cumulative: the latest export of a scope has them all)."""
    latest = {m.scope_name: m for m in receiver.metrics() if m.name == "gen_ai.client.operation.duration"}
    return {scope: sum(p.count for p in m.points) for scope, m in latest.items()}


def assert_costs(spans) -> float:
    ok = [s for s in spans if s.status_code != "ERROR"]
    assert len(ok) == CALLS - FAILED
    assert all(s.attributes.get("agentwatch.usage.cost_usd", 0) > 0 for s in ok), \
        [(s.name, s.scope_name, dict(s.attributes)) for s in ok]
    return sum(s.attributes["agentwatch.usage.cost_usd"] for s in ok)


def assert_cost_counter(receiver, total: float) -> None:
    cost = receiver.metric("agentwatch.llm.cost")
    assert cost is not None
    assert sum(p.value for p in cost.points) == pytest.approx(total, rel=1e-9)


CASES = {
    "sdk-tracing-default": {},
    "sdk-tracing-off": {"ANTHROPIC_OPEN_TELEMETRY": "false"},
}


@pytest.mark.parametrize("case", list(CASES))
def test_agentwatch_span_is_the_one(stub, receiver, case):
    """No ANTHROPIC_OPEN_TELEMETRY (the SDK would trace by default) or =false: agentwatch's span only."""
    env = dict(CASES[case])
    proc = run_agent(stub, env, receiver, drop=("ANTHROPIC_OPEN_TELEMETRY",) if not env else ())
    spans = llm_spans(receiver)
    assert len(spans) == CALLS, [(s.name, s.scope_name) for s in spans]
    assert {s.scope_name for s in spans} == {"agentwatch"}
    assert not [s for s in receiver.spans() if s.scope_name.startswith(SDK_SCOPE)], "the SDK's own span is off"
    assert duration_counts_by_scope(receiver) == {"agentwatch": CALLS}
    assert_cost_counter(receiver, assert_costs(spans))
    assert len(receiver.logs_with_event("gen_ai.client.inference")) == CALLS
    assert proc.returncode == 0


def test_explicit_sdk_tracing_keeps_the_sdks_span_and_agentwatch_enriches_it(stub, receiver):
    """ANTHROPIC_OPEN_TELEMETRY=true: the user chose the SDK's span; agentwatch makes none for those calls
    and enriches the SDK's (cost, the cost counter, the log record, the gen_ai.client.* points it lacks)."""
    run_agent(stub, {"ANTHROPIC_OPEN_TELEMETRY": "true"}, receiver)
    spans = llm_spans(receiver)
    assert len(spans) == CALLS, [(s.name, s.scope_name) for s in spans]
    sdk = [s for s in spans if s.scope_name.startswith(SDK_SCOPE)]
    assert len(sdk) == 2 and all(s.name == "anthropic.messages.create" for s in sdk)
    assert sorted(s.scope_name for s in spans if s not in sdk) == ["agentwatch"] * 4
    # the SDK records no metrics: the points of its calls come from agentwatch, one per call
    assert duration_counts_by_scope(receiver) == {"agentwatch": CALLS}
    total = assert_costs(spans)
    assert_cost_counter(receiver, total)
    logs = receiver.logs_with_event("gen_ai.client.inference")
    assert len(logs) == CALLS
    assert {(s.trace_id, s.span_id) for s in sdk} <= {(r.trace_id, r.span_id) for r in logs}
    # content stays off on the SDK's span too (capture is off by default)
    assert b"PROMPT-MARKER-zebra-quartz" not in receiver.raw_bytes()


@pytest.mark.parametrize("library", ["official", "openllmetry"])
def test_another_instrumentation_installed_beside_agentwatch_owns_the_span(stub, receiver, library):
    """Their instrumentors and agentwatch's are all activated by opentelemetry-instrument: one span per
    call (theirs), one set of gen_ai.client.* points (theirs), agentwatch's cost on their spans."""
    markers = {"official": ("opentelemetry/instrumentation/genai/openai/__init__.py",
                            "opentelemetry/instrumentation/genai/anthropic/__init__.py"),
               "openllmetry": ("opentelemetry/instrumentation/openai/__init__.py",
                               "opentelemetry/instrumentation/anthropic/__init__.py")}[library]
    folder = side_folder(library, markers[0])
    side_folder(library, markers[1])
    run_agent(stub, {"PYTHONPATH": str(folder)}, receiver, drop=("ANTHROPIC_OPEN_TELEMETRY",))
    spans = llm_spans(receiver)
    assert len(spans) == CALLS, [(s.name, s.scope_name) for s in spans]
    assert not [s for s in spans if s.scope_name in ("agentwatch",) or s.scope_name.startswith(SDK_SCOPE)], \
        [(s.name, s.scope_name) for s in spans]
    counts = duration_counts_by_scope(receiver)
    assert "agentwatch" not in counts, counts
    assert sum(counts.values()) == CALLS, counts
    total = assert_costs(spans)
    assert_cost_counter(receiver, total)
    assert len(receiver.logs_with_event("gen_ai.client.inference")) == CALLS
