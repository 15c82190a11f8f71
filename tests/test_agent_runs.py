"""Agent runs and tool calls through the public API, counted by the span processor, with real SDK calls."""

from __future__ import annotations

import asyncio
import json
import math
import threading

import pytest
from opentelemetry.trace import SpanKind, StatusCode

import agentwatch
from agentwatch import thresholds

TEST_LAYER = "unit"  # every test here is unit unless marked otherwise (conftest.py)

TOOLS = [{"type": "function", "function": {"name": "lookup_order", "parameters": {
    "type": "object", "properties": {"order_id": {"type": "string"}}}}}]


def ask(client, text="where is my order"):
    return client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": text}])


@agentwatch.tool
def lookup_order(order_id: str) -> dict:
    return {"order_id": order_id, "status": "shipped"}


@agentwatch.tool(name="refund")
def refund_order(order_id: str) -> dict:
    raise ValueError(f"order {order_id} is not refundable")


def test_run_totals_are_the_exact_sum_of_its_calls(agent_otel, openai_client, anthropic_client):
    with agentwatch.agent_run("support-agent", conversation_id="conv-1") as run:
        ask(openai_client)
        lookup_order("A1")
        with pytest.raises(ValueError, match="not refundable"):
            refund_order("A1")
        ask(openai_client, "and the refund?")
        anthropic_client.messages.create(model="claude-haiku-4-5", max_tokens=50,
                                         messages=[{"role": "user", "content": "summarise"}])
        assert run.state.inference_calls == 3
    span = agent_otel.run_span("support-agent")
    a = span.attributes
    assert span.kind is SpanKind.INTERNAL
    assert a["gen_ai.operation.name"] == "invoke_agent"
    assert a["gen_ai.agent.name"] == "support-agent"
    assert a["gen_ai.conversation.id"] == "conv-1"
    assert a["gen_ai.invoke_agent.inference_calls"] == 3
    assert a["gen_ai.invoke_agent.tool_calls"] == 2
    assert a["agentwatch.agent.tool_errors"] == 1
    calls = agent_otel.llm_calls_under(span)
    assert len(calls) == 3
    assert a["gen_ai.usage.input_tokens"] == sum(c.attributes["gen_ai.usage.input_tokens"] for c in calls)
    assert a["gen_ai.usage.output_tokens"] == sum(c.attributes["gen_ai.usage.output_tokens"] for c in calls)
    assert math.isclose(a["agentwatch.usage.cost_usd"],
                        math.fsum(c.attributes["agentwatch.usage.cost_usd"] for c in calls), rel_tol=1e-12)
    assert "agentwatch.usage.cost_unknown" not in a
    assert span.status.status_code is StatusCode.UNSET

    tools = agent_otel.spans_named("execute_tool")
    assert sorted(s.name for s in tools) == ["execute_tool lookup_order", "execute_tool refund"]
    failed = [s for s in tools if s.name == "execute_tool refund"][0]
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.attributes["error.type"] == "ValueError"
    assert failed.attributes["gen_ai.tool.name"] == "refund"
    assert all(t.parent.span_id == span.context.span_id for t in tools)


def test_agent_metrics_and_threshold_bucket_boundaries(agent_otel, openai_client):
    for _ in range(2):
        with agentwatch.agent_run("support-agent"):
            ask(openai_client)
            lookup_order("A1")
    table = thresholds.current()
    (duration,) = agent_otel.metric_points("gen_ai.invoke_agent.duration")
    assert duration.count == 2 and dict(duration.attributes) == {"gen_ai.agent.name": "support-agent"}
    assert table["p99_latency"].value in duration.explicit_bounds
    (steps,) = agent_otel.metric_points("gen_ai.invoke_agent.inference_calls")
    assert steps.sum == 2 and table["steps_per_run"].value in steps.explicit_bounds
    (tool_calls,) = agent_otel.metric_points("gen_ai.invoke_agent.tool_calls")
    assert tool_calls.sum == 2
    (tool_duration,) = agent_otel.metric_points("gen_ai.execute_tool.duration")
    assert dict(tool_duration.attributes) == {"gen_ai.agent.name": "support-agent", "gen_ai.tool.name": "lookup_order"}
    (cost,) = agent_otel.metric_points("agentwatch.agent.cost")
    assert cost.count == 2 and table["cost_per_run"].value in cost.explicit_bounds
    spans = agent_otel.inference_spans()
    assert cost.sum == pytest.approx(sum(s.attributes["agentwatch.usage.cost_usd"] for s in spans), rel=1e-12)
    (tokens,) = agent_otel.metric_points("agentwatch.agent.token.usage")
    assert table["tokens_per_run"].value in tokens.explicit_bounds
    assert tokens.sum == sum(s.attributes["gen_ai.usage.input_tokens"] + s.attributes["gen_ai.usage.output_tokens"]
                             for s in spans)


def test_run_that_raises_and_run_marked_failed(agent_otel, openai_client):
    with pytest.raises(KeyError):
        with agentwatch.agent_run("flaky-agent"):
            ask(openai_client)
            raise KeyError("missing")
    with agentwatch.agent_run("flaky-agent") as run:
        ask(openai_client)
        run.fail("model gave no answer", error_type="no_answer")
    raised, marked = sorted(agent_otel.spans_named("invoke_agent"), key=lambda s: s.start_time)
    assert raised.attributes["error.type"] == "KeyError" and raised.status.status_code is StatusCode.ERROR
    assert marked.attributes["error.type"] == "no_answer"
    assert marked.attributes["agentwatch.agent.failure_reason"] == "model gave no answer"
    assert marked.attributes["gen_ai.invoke_agent.inference_calls"] == 1
    errors = sorted(p.attributes.get("error.type") for p in agent_otel.metric_points("gen_ai.invoke_agent.duration"))
    assert errors == ["KeyError", "no_answer"]


def test_nested_runs_count_for_their_parent(agent_otel, openai_client):
    with agentwatch.agent_run("planner"):
        ask(openai_client)
        with agentwatch.agent_run("researcher"):
            ask(openai_client)
            ask(openai_client)
            lookup_order("B2")
    planner, researcher = agent_otel.run_span("planner"), agent_otel.run_span("researcher")
    assert researcher.parent.span_id == planner.context.span_id
    assert researcher.attributes["gen_ai.invoke_agent.inference_calls"] == 2
    assert planner.attributes["gen_ai.invoke_agent.inference_calls"] == 3
    assert planner.attributes["gen_ai.invoke_agent.tool_calls"] == 1
    all_calls = agent_otel.inference_spans()
    assert math.isclose(planner.attributes["agentwatch.usage.cost_usd"],
                        math.fsum(s.attributes["agentwatch.usage.cost_usd"] for s in all_calls), rel_tol=1e-12)


async def test_concurrent_async_runs_keep_their_own_totals(agent_otel, async_openai_client):
    @agentwatch.tool
    async def fetch(i: int) -> int:
        await asyncio.sleep(0.001)
        return i

    @agentwatch.agent("worker")
    async def worker(n: int) -> int:
        for i in range(n):
            await async_openai_client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": f"step {i}"}])
            await fetch(i)
        return n

    assert await asyncio.gather(*(worker(n) for n in (1, 2, 3, 4, 5))) == [1, 2, 3, 4, 5]
    runs = agent_otel.spans_named("invoke_agent worker")
    assert sorted(r.attributes["gen_ai.invoke_agent.inference_calls"] for r in runs) == [1, 2, 3, 4, 5]
    for run in runs:
        calls = agent_otel.llm_calls_under(run)
        assert len(calls) == run.attributes["gen_ai.invoke_agent.inference_calls"]
        assert run.attributes["gen_ai.invoke_agent.tool_calls"] == len(calls)
        assert math.isclose(run.attributes["agentwatch.usage.cost_usd"],
                            math.fsum(c.attributes["agentwatch.usage.cost_usd"] for c in calls), rel_tol=1e-12)


def test_concurrent_threads_keep_their_own_totals(agent_otel, openai_client):
    def work(n):
        with agentwatch.agent_run(f"thread-{n}"):
            for _ in range(n):
                ask(openai_client)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(1, 6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for n in range(1, 6):
        assert agent_otel.run_span(f"thread-{n}").attributes["gen_ai.invoke_agent.inference_calls"] == n


def test_budget_stops_a_runaway_loop_before_the_request(agent_otel, openai_client, stub):
    sent_before = len(stub.requests)
    with pytest.raises(agentwatch.BudgetExceeded) as stopped:
        with agentwatch.agent_run("runaway", budget={"inference_calls": 5}):
            while True:  # a loop that never ends by itself
                ask(openai_client)
    assert stopped.value.limit == "inference_calls" and stopped.value.allowed == 5
    assert len(stub.requests) - sent_before == 5, "the 6th request is never sent"
    run = agent_otel.run_span("runaway")
    assert run.attributes["error.type"] == "budget_exceeded"
    assert run.attributes["gen_ai.invoke_agent.inference_calls"] == 5
    assert len(agent_otel.inference_spans()) == 5
    warnings = [r for r in agent_otel.log_records() if r.event_name == "agentwatch.budget.warning"]
    assert len(warnings) == 1 and warnings[0].attributes["agentwatch.budget.used"] == 4


def test_cost_budget_from_environment(agent_otel, openai_client, monkeypatch):
    monkeypatch.setenv("AGENTWATCH_RUN_MAX_COST_USD", "0.00001")
    with pytest.raises(agentwatch.BudgetExceeded) as stopped:
        with agentwatch.agent_run("spender"):
            for _ in range(100):
                ask(openai_client, "a fairly long question " * 20)
    assert stopped.value.limit == "cost_usd"
    run = agent_otel.run_span("spender")
    assert run.attributes["agentwatch.usage.cost_usd"] >= 0.00001
    assert run.attributes["gen_ai.invoke_agent.inference_calls"] < 100


def test_run_and_tool_log_records(agent_otel, openai_client):
    with agentwatch.agent_run("support-agent"):
        ask(openai_client)
        lookup_order("A1")
    records = {r.event_name: r for r in agent_otel.log_records()}
    run_record = records["gen_ai.invoke_agent"]
    assert run_record.attributes["gen_ai.invoke_agent.inference_calls"] == 1
    assert run_record.attributes["event.outcome"] == "success"
    assert run_record.trace_id == agent_otel.run_span("support-agent").context.trace_id
    tool_record = records["gen_ai.execute_tool"]
    assert tool_record.attributes["gen_ai.tool.name"] == "lookup_order"
    assert "gen_ai.tool.call.arguments" not in tool_record.attributes


def test_tool_arguments_and_results_only_with_content_capture(agent_otel, monkeypatch):
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    from agentwatch.runtime import telemetry

    telemetry.reset_telemetry()
    with agentwatch.agent_run("support-agent"):
        lookup_order("C3")
    (span,) = agent_otel.spans_named("execute_tool")
    assert json.loads(span.attributes["gen_ai.tool.call.arguments"]) == {"order_id": "C3"}
    assert json.loads(span.attributes["gen_ai.tool.call.result"]) == {"order_id": "C3", "status": "shipped"}


def test_async_tool_error_is_reraised_unchanged(agent_otel):
    error = RuntimeError("boom")

    @agentwatch.tool
    async def explode():
        raise error

    async def main():
        async with agentwatch.agent_run("async-agent"):
            await explode()

    with pytest.raises(RuntimeError) as raised:
        asyncio.run(main())
    assert raised.value is error
    run = agent_otel.run_span("async-agent")
    assert run.attributes["agentwatch.agent.tool_errors"] == 1
    assert run.attributes["error.type"] == "RuntimeError"


def test_anthropic_sdk_span_inside_ours_is_counted_once(agent_otel, stub):
    import anthropic
    from opentelemetry import trace

    client = anthropic.Anthropic(base_url=stub.anthropic_base_url, api_key="k", max_retries=0,
                                 open_telemetry={"tracer_provider": trace.get_tracer_provider()})
    with agentwatch.agent_run("claude-agent"):
        client.messages.create(model="claude-haiku-4-5", max_tokens=20, messages=[{"role": "user", "content": "x"}])
    assert any(s.instrumentation_scope.name != "agentwatch" and s.attributes.get("gen_ai.operation.name") == "chat"
               for s in agent_otel.finished()), "the SDK's own chat span is present"
    assert agent_otel.run_span("claude-agent").attributes["gen_ai.invoke_agent.inference_calls"] == 1


def test_root_span_fallback_treats_a_request_as_a_run(agent_otel, openai_client):
    from opentelemetry import trace

    processor = agent_otel.processor
    tracer = trace.get_tracer("web")
    processor.root_span_runs = "server"
    try:
        with tracer.start_as_current_span("POST /chat", kind=SpanKind.SERVER):
            ask(openai_client)
            ask(openai_client)
        with tracer.start_as_current_span("background job", kind=SpanKind.INTERNAL):
            ask(openai_client)
    finally:
        processor.root_span_runs = "off"
    request = [s for s in agent_otel.finished() if s.name == "POST /chat"][0]
    assert request.attributes["gen_ai.invoke_agent.inference_calls"] == 2
    assert request.attributes["agentwatch.agent.from_root_span"] is True
    job = [s for s in agent_otel.finished() if s.name == "background job"][0]
    assert "gen_ai.invoke_agent.inference_calls" not in job.attributes
    (steps,) = agent_otel.metric_points("gen_ai.invoke_agent.inference_calls")
    assert steps.sum == 2


def test_runs_whose_span_never_ends_are_evicted(agent_otel):
    from opentelemetry import trace

    from agentwatch.runtime.runs import REGISTRY

    tracer = trace.get_tracer("leaky")
    leaked = tracer.start_span("invoke_agent leaky", attributes={"gen_ai.operation.name": "invoke_agent"})
    assert leaked.get_span_context().span_id in REGISTRY
    processor = agent_otel.processor
    before = processor.evicted_runs
    processor.run_ttl = 0.0
    try:
        processor.sweep_now()
    finally:
        processor.run_ttl = 3600.0
    assert leaked.get_span_context().span_id not in REGISTRY
    assert processor.evicted_runs == before + 1
    assert sum(p.value for p in agent_otel.metric_points("agentwatch.processor.evicted_runs")) == 1
    leaked.end()  # ending it late is harmless


def test_two_processors_on_one_provider_count_each_call_once():
    """A user who adds AgentSpanProcessor by hand, next to the one ensure_processor() adds, gets one count."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import set_span_in_context

    from agentwatch.runtime.processor import AgentSpanProcessor, ensure_processor

    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    provider.add_span_processor(AgentSpanProcessor())
    ensure_processor(provider)
    tracer = provider.get_tracer("manual")
    run = tracer.start_span("invoke_agent manual", attributes={"gen_ai.operation.name": "invoke_agent",
                                                               "gen_ai.agent.name": "manual"})
    for _ in range(2):
        tracer.start_span("chat gpt-4o-mini", context=set_span_in_context(run), attributes={
            "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.usage.input_tokens": 100, "gen_ai.usage.output_tokens": 10}).end()
    run.end()
    (ended,) = [s for s in exporter.get_finished_spans() if s.name == "invoke_agent manual"]
    assert ended.attributes["gen_ai.invoke_agent.inference_calls"] == 2
    assert ended.attributes["gen_ai.usage.input_tokens"] == 200
