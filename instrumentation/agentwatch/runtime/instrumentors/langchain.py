"""LangChain tool instrumentation: every execution of a `langchain_core` tool is one `execute_tool` span.

Patched: `BaseTool.run` and `BaseTool.arun`, the two methods every tool execution goes through
(`invoke` calls `run`, `ainvoke` calls `arun`; `StructuredTool.ainvoke` without a coroutine runs `invoke` in
a thread; legacy agents call `run`/`arun` directly). A nested entry for the same tool object (a tool whose
`_run` calls its own `run`/`arun`, or a subclass that overrides `run` and calls `super().run`) adds no second
span.

The call id is the `tool_call_id` that `invoke`/`ainvoke` take from a `ToolCall` input
(`{"type": "tool_call", "id": ..., "args": ...}`), or that a caller passes to `run` directly.

A tool that raises `ToolException` while `handle_tool_error` is set (or fails validation while
`handle_validation_error` is set) returns the error text instead of raising; it is still a failed call:
`error.type` is the exception's class name (`ToolException`). LangChain reports such a call only through
the content it returns, so the instrumentor also wraps `langchain_core.tools.base._handle_tool_error` and
`_handle_validation_error` (looked up by `run`/`arun` at call time) to learn the exception; if those
private helpers are ever renamed, a returned `ToolMessage` with `status="error"` still marks the call
failed (`error.type` "tool_error"). Every other exception propagates unchanged.
"""

from __future__ import annotations

import contextvars
from typing import Any, Collection

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor

from agentwatch import semconv as sc
from agentwatch.runtime.api import ToolCall, capture_content, tool_call
from agentwatch.runtime.instrumentors._on_import import ImportPatches
from agentwatch.runtime.processor import ensure_processor
from agentwatch.runtime.telemetry import report_internal_error

_BASE = "langchain_core.tools.base"
_RUN_METHODS = ("BaseTool.run", "BaseTool.arun")
_ERROR_HANDLERS = ("_handle_tool_error", "_handle_validation_error")
TOOL_TYPE = sc.TOOL_TYPE_FUNCTION
TOOL_ERROR = sc.ERROR_TOOL  # error.type when only the returned ToolMessage says the call failed


class _Active:
    """The tool execution in progress in this context: the tool object, its ToolCall, and a handled error."""

    __slots__ = ("tool", "call", "failed")

    def __init__(self, tool: Any, call: ToolCall):
        self.tool = tool
        self.call = call
        self.failed: str | None = None

    def fail(self, error_type: str) -> None:
        self.failed = error_type
        self.call.fail(error_type)


_ACTIVE: contextvars.ContextVar[_Active | None] = contextvars.ContextVar("agentwatch_langchain_tool", default=None)


class LangChainInstrumentor(BaseInstrumentor):
    """Patches `langchain-core` (>= 0.3) tools so each tool execution is an `execute_tool` span."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("langchain-core >= 0.3",)

    def _instrument(self, **kwargs: Any) -> None:
        patches = self._patches = ImportPatches("langchain_core")  # ModuleNotFoundError without LangChain
        ensure_processor(kwargs.get("tracer_provider"))
        for method, wrapper in zip(_RUN_METHODS, (_run, _arun)):
            patches.wrap(_BASE, method, wrapper)
        for helper in _ERROR_HANDLERS:
            patches.wrap(_BASE, helper, _handled_error)
        patches.start()  # patched when the application imports langchain_core's tools, not before

    def _uninstrument(self, **kwargs: Any) -> None:
        self._patches.stop()


# --- wrappers ------------------------------------------------------------------------------------------
def _start(instance: Any, args: tuple, kwargs: dict) -> ToolCall | None:
    """The ToolCall for this execution, or None when it is already traced (nested entry of the same tool)."""
    active = _ACTIVE.get()
    if active is not None and active.tool is instance:
        return None
    name = getattr(instance, "name", None)
    name = name if isinstance(name, str) and name else type(instance).__name__
    call_id = kwargs.get("tool_call_id")
    arguments = None
    if capture_content():
        tool_input = args[0] if args else kwargs.get("tool_input")
        arguments = _arguments(instance, tool_input)
    return tool_call(name, call_id=call_id if isinstance(call_id, str) else None, tool_type=TOOL_TYPE,
                     arguments=arguments)


def _run(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    try:
        call = _start(instance, args, kwargs)
    except Exception:  # noqa: BLE001
        report_internal_error("langchain.run.start")
        call = None
    if call is None:
        return wrapped(*args, **kwargs)
    with call:
        active = _Active(instance, call)
        token = _ACTIVE.set(active)
        try:
            result = wrapped(*args, **kwargs)
        finally:
            _ACTIVE.reset(token)
        _finish(active, result)
        return result


async def _arun(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    try:
        call = _start(instance, args, kwargs)
    except Exception:  # noqa: BLE001
        report_internal_error("langchain.arun.start")
        call = None
    if call is None:
        return await wrapped(*args, **kwargs)
    with call:
        active = _Active(instance, call)
        token = _ACTIVE.set(active)
        try:
            result = await wrapped(*args, **kwargs)
        finally:
            _ACTIVE.reset(token)
        _finish(active, result)
        return result


def _handled_error(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    """Wraps LangChain's handlers of ToolException / validation errors: the call failed, without a raise."""
    try:
        active = _ACTIVE.get()
        if active is not None:
            error = args[0] if args else kwargs.get("e")
            active.fail(type(error).__qualname__ if isinstance(error, BaseException) else TOOL_ERROR)
    except Exception:  # noqa: BLE001
        report_internal_error("langchain.handled_error")
    return wrapped(*args, **kwargs)


def _finish(active: _Active, result: Any) -> None:
    try:
        is_message = getattr(result, "type", None) == "tool"  # a ToolMessage (the input was a ToolCall)
        if is_message and getattr(result, "status", None) == "error" and active.failed is None:
            active.fail(TOOL_ERROR)  # the handler hook did not see it
        if active.failed is None and capture_content():
            active.call.set_result(getattr(result, "content", result) if is_message else result)
    except Exception:  # noqa: BLE001
        report_internal_error("langchain.finish")


def _arguments(tool: Any, tool_input: Any) -> Any:
    """The tool's input without injected arguments (state, runtime, ...), which are not the model's."""
    if isinstance(tool_input, dict):
        try:
            return tool._filter_injected_args(tool_input)  # noqa: SLF001
        except Exception:  # noqa: BLE001
            return tool_input
    return tool_input
