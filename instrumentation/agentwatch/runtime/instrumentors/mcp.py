"""MCP client instrumentation: every `tools/call` an agent makes is one `execute_tool {name}` span.

Patched: `mcp.ClientSession.call_tool` (the primitive every MCP client path goes through: `ClientSession`
users, `ClientSessionGroup`, LangChain's MCP adapters, ...) and, where it exists (mcp >= 2), the high-level
`mcp.Client.call_tool`, whose input-required rounds and `HEADER_MISMATCH` retry are several
`ClientSession.call_tool` calls but one tool call for the agent.

Span shape (via `agentwatch.runtime.api.ToolCall`, like every tool span): `gen_ai.tool.name`, `gen_ai.tool.type`
"function" (the agent's side picks the arguments and runs the call), and `mcp.method.name` "tools/call"
from the MCP semantic conventions. A result with `isError: true` is a failed tool call although nothing is
raised: `error.type` "tool_error", the value the MCP conventions prescribe. Exceptions (transport errors,
JSON-RPC errors as `McpError`/`MCPError`) propagate unchanged and are recorded with their class name.

`gen_ai.tool.call.id` is not set: it names the model's tool-call id, which the MCP client never sees, and
the JSON-RPC request id is allocated inside the SDK's dispatcher after `call_tool` starts (mcp >= 2
records it as `jsonrpc.request.id` on its own `MCP send tools/call` CLIENT span, a child of ours).

When an outer instrumentation already traces this very tool call (an active `execute_tool` span with the
same tool name, e.g. the LangChain tool that LangChain's MCP adapters build around `call_tool`), no second
span is made: the MCP attributes and an `isError` result go onto the existing span, as the MCP semantic
conventions ask, so the call is counted once.
"""

from __future__ import annotations

from typing import Any, Collection

from opentelemetry import trace
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor
from opentelemetry.trace import Status, StatusCode

from agentwatch import semconv as sc
from agentwatch.runtime.api import ToolCall, capture_content, tool_call
from agentwatch.runtime.instrumentors._on_import import ImportPatches
from agentwatch.runtime.processor import ensure_processor
from agentwatch.runtime.telemetry import report_internal_error

MCP_METHOD_NAME = sc.MCP_METHOD_NAME
METHOD_TOOLS_CALL = sc.MCP_METHOD_TOOLS_CALL
TOOL_ERROR = sc.ERROR_TOOL  # error.type for a CallToolResult with isError: true (MCP semantic conventions)
TOOL_TYPE = sc.TOOL_TYPE_FUNCTION

# (module, class) pairs whose `call_tool` is patched; the second exists in mcp >= 2 only.
_TARGETS = (
    ("mcp.client.session", "ClientSession"),
    ("mcp.client.client", "Client"),
)


class MCPInstrumentor(BaseInstrumentor):
    """Patches the MCP Python SDK's client (`mcp` >= 1.0) so each tool call is an `execute_tool` span."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("mcp >= 1.0",)

    def _instrument(self, **kwargs: Any) -> None:
        patches = self._patches = ImportPatches("mcp")  # ModuleNotFoundError when the SDK is absent
        ensure_processor(kwargs.get("tracer_provider"))
        for module, cls in _TARGETS:
            patches.wrap(module, f"{cls}.call_tool", _call_tool)
        patches.start()  # patched when the application imports the MCP client, not before

    def _uninstrument(self, **kwargs: Any) -> None:
        self._patches.stop()


# --- the wrapper -------------------------------------------------------------------------------------
def _call_tool(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    return _traced_call_tool(wrapped, instance, args, kwargs)


async def _traced_call_tool(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    try:
        params = args[1:] if instance is None else args  # called through the class: args[0] is the session
        name = params[0] if params else kwargs.get("name")
        name = name if isinstance(name, str) and name else "unknown"
        outer = _enclosing_tool_span(name)
        if outer is None:
            arguments = params[1] if len(params) > 1 else kwargs.get("arguments")
            call: ToolCall | None = tool_call(
                name, tool_type=TOOL_TYPE, attributes={MCP_METHOD_NAME: METHOD_TOOLS_CALL},
                arguments=arguments if capture_content() else None)
        else:
            call = None
            outer.set_attribute(MCP_METHOD_NAME, METHOD_TOOLS_CALL)
    except Exception:  # noqa: BLE001
        report_internal_error("mcp.call_tool.start")
        return await wrapped(*args, **kwargs)

    if call is None:  # an outer execute_tool span already traces this call
        result = await wrapped(*args, **kwargs)
        _mark_outer(outer, result)
        return result

    with call:
        result = await wrapped(*args, **kwargs)
        _finish(call, result)
        return result


def _enclosing_tool_span(name: str) -> Any:
    """The active span when it is an `execute_tool` span for the same tool (so this call is already traced)."""
    span = trace.get_current_span()
    if not span.is_recording():
        return None
    attributes = getattr(span, "attributes", None)
    if not attributes:
        return None
    if attributes.get(sc.GEN_AI_OPERATION_NAME) == sc.OP_EXECUTE_TOOL and attributes.get(sc.GEN_AI_TOOL_NAME) == name:
        return span
    return None


def _is_error(result: Any) -> bool:
    flag = getattr(result, "is_error", None)  # mcp >= 2
    if flag is None:
        flag = getattr(result, "isError", None)  # mcp 1.x
    if flag is None and isinstance(result, dict):
        flag = result.get("isError")
    return flag is True


def _finish(call: ToolCall, result: Any) -> None:
    try:
        if _is_error(result):
            call.fail(TOOL_ERROR)
        elif capture_content():
            call.set_result(_result_content(result))
    except Exception:  # noqa: BLE001
        report_internal_error("mcp.call_tool.finish")


def _mark_outer(span: Any, result: Any) -> None:
    try:
        if _is_error(result) and span.is_recording() and not span.attributes.get(sc.ERROR_TYPE):
            span.set_attribute(sc.ERROR_TYPE, TOOL_ERROR)
            span.set_status(Status(StatusCode.ERROR, TOOL_ERROR))
    except Exception:  # noqa: BLE001
        report_internal_error("mcp.call_tool.finish")


def _result_content(result: Any) -> Any:
    """The tool's output for `gen_ai.tool.call.result`: structured content when given, else the content blocks."""
    structured = getattr(result, "structured_content", None)
    if structured is None:
        structured = getattr(result, "structuredContent", None)
    if structured is not None:
        return structured
    content = getattr(result, "content", None)
    if content is None:
        return result
    return [_dump(block) for block in content]


def _dump(block: Any) -> Any:
    dump = getattr(block, "model_dump", None)
    if dump is None:
        return block
    return dump(mode="json", by_alias=True, exclude_none=True)
