"""LangChain tools (real langchain-core `@tool`, `StructuredTool`, `BaseTool` subclasses) as execute_tool spans."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest
from opentelemetry.trace import SpanKind, StatusCode
from wrapt import ObjectProxy

import agentwatch
from agentwatch.runtime import telemetry

TEST_LAYER = "unit"  # every test here is unit unless marked otherwise (conftest.py)

lc_tools = pytest.importorskip("langchain_core.tools")
from langchain_core.messages import ToolMessage  # noqa: E402
from langchain_core.tools import BaseTool, StructuredTool, ToolException, tool  # noqa: E402

from agentwatch.runtime.instrumentors.langchain import LangChainInstrumentor  # noqa: E402


@pytest.fixture
def lc_otel(agent_otel):
    instrumentor = LangChainInstrumentor()
    instrumentor.instrument()
    agent_otel.instrumentor = instrumentor
    yield agent_otel
    instrumentor.uninstrument()


@tool
def lookup_order(order_id: str) -> dict:
    """Where an order is."""
    return {"order_id": order_id, "status": "shipped"}


@tool
async def fetch_invoice(order_id: str) -> str:
    """The invoice of an order."""
    await asyncio.sleep(0)
    return f"invoice-{order_id}"


def _add(a: int, b: int) -> int:
    return a + b


add = StructuredTool.from_function(_add, name="add", description="Adds two numbers.")


def _refund(order_id: str) -> str:
    raise ToolException(f"order {order_id} is not refundable")


refund_handled = StructuredTool.from_function(_refund, name="refund_handled", description="Refunds.",
                                              handle_tool_error=True)
refund_raising = StructuredTool.from_function(_refund, name="refund_raising", description="Refunds.")


async def _async_refund(order_id: str) -> str:
    raise ToolException(f"order {order_id} is not refundable")


async_refund = StructuredTool.from_function(coroutine=_async_refund, name="async_refund", description="Refunds.",
                                            handle_tool_error=lambda e: f"sorry: {e}")


def tool_call(name, call_id, **args):
    return {"type": "tool_call", "id": call_id, "name": name, "args": args}


def spans_by_name(capture):
    spans = {}
    for span in capture.spans_named("execute_tool "):
        spans.setdefault(span.name.removeprefix("execute_tool "), []).append(span)
    return spans


async def test_each_tool_execution_is_one_span(lc_otel):
    async with agentwatch.agent_run("lc-agent"):
        assert lookup_order.invoke({"order_id": "A1"}) == {"order_id": "A1", "status": "shipped"}
        message = lookup_order.invoke(tool_call("lookup_order", "call_1", order_id="A2"))
        assert add.invoke({"a": 2, "b": 3}) == 5
        assert await fetch_invoice.ainvoke({"order_id": "A3"}) == "invoice-A3"
        invoice = await fetch_invoice.ainvoke(tool_call("fetch_invoice", "call_2", order_id="A4"))
        # A sync-only tool awaited: StructuredTool.ainvoke runs invoke -> run in a worker thread.
        assert await add.ainvoke({"a": 1, "b": 1}) == 2
    assert isinstance(message, ToolMessage) and message.tool_call_id == "call_1" and message.status == "success"
    assert isinstance(invoice, ToolMessage) and invoice.content == "invoice-A4"

    run = lc_otel.run_span("lc-agent")
    assert run.attributes["gen_ai.invoke_agent.tool_calls"] == 6
    assert run.attributes["agentwatch.agent.tool_errors"] == 0
    spans = spans_by_name(lc_otel)
    assert {name: len(s) for name, s in spans.items()} == {"lookup_order": 2, "add": 2, "fetch_invoice": 2}
    for name, group in spans.items():
        for span in group:
            assert span.kind is SpanKind.INTERNAL
            assert span.parent.span_id == run.context.span_id, "also from the worker thread"
            assert span.attributes["gen_ai.operation.name"] == "execute_tool"
            assert span.attributes["gen_ai.tool.name"] == name
            assert span.attributes["gen_ai.tool.type"] == "function"
            assert span.status.status_code is StatusCode.UNSET and "error.type" not in span.attributes
            assert "gen_ai.tool.call.arguments" not in span.attributes
            assert "gen_ai.tool.call.result" not in span.attributes
    ids = sorted(s.attributes.get("gen_ai.tool.call.id", "") for group in spans.values() for s in group)
    assert ids == ["", "", "", "", "call_1", "call_2"]

    points = {p.attributes["gen_ai.tool.name"]: p for p in lc_otel.metric_points("gen_ai.execute_tool.duration")}
    assert {name: p.count for name, p in points.items()} == {"lookup_order": 2, "add": 2, "fetch_invoice": 2}
    assert dict(points["add"].attributes) == {"gen_ai.agent.name": "lc-agent", "gen_ai.tool.name": "add"}


async def test_handled_tool_exception_is_a_failed_call(lc_otel):
    async with agentwatch.agent_run("lc-agent"):
        assert refund_handled.invoke({"order_id": "B1"}) == "order B1 is not refundable"
        message = refund_handled.invoke(tool_call("refund_handled", "call_3", order_id="B2"))
        assert await async_refund.ainvoke({"order_id": "B3"}) == "sorry: order B3 is not refundable"
        assert lookup_order.invoke({"order_id": "B4"})["status"] == "shipped"
    assert message.status == "error" and message.content == "order B2 is not refundable"

    run = lc_otel.run_span("lc-agent")
    assert run.attributes["gen_ai.invoke_agent.tool_calls"] == 4
    assert run.attributes["agentwatch.agent.tool_errors"] == 3
    assert run.status.status_code is StatusCode.UNSET
    spans = spans_by_name(lc_otel)
    failed = spans["refund_handled"] + spans["async_refund"]
    assert len(failed) == 3
    for span in failed:
        assert span.status.status_code is StatusCode.ERROR
        assert span.attributes["error.type"] == "ToolException"
    assert [s.attributes.get("gen_ai.tool.call.id") for s in spans["refund_handled"]].count("call_3") == 1
    errors = sorted((p.attributes["gen_ai.tool.name"], p.attributes.get("error.type"))
                    for p in lc_otel.metric_points("gen_ai.execute_tool.duration"))
    assert errors == [("async_refund", "ToolException"), ("lookup_order", None),
                      ("refund_handled", "ToolException")]


async def test_exceptions_propagate_unchanged(lc_otel):
    boom = RuntimeError("boom")

    def _explode(x: int) -> int:
        raise boom

    explode = StructuredTool.from_function(_explode, name="explode", description="Explodes.",
                                           handle_tool_error=True)  # handles ToolException only

    @tool
    async def explode_async(x: int) -> int:
        """Explodes too."""
        raise boom

    async with agentwatch.agent_run("lc-agent"):
        with pytest.raises(ToolException, match="not refundable"):
            refund_raising.invoke({"order_id": "C1"})
        with pytest.raises(RuntimeError) as raised:
            explode.invoke(tool_call("explode", "call_4", x=1))
        assert raised.value is boom
        with pytest.raises(RuntimeError) as raised:
            await explode_async.ainvoke({"x": 1})
        assert raised.value is boom
    run = lc_otel.run_span("lc-agent")
    assert run.attributes["gen_ai.invoke_agent.tool_calls"] == 3
    assert run.attributes["agentwatch.agent.tool_errors"] == 3
    spans = spans_by_name(lc_otel)
    assert spans["refund_raising"][0].attributes["error.type"] == "ToolException"
    assert spans["explode"][0].attributes["error.type"] == "RuntimeError"
    assert spans["explode"][0].attributes["gen_ai.tool.call.id"] == "call_4"
    assert spans["explode_async"][0].attributes["error.type"] == "RuntimeError"


def test_handled_validation_error_is_a_failed_call(lc_otel):
    strict_add = StructuredTool.from_function(_add, name="strict_add", description="Adds.",
                                              handle_validation_error=True)
    with agentwatch.agent_run("lc-agent"):
        assert strict_add.invoke({"a": "not a number", "b": 1}) == "Tool input validation error"
    (span,) = lc_otel.spans_named("execute_tool strict_add")
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "ValidationError"
    assert lc_otel.run_span("lc-agent").attributes["agentwatch.agent.tool_errors"] == 1


async def test_no_double_span_when_a_tool_reenters_itself_or_nests(lc_otel):
    class Shout(BaseTool):
        name: str = "shout"
        description: str = "Upper-cases its input."

        def _run(self, text: str) -> str:
            return text.upper()

        async def _arun(self, text: str) -> str:  # an async path that goes through the public run again
            return await asyncio.to_thread(self.run, text)

    class Polite(BaseTool):
        name: str = "polite"
        description: str = "Overrides invoke and run, delegating to the base class."

        def invoke(self, input, config=None, **kwargs):
            return super().invoke(input, config, **kwargs)

        def run(self, *args, **kwargs):
            return super().run(*args, **kwargs)

        def _run(self, text: str) -> str:
            return f"please {text}"

    @tool
    def outer(text: str) -> str:
        """Calls another tool."""
        return Polite().invoke({"text": text})

    shout = Shout()
    async with agentwatch.agent_run("lc-agent"):
        assert await shout.ainvoke({"text": "hi"}) == "HI"
        assert shout.invoke("hey") == "HEY"
        assert Polite().invoke(tool_call("polite", "call_5", text="sit")).content == "please sit"
        assert outer.invoke({"text": "stand"}) == "please stand"
    spans = spans_by_name(lc_otel)
    assert {name: len(s) for name, s in spans.items()} == {"shout": 2, "polite": 2, "outer": 1}
    run = lc_otel.run_span("lc-agent")
    (outer_span,) = spans["outer"]
    inner = [s for s in spans["polite"] if s.parent.span_id == outer_span.context.span_id]
    assert len(inner) == 1, "a tool called by a tool is its child"
    assert outer_span.parent.span_id == run.context.span_id
    assert run.attributes["gen_ai.invoke_agent.tool_calls"] == 5


def test_arguments_and_results_only_with_content_capture(lc_otel, monkeypatch):
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    telemetry.reset_telemetry()
    with agentwatch.agent_run("lc-agent"):
        lookup_order.invoke(tool_call("lookup_order", "call_6", order_id="D1"))
        refund_handled.invoke({"order_id": "D2"})
    spans = spans_by_name(lc_otel)
    found = spans["lookup_order"][0].attributes
    assert json.loads(found["gen_ai.tool.call.arguments"]) == {"order_id": "D1"}
    assert json.loads(json.loads(found["gen_ai.tool.call.result"])) == {"order_id": "D1", "status": "shipped"}
    refused = spans["refund_handled"][0].attributes
    assert json.loads(refused["gen_ai.tool.call.arguments"]) == {"order_id": "D2"}
    assert "gen_ai.tool.call.result" not in refused  # a result is recorded for a successful call only


def test_uninstrument_removes_the_spans(lc_otel):
    from langchain_core.tools import base

    lc_otel.instrumentor.uninstrument()
    for attribute in (BaseTool.run, BaseTool.arun, base._handle_tool_error, base._handle_validation_error):
        assert not isinstance(attribute, ObjectProxy)
    with agentwatch.agent_run("lc-agent"):
        assert lookup_order.invoke({"order_id": "E1"})["status"] == "shipped"
        assert refund_handled.invoke({"order_id": "E2"}) == "order E2 is not refundable"
    assert lc_otel.spans_named("execute_tool") == []
    assert lc_otel.run_span("lc-agent").attributes["gen_ai.invoke_agent.tool_calls"] == 0


def test_agentwatch_failure_passes_the_call_through(lc_otel, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("agentwatch bug")

    monkeypatch.setattr("agentwatch.runtime.instrumentors.langchain.tool_call", broken)
    assert lookup_order.invoke(tool_call("lookup_order", "call_7", order_id="F1")).content
    assert refund_handled.invoke({"order_id": "F2"}) == "order F2 is not refundable"
    assert lc_otel.spans_named("execute_tool") == []
    assert sum(p.value for p in lc_otel.metric_points("agentwatch.internal.errors")) == 2


@pytest.mark.e2e
def test_entry_point_loads_without_importing_langchain():
    code = ("import sys; from importlib.metadata import entry_points; "
            "(ep,) = entry_points(group='opentelemetry_instrumentor', name='agentwatch_langchain'); "
            "cls = ep.load(); assert cls().instrumentation_dependencies() == ('langchain-core >= 0.3',); "
            "assert 'langchain_core' not in sys.modules, 'langchain_core imported at entry point load'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
