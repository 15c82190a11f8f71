"""MCP client tool calls against a real MCP server (the `mcp` SDK's MCPServer, tests/agents/mcp_server.py).

Most tests run the server as a stdio subprocess, the way agents usually reach MCP servers: its own spans
stay in its process. The in-process tests show what the SDK's own server span does to a run's counts.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from opentelemetry.trace import SpanKind, StatusCode
from wrapt import ObjectProxy

import agentwatch
from agentwatch.runtime import telemetry

TEST_LAYER = "e2e"  # every test here is e2e unless marked otherwise (conftest.py)

mcp = pytest.importorskip("mcp")
from mcp import Client, ClientSession, StdioServerParameters, stdio_client  # noqa: E402
from mcp.shared.exceptions import MCPError  # noqa: E402

from agentwatch.runtime.instrumentors.mcp import MCPInstrumentor  # noqa: E402

SERVER_SCRIPT = Path(__file__).parent / "agents" / "mcp_server.py"


@pytest.fixture
def mcp_otel(agent_otel):
    instrumentor = MCPInstrumentor()
    instrumentor.instrument()
    agent_otel.instrumentor = instrumentor
    yield agent_otel
    instrumentor.uninstrument()


@pytest.fixture
def server_params():
    return StdioServerParameters(command=sys.executable, args=[str(SERVER_SCRIPT)])


@pytest.fixture
def server_log(tmp_path):
    with open(tmp_path / "server.log", "w") as log:
        yield log


@asynccontextmanager
async def stdio_session(params, errlog):
    async with stdio_client(params, errlog=errlog) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            yield session


def tool_spans(capture):
    return {s.name.removeprefix("execute_tool "): s for s in capture.spans_named("execute_tool ")}


def text_of(result):
    return "".join(block.text for block in result.content)


async def test_tool_calls_are_execute_tool_spans_of_the_run(mcp_otel, server_params, server_log):
    async with stdio_session(server_params, server_log) as session:
        async with agentwatch.agent_run("mcp-agent"):
            found = await session.call_tool("lookup_order", {"order_id": "A1"})
            refused = await session.call_tool("refund", arguments={"order_id": "A1"})

    # The results reach the caller unchanged: a failed MCP tool call is a result, not an exception.
    assert type(found).__name__ == "CallToolResult" and found.is_error is False
    assert json.loads(text_of(found)) == {"order_id": "A1", "status": "shipped"}
    assert refused.is_error is True and "not refundable" in text_of(refused)

    run = mcp_otel.run_span("mcp-agent")
    assert run.attributes["gen_ai.invoke_agent.tool_calls"] == 2
    assert run.attributes["agentwatch.agent.tool_errors"] == 1
    assert run.status.status_code is StatusCode.UNSET

    tools = tool_spans(mcp_otel)
    assert sorted(tools) == ["lookup_order", "refund"]
    for name, span in tools.items():
        assert span.kind is SpanKind.INTERNAL
        assert span.parent.span_id == run.context.span_id
        assert span.attributes["gen_ai.operation.name"] == "execute_tool"
        assert span.attributes["gen_ai.tool.name"] == name
        assert span.attributes["gen_ai.tool.type"] == "function"
        assert span.attributes["mcp.method.name"] == "tools/call"
        assert "gen_ai.tool.call.id" not in span.attributes  # the model's id: unknown to an MCP client
        assert "gen_ai.tool.call.arguments" not in span.attributes  # content capture is off
        assert "gen_ai.tool.call.result" not in span.attributes
    assert tools["lookup_order"].status.status_code is StatusCode.UNSET
    assert "error.type" not in tools["lookup_order"].attributes
    assert tools["refund"].status.status_code is StatusCode.ERROR
    assert tools["refund"].attributes["error.type"] == "tool_error"

    # The SDK's own CLIENT span (with the JSON-RPC request id) nests under ours.
    (sdk_span,) = mcp_otel.spans_named("MCP send tools/call refund")
    assert sdk_span.parent.span_id == tools["refund"].context.span_id
    assert sdk_span.attributes["jsonrpc.request.id"]

    points = {p.attributes["gen_ai.tool.name"]: p for p in mcp_otel.metric_points("gen_ai.execute_tool.duration")}
    assert sorted(points) == ["lookup_order", "refund"]
    assert dict(points["lookup_order"].attributes) == {"gen_ai.agent.name": "mcp-agent",
                                                        "gen_ai.tool.name": "lookup_order"}
    assert points["refund"].attributes["error.type"] == "tool_error"
    assert all(p.count == 1 for p in points.values())
    (tool_calls,) = mcp_otel.metric_points("gen_ai.invoke_agent.tool_calls")
    assert tool_calls.sum == 2

    outcomes = {r.attributes["gen_ai.tool.name"]: r.attributes["event.outcome"]
                for r in mcp_otel.log_records() if r.event_name == "gen_ai.execute_tool"}
    assert outcomes == {"lookup_order": "success", "refund": "failure"}


async def test_exception_propagates_unchanged(mcp_otel, server_params, server_log):
    async with stdio_session(server_params, server_log) as session:
        async with agentwatch.agent_run("mcp-agent"):
            with pytest.raises(MCPError) as raised:
                await session.call_tool("slow", {"seconds": 5}, read_timeout_seconds=0.2)
            assert type(raised.value) is MCPError and "timed out" in str(raised.value)
            assert (await session.call_tool("lookup_order", {"order_id": "B2"})).is_error is False
    run = mcp_otel.run_span("mcp-agent")
    assert run.attributes["gen_ai.invoke_agent.tool_calls"] == 2
    assert run.attributes["agentwatch.agent.tool_errors"] == 1
    slow = tool_spans(mcp_otel)["slow"]
    assert slow.attributes["error.type"] == "MCPError" and slow.status.status_code is StatusCode.ERROR


async def test_arguments_and_results_only_with_content_capture(mcp_otel, server_params, server_log,
                                                               monkeypatch):
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    telemetry.reset_telemetry()
    async with stdio_session(server_params, server_log) as session:
        async with agentwatch.agent_run("mcp-agent"):
            await session.call_tool("lookup_order", {"order_id": "C3"})
            await session.call_tool("refund", {"order_id": "C3"})
    tools = tool_spans(mcp_otel)
    found = tools["lookup_order"].attributes
    assert json.loads(found["gen_ai.tool.call.arguments"]) == {"order_id": "C3"}
    (block,) = json.loads(found["gen_ai.tool.call.result"])
    assert block["type"] == "text" and json.loads(block["text"]) == {"order_id": "C3", "status": "shipped"}
    refused = tools["refund"].attributes
    assert json.loads(refused["gen_ai.tool.call.arguments"]) == {"order_id": "C3"}
    assert "gen_ai.tool.call.result" not in refused  # a result is recorded for a successful call only


async def test_high_level_client_is_one_span_per_tool_call(mcp_otel, server_params, server_log):
    # mcp.Client.call_tool drives ClientSession.call_tool (once per input-required round): one tool call.
    async with Client(server_params) as client:
        async with agentwatch.agent_run("mcp-agent"):
            assert (await client.call_tool("lookup_order", {"order_id": "D4"})).is_error is False
            assert (await client.call_tool("refund", {"order_id": "D4"})).is_error is True
    run = mcp_otel.run_span("mcp-agent")
    assert run.attributes["gen_ai.invoke_agent.tool_calls"] == 2
    assert run.attributes["agentwatch.agent.tool_errors"] == 1
    tools = mcp_otel.spans_named("execute_tool ")
    assert sorted(s.name for s in tools) == ["execute_tool lookup_order", "execute_tool refund"]
    assert all(s.parent.span_id == run.context.span_id for s in tools)


async def test_langchain_tool_around_mcp_is_one_span(mcp_otel, server_params, server_log):
    """LangChain's MCP adapters wrap `call_tool` in a LangChain tool: with both instrumentors on, each call
    is still one execute_tool span (the MCP attributes go onto the LangChain tool's span)."""
    lc_tools = pytest.importorskip("langchain_core.tools")
    from agentwatch.runtime.instrumentors.langchain import LangChainInstrumentor

    langchain = LangChainInstrumentor()
    langchain.instrument()
    try:
        async with stdio_session(server_params, server_log) as session:
            def mcp_tool(name):
                async def call(order_id: str) -> str:
                    result = await session.call_tool(name, {"order_id": order_id})
                    if result.is_error:
                        raise lc_tools.ToolException(text_of(result))
                    return text_of(result)

                return lc_tools.StructuredTool.from_function(coroutine=call, name=name, description=name,
                                                             handle_tool_error=True)

            async with agentwatch.agent_run("mcp-agent"):
                found = await mcp_tool("lookup_order").ainvoke(
                    {"type": "tool_call", "id": "call_1", "name": "lookup_order", "args": {"order_id": "E5"}})
                refused = await mcp_tool("refund").ainvoke(
                    {"type": "tool_call", "id": "call_2", "name": "refund", "args": {"order_id": "E5"}})
    finally:
        langchain.uninstrument()
    assert found.status == "success" and refused.status == "error"
    run = mcp_otel.run_span("mcp-agent")
    assert run.attributes["gen_ai.invoke_agent.tool_calls"] == 2
    assert run.attributes["agentwatch.agent.tool_errors"] == 1
    tools = tool_spans(mcp_otel)
    assert sorted(tools) == ["lookup_order", "refund"]
    assert tools["lookup_order"].attributes["gen_ai.tool.call.id"] == "call_1"
    assert tools["refund"].attributes["gen_ai.tool.call.id"] == "call_2"
    assert all(s.attributes["mcp.method.name"] == "tools/call" for s in tools.values())
    assert tools["refund"].status.status_code is StatusCode.ERROR


async def test_uninstrument_removes_the_spans(mcp_otel, server_params, server_log):
    from mcp.client.client import Client as HighLevelClient

    mcp_otel.instrumentor.uninstrument()
    assert not isinstance(ClientSession.call_tool, ObjectProxy)
    assert not isinstance(HighLevelClient.call_tool, ObjectProxy)
    async with stdio_session(server_params, server_log) as session:
        async with agentwatch.agent_run("mcp-agent"):
            assert (await session.call_tool("lookup_order", {"order_id": "F6"})).is_error is False
            assert (await session.call_tool("refund", {"order_id": "F6"})).is_error is True
    assert mcp_otel.spans_named("execute_tool") == []
    assert mcp_otel.run_span("mcp-agent").attributes["gen_ai.invoke_agent.tool_calls"] == 0


async def test_agentwatch_failure_passes_the_call_through(mcp_otel, server_params, server_log, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("agentwatch bug")

    monkeypatch.setattr("agentwatch.runtime.instrumentors.mcp.tool_call", broken)
    async with stdio_session(server_params, server_log) as session:
        result = await session.call_tool("lookup_order", {"order_id": "G7"})
    assert result.is_error is False and json.loads(text_of(result))["status"] == "shipped"
    assert mcp_otel.spans_named("execute_tool") == []
    assert sum(p.value for p in mcp_otel.metric_points("agentwatch.internal.errors")) == 1


# --- in-process server: the SDK's own server span joins the trace ---------------------------------------
def load_server():
    spec = importlib.util.spec_from_file_location("agentwatch_test_mcp_server", SERVER_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.SERVER


async def in_process_calls():
    async with Client(load_server(), mode="legacy") as client:  # a real ClientSession over in-memory streams
        async with agentwatch.agent_run("mcp-agent"):
            await client.session.call_tool("lookup_order", {"order_id": "H8"})
            await client.session.call_tool("refund", {"order_id": "H8"})


async def test_in_process_server_span_continues_the_trace(mcp_otel):
    await in_process_calls()
    tools = tool_spans(mcp_otel)
    assert sorted(tools) == ["lookup_order", "refund"]
    by_id = {s.context.span_id: s for s in mcp_otel.finished()}

    def ancestors(span):
        while span.parent is not None and span.parent.span_id in by_id:
            span = by_id[span.parent.span_id]
            yield span

    (server_span,) = mcp_otel.spans_named("tools/call refund")
    assert server_span.kind is SpanKind.SERVER
    assert tools["refund"] in list(ancestors(server_span))


async def test_in_process_server_counts_each_call_once(mcp_otel):
    await in_process_calls()
    run = mcp_otel.run_span("mcp-agent")
    assert (run.attributes["gen_ai.invoke_agent.tool_calls"], run.attributes["agentwatch.agent.tool_errors"]) == (2, 1)


def test_entry_point_loads_without_importing_mcp():
    code = ("import sys; from importlib.metadata import entry_points; "
            "(ep,) = entry_points(group='opentelemetry_instrumentor', name='agentwatch_mcp'); "
            "cls = ep.load(); assert cls().instrumentation_dependencies() == ('mcp >= 1.0',); "
            "assert 'mcp' not in sys.modules, 'mcp imported at entry point load'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
