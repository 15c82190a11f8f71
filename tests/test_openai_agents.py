"""The OpenAI Agents SDK, zero-code: real `agents.Agent`s, `@function_tool`s and `Runner`, models pointed at
the stub server, the OpenAI client instrumented by agentwatch, and `OpenAIAgentsInstrumentor` for the rest.

The stub answers the first request of a turn that offers tools with a call of the first tool (or of the tool
`tool_choice` forces) and answers with text once the last input is a tool result, so every run here is:
model call -> tool call -> model call -> final text.
"""

from __future__ import annotations

import asyncio
import math

import pytest
from opentelemetry.trace import StatusCode

TEST_LAYER = "unit"  # every test here is unit unless marked otherwise (conftest.py)

agents = pytest.importorskip("agents")

from agents import (  # noqa: E402
    Agent,
    ModelSettings,
    OpenAIChatCompletionsModel,
    OpenAIResponsesModel,
    Runner,
    function_tool,
)
from agents.exceptions import MaxTurnsExceeded  # noqa: E402
from openai import AsyncOpenAI  # noqa: E402

from agentwatch.runtime.instrumentors.openai_agents import OpenAIAgentsInstrumentor  # noqa: E402


@function_tool
def lookup_order(order_id: str) -> str:
    """Where an order is."""
    return f"order {order_id} has shipped"


@function_tool
def refund_order(order_id: str) -> str:
    """Refunds an order."""
    raise ValueError(f"order {order_id} is not refundable")


@pytest.fixture
def agents_otel(agent_otel, monkeypatch):
    """`agent_otel` plus the Agents SDK instrumented; the SDK's own trace export is off (nothing leaves)."""
    monkeypatch.setenv("OPENAI_AGENTS_DISABLE_TRACING", "1")
    agents.set_tracing_disabled(True)
    instrumentor = OpenAIAgentsInstrumentor()
    instrumentor.instrument()
    yield agent_otel
    instrumentor.uninstrument()


def chat_model(stub):
    # A client per event loop: `run_sync` and each async test run on their own loop.
    client = AsyncOpenAI(base_url=stub.openai_base_url, api_key="test", max_retries=0)
    return OpenAIChatCompletionsModel(model="gpt-4o-mini", openai_client=client)


def responses_model(stub):
    client = AsyncOpenAI(base_url=stub.openai_base_url, api_key="test", max_retries=0)
    return OpenAIResponsesModel(model="gpt-4o-mini", openai_client=client)


def support_agent(model, name="support-agent", **settings):
    return Agent(name=name, instructions="You help customers with their orders.", model=model,
                 tools=[lookup_order, refund_order], model_settings=ModelSettings(**settings))


def assert_run_totals(capture, run, *, calls, tools, tool_errors=0):
    """The run's totals are exactly what its descendants add up to."""
    a = run.attributes
    chats = capture.llm_calls_under(run)
    assert [c.name for c in chats] == ["chat gpt-4o-mini"] * calls
    assert a["gen_ai.invoke_agent.inference_calls"] == len(chats) == calls
    assert a["gen_ai.invoke_agent.tool_calls"] == tools
    assert a["agentwatch.agent.tool_errors"] == tool_errors
    assert a["gen_ai.usage.input_tokens"] == sum(c.attributes["gen_ai.usage.input_tokens"] for c in chats)
    assert a["gen_ai.usage.output_tokens"] == sum(c.attributes["gen_ai.usage.output_tokens"] for c in chats)
    assert math.isclose(a["agentwatch.usage.cost_usd"],
                        math.fsum(c.attributes["agentwatch.usage.cost_usd"] for c in chats), rel_tol=1e-12)
    assert a["agentwatch.usage.cost_usd"] > 0 and "agentwatch.usage.cost_unknown" not in a
    return chats


def tool_spans(capture):
    return capture.spans_named("execute_tool")


async def test_async_run_is_one_agent_run_with_its_model_calls_and_tools(agents_otel, stub):
    result = await Runner.run(support_agent(chat_model(stub)), "Where is my order A1?")
    assert isinstance(result.final_output, str) and result.final_output

    run = agents_otel.run_span("support-agent")
    assert run.parent is None and run.status.status_code is StatusCode.UNSET
    assert run.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert run.attributes["gen_ai.agent.name"] == "support-agent"
    chats = assert_run_totals(agents_otel, run, calls=2, tools=1)
    assert all(c.parent.span_id == run.context.span_id for c in chats), "model calls are the run's children"

    (tool,) = tool_spans(agents_otel)
    assert tool.name == "execute_tool lookup_order"
    assert tool.parent.span_id == run.context.span_id
    assert tool.attributes["gen_ai.tool.name"] == "lookup_order"
    assert tool.attributes["gen_ai.tool.type"] == "function"
    assert tool.attributes["gen_ai.tool.call.id"] == result.new_items[0].raw_item.call_id
    assert tool.status.status_code is StatusCode.UNSET
    assert "gen_ai.tool.call.arguments" not in tool.attributes  # content capture is off by default
    # the tool ran between the two model calls
    first, second = sorted(chats, key=lambda s: s.start_time)
    assert first.end_time <= tool.start_time and tool.end_time <= second.start_time


def test_run_sync_with_a_raising_tool(agents_otel, stub):
    # tool_choice forces the failing tool; the SDK turns its exception into a message for the model
    # (the default failure_error_function), so the run itself succeeds.
    result = Runner.run_sync(support_agent(chat_model(stub), "refund-agent", tool_choice="refund_order"),
                             "Refund order A1")
    assert result.final_output
    tool_output = [i for i in result.new_items if i.type == "tool_call_output_item"][0].output
    assert "An error occurred while running the tool" in tool_output  # the model sees no exception

    run = agents_otel.run_span("refund-agent")
    assert run.status.status_code is StatusCode.UNSET and "error.type" not in run.attributes
    assert_run_totals(agents_otel, run, calls=2, tools=1, tool_errors=1)
    (tool,) = tool_spans(agents_otel)
    assert tool.name == "execute_tool refund_order" and tool.attributes["gen_ai.tool.name"] == "refund_order"
    assert tool.parent.span_id == run.context.span_id
    assert tool.status.status_code is StatusCode.ERROR
    assert tool.attributes["error.type"] == "ValueError"


def test_tool_error_without_failure_function_fails_the_run(agents_otel, stub):
    @function_tool(failure_error_function=None)
    def cancel_order(order_id: str) -> str:
        """Cancels an order."""
        raise PermissionError("no")

    agent = Agent(name="strict-agent", model=chat_model(stub), tools=[cancel_order])
    with pytest.raises(agents.exceptions.UserError) as raised:
        Runner.run_sync(agent, "cancel A1")
    assert isinstance(raised.value.__cause__, PermissionError), "the caller sees the SDK's exception unchanged"
    (tool,) = tool_spans(agents_otel)
    assert tool.attributes["error.type"] == "PermissionError" and tool.status.status_code is StatusCode.ERROR
    run = agents_otel.run_span("strict-agent")
    assert run.attributes["error.type"] == "UserError" and run.status.status_code is StatusCode.ERROR
    assert run.attributes["gen_ai.invoke_agent.tool_calls"] == 1
    assert run.attributes["agentwatch.agent.tool_errors"] == 1


def test_agent_metrics(agents_otel, stub):
    Runner.run_sync(support_agent(chat_model(stub)), "Where is my order A1?")
    Runner.run_sync(support_agent(chat_model(stub), tool_choice="refund_order"), "Refund order A1")

    runs = agents_otel.run_spans("support-agent")
    assert len(runs) == 2
    (duration,) = agents_otel.metric_points("gen_ai.invoke_agent.duration")
    assert duration.count == 2 and dict(duration.attributes) == {"gen_ai.agent.name": "support-agent"}
    (steps,) = agents_otel.metric_points("gen_ai.invoke_agent.inference_calls")
    assert steps.count == 2 and steps.sum == 4
    (tool_calls,) = agents_otel.metric_points("gen_ai.invoke_agent.tool_calls")
    assert tool_calls.sum == 2
    tool_durations = {(p.attributes["gen_ai.tool.name"], p.attributes.get("error.type")): p.count
                      for p in agents_otel.metric_points("gen_ai.execute_tool.duration")}
    assert tool_durations == {("lookup_order", None): 1, ("refund_order", "ValueError"): 1}
    (cost,) = agents_otel.metric_points("agentwatch.agent.cost")
    assert cost.count == 2
    assert math.isclose(cost.sum, math.fsum(r.attributes["agentwatch.usage.cost_usd"] for r in runs), rel_tol=1e-12)
    (tokens,) = agents_otel.metric_points("agentwatch.agent.token.usage")
    assert tokens.sum == sum(r.attributes["gen_ai.usage.input_tokens"] + r.attributes["gen_ai.usage.output_tokens"]
                             for r in runs)


async def test_streamed_run(agents_otel, stub):
    # Against a non-OpenAI base URL the SDK asks for stream usage only when told to.
    result = Runner.run_streamed(support_agent(chat_model(stub), "streaming-agent", include_usage=True),
                                 "Where is my order A1?")
    events = [event async for event in result.stream_events()]
    assert events and result.final_output
    run = agents_otel.run_span("streaming-agent")
    assert_run_totals(agents_otel, run, calls=2, tools=1)
    assert all(c.attributes["gen_ai.request.stream"] is True for c in agents_otel.llm_calls_under(run))
    (tool,) = tool_spans(agents_otel)
    assert tool.parent.span_id == run.context.span_id


async def test_responses_api_model(agents_otel, stub):
    result = await Runner.run(support_agent(responses_model(stub), "responses-agent"), "Where is my order A1?")
    assert result.final_output
    run = agents_otel.run_span("responses-agent")
    assert_run_totals(agents_otel, run, calls=2, tools=1)
    assert {r["path"] for r in stub.requests[-2:]} == {"/v1/responses"}


def test_handoff_is_a_nested_run(agents_otel, stub):
    specialist = support_agent(chat_model(stub), "specialist")
    triage = Agent(name="triage", instructions="Route the customer.", model=chat_model(stub),
                   handoffs=[specialist])
    try:
        raise KeyError("an exception the caller is handling while it runs the agent")
    except KeyError:
        result = Runner.run_sync(triage, "I need help with order A1")
    assert result.last_agent is specialist

    outer, nested = agents_otel.run_span("triage"), agents_otel.run_span("specialist")
    assert nested.parent.span_id == outer.context.span_id
    assert nested.status.status_code is StatusCode.UNSET, "the caller's own exception is not the run's"
    # The handoff's result is the specialist's last input, so the stub answers it with text: one call each.
    assert_run_totals(agents_otel, nested, calls=1, tools=0)
    assert_run_totals(agents_otel, outer, calls=2, tools=0)  # the run's totals include the nested agent's
    first = [c for c in agents_otel.llm_calls_under(outer) if c.parent.span_id == outer.context.span_id]
    assert len(first) == 1, "triage's own call is directly under the run"


def test_failing_handoff_run_fails_both_runs(agents_otel, stub):
    specialist = support_agent(chat_model(stub), "specialist")
    triage = Agent(name="triage", model=chat_model(stub), handoffs=[specialist])
    with pytest.raises(MaxTurnsExceeded):
        Runner.run_sync(triage, "help", max_turns=1)
    outer, nested = agents_otel.run_span("triage"), agents_otel.run_span("specialist")
    for span in (outer, nested):
        assert span.status.status_code is StatusCode.ERROR
        assert span.attributes["error.type"] == "MaxTurnsExceeded"
    errors = sorted(p.attributes.get("error.type") for p in agents_otel.metric_points("gen_ai.invoke_agent.duration"))
    assert errors == ["MaxTurnsExceeded", "MaxTurnsExceeded"]


async def test_agent_as_tool_is_a_run_inside_the_tool_call(agents_otel, stub):
    researcher = Agent(name="researcher", instructions="Research.", model=chat_model(stub))
    manager = Agent(name="manager", instructions="Delegate.", model=chat_model(stub),
                    tools=[researcher.as_tool(tool_name="research", tool_description="Researches a topic.")])
    await Runner.run(manager, "Find out about order A1")

    manager_run, researcher_run = agents_otel.run_span("manager"), agents_otel.run_span("researcher")
    (tool,) = tool_spans(agents_otel)
    assert tool.name == "execute_tool research" and tool.parent.span_id == manager_run.context.span_id
    assert researcher_run.parent.span_id == tool.context.span_id
    assert_run_totals(agents_otel, researcher_run, calls=1, tools=0)
    assert_run_totals(agents_otel, manager_run, calls=3, tools=1)


async def test_concurrent_runs_keep_their_own_totals(agents_otel, stub):
    names = [f"agent-{i}" for i in range(4)]
    await asyncio.gather(*(Runner.run(support_agent(chat_model(stub), name), "Where is A1?") for name in names))
    for name in names:
        run = agents_otel.run_span(name)
        assert_run_totals(agents_otel, run, calls=2, tools=1)
        (tool,) = [t for t in agents_otel.descendants(run) if t.name.startswith("execute_tool")]
        assert tool.parent.span_id == run.context.span_id


def test_tool_arguments_and_result_with_content_capture(agents_otel, stub, monkeypatch):
    from agentwatch.runtime import telemetry

    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    telemetry.reset_telemetry()
    agents_otel.processor._telemetry = None
    agents_otel.processor._instruments = None
    Runner.run_sync(support_agent(chat_model(stub)), "Where is my order A1?")
    (tool,) = tool_spans(agents_otel)
    assert tool.attributes["gen_ai.tool.call.arguments"] == '{"order_id": "stub"}'
    assert tool.attributes["gen_ai.tool.call.result"] == '"order stub has shipped"'


def test_uninstrument_removes_the_run_and_tool_spans(agents_otel, stub):
    OpenAIAgentsInstrumentor().uninstrument()
    result = Runner.run_sync(support_agent(chat_model(stub)), "Where is my order A1?")
    assert result.final_output
    assert agents_otel.spans_named("invoke_agent") == [] and tool_spans(agents_otel) == []
    chats = agents_otel.inference_spans()
    assert len(chats) == 2 and all(c.parent is None for c in chats), "the OpenAI client is still instrumented"
    import agents.run as agents_run
    from agents.run_internal import tool_execution

    assert not hasattr(agents_run.AgentRunner.run, "__wrapped__")
    assert not hasattr(tool_execution._invoke_function_tool_with_metadata, "__wrapped__")
    OpenAIAgentsInstrumentor().instrument()  # the fixture's teardown uninstruments again
    Runner.run_sync(support_agent(chat_model(stub), "again"), "Where is my order A1?")
    assert len(agents_otel.run_spans("again")) == 1


def test_tool_timeout_is_a_failed_tool_call(agents_otel, stub):
    @function_tool(timeout=0.05)
    async def slow_lookup(order_id: str) -> str:
        """Looks an order up, slowly."""
        await asyncio.sleep(5)
        return "late"

    agent = Agent(name="impatient-agent", model=chat_model(stub), tools=[slow_lookup])
    result = Runner.run_sync(agent, "Where is A1?")
    assert result.final_output  # the SDK told the model the tool timed out
    (tool,) = tool_spans(agents_otel)
    assert tool.attributes["error.type"] == "ToolTimeoutError" and tool.status.status_code is StatusCode.ERROR
    assert agents_otel.run_span("impatient-agent").attributes["agentwatch.agent.tool_errors"] == 1


async def test_guardrail_tripwire_in_a_streamed_run_fails_the_run(agents_otel, stub):
    from agents import GuardrailFunctionOutput, InputGuardrailTripwireTriggered, input_guardrail

    @input_guardrail
    async def block_everything(ctx, agent, user_input):
        return GuardrailFunctionOutput(output_info=None, tripwire_triggered=True)

    agent = Agent(name="guarded-agent", model=chat_model(stub), input_guardrails=[block_everything])
    result = Runner.run_streamed(agent, "hello")
    with pytest.raises(InputGuardrailTripwireTriggered):
        async for _event in result.stream_events():
            pass
    await asyncio.sleep(0)
    run = agents_otel.run_span("guarded-agent")
    assert run.attributes["error.type"] == "InputGuardrailTripwireTriggered"
    assert run.status.status_code is StatusCode.ERROR


class _Recorder(agents.TracingProcessor):
    """Keeps the SDK's own spans in memory (replaces the exporter to OpenAI's backend for one test)."""

    def __init__(self):
        self.spans = []

    def on_trace_start(self, trace):
        pass

    def on_trace_end(self, trace):
        pass

    def on_span_start(self, span):
        pass

    def on_span_end(self, span):
        self.spans.append(span)

    def shutdown(self):
        pass

    def force_flush(self):
        pass


def test_the_sdks_own_tracing_is_unchanged(agents_otel, stub):
    # With the SDK's tracing on, its spans (agent, function, generation) are what they would be without
    # agentwatch, and agentwatch's runs are the same as with its tracing off.
    recorder = _Recorder()
    agents.set_trace_processors([recorder])  # never the default exporter: nothing leaves the machine
    agents.set_tracing_disabled(False)
    try:
        specialist = support_agent(chat_model(stub), "specialist")
        Runner.run_sync(Agent(name="triage", model=chat_model(stub), handoffs=[specialist]), "help with A1")
        Runner.run_sync(support_agent(chat_model(stub)), "Where is my order A1?")
    finally:
        agents.set_tracing_disabled(True)
    kinds = [(s.span_data.type, getattr(s.span_data, "name", None)) for s in recorder.spans]
    assert ("agent", "triage") in kinds and ("agent", "specialist") in kinds
    assert ("function", "lookup_order") in kinds
    assert all(type(s).__name__ == "SpanImpl" for s in recorder.spans), "the processors get the SDK's spans"
    assert agents_otel.run_span("specialist").parent.span_id == agents_otel.run_span("triage").context.span_id
    assert_run_totals(agents_otel, agents_otel.run_span("support-agent"), calls=2, tools=1)
