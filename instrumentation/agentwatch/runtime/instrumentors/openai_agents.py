"""OpenAI Agents SDK (`openai-agents`, import name `agents`) instrumentation: agent runs and function tools.

What it produces, with no change to the agent's code:

- one `invoke_agent {agent.name}` run per `Runner.run` / `Runner.run_sync` / `Runner.run_streamed`, named
  after the agent the run starts with. Its OTel context is current while the SDK works, so the `chat` spans
  agentwatch's OpenAI instrumentor makes for the SDK's model calls, and the tool spans, are its children and
  the span processor counts steps, tools, tokens and cost into it;
- a nested `invoke_agent {agent.name}` run for every later agent of the same run (after a handoff), so each
  agent's share is visible while the outer run keeps the totals of the whole run;
- one `execute_tool {tool.name}` per function-tool invocation (`@function_tool`, `Agent.as_tool()`, MCP tools
  the SDK exposes as function tools), failed (`error.type`) when the tool raised - also when the SDK turned the
  exception into a message for the model through the tool's `failure_error_function` - or timed out.

How, and why not the SDK's tracing processors: `agents.add_trace_processor()` only sees spans while the SDK's
own tracing is on. With `OPENAI_AGENTS_DISABLE_TRACING=1`, `set_tracing_disabled(True)` or
`RunConfig(tracing_disabled=True)` - common when the traces are not meant to go to OpenAI's backend - the SDK
creates no-op spans and never calls a processor; and keeping it on means its default exporter uploads to
OpenAI unless the user's processor list is replaced. So this module wraps the coroutines that do the work:

- `AgentRunner.run` (reached by `Runner.run` and, through `run_sync`, by `Runner.run_sync`) and the streaming
  loop `start_streaming` (run by `run_streamed` in its background task). The run is entered *inside* the
  coroutine, so attach and detach happen in the same task context, and every task the SDK creates for model
  calls, guardrails and tools copies that context.
- the `agent_span` factory the run loops call when an agent starts (and again after each handoff): the span is
  returned inside a transparent proxy whose `start()` / `finish()` also enter / exit the nested run. The run
  loop starts and finishes that span in its own coroutine (the SDK keeps its own current-span context variable
  on exactly these calls), so the OTel context is attached and detached in the same context too. This works
  whether the SDK's tracing is on or off (the factory is called either way).
- `_invoke_function_tool_with_metadata`, the one place the SDK awaits `FunctionTool.on_invoke_tool(ctx, args)`
  (in the task the SDK creates per tool call), and `maybe_invoke_function_tool_failure_error_function`, which
  the `@function_tool` invoker calls when the tool raised and whose answer becomes the tool's output: there
  the current tool call is marked failed with the exception's class.

Each seam is looked up when instrumenting; one a future SDK lacks is logged and skipped (the others still
work). Nothing here changes arguments, results, exceptions or the SDK's own traces.
"""

from __future__ import annotations

import contextvars
import importlib
import json
import logging
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Collection

import wrapt
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor

from agentwatch import semconv as sc
from agentwatch.runtime.api import AgentRun, ToolCall, agent_run, capture_content, tool_call
from agentwatch.runtime.instrumentors._on_import import ImportPatches
from agentwatch.runtime.processor import ensure_processor
from agentwatch.runtime.telemetry import report_internal_error

_log = logging.getLogger("agentwatch")

_UNKNOWN_AGENT = "agent"
_UNKNOWN_TOOL = "unknown_tool"
TIMEOUT_ERROR_TYPE = "ToolTimeoutError"  # the SDK's own exception class for a tool that timed out


# --- per-run and per-tool state (context variables: each run / tool task sees its own) -------------------
@dataclass
class _RunScope:
    """One instrumented run: how many agent spans (agent segments) its loop has started so far."""

    name: str
    segments: int = 0


@dataclass
class _ActiveTool:
    call: ToolCall
    tool: Any
    failed: list[str] = field(default_factory=list)


_CURRENT_RUN: contextvars.ContextVar[_RunScope | None] = contextvars.ContextVar("agentwatch_agents_run",
                                                                                 default=None)
_CURRENT_TOOL: contextvars.ContextVar[_ActiveTool | None] = contextvars.ContextVar("agentwatch_agents_tool",
                                                                                   default=None)


def _agent_name(agent: Any) -> str:
    name = getattr(agent, "name", None)
    return name if isinstance(name, str) and name else _UNKNOWN_AGENT


def _arg(args: tuple, kwargs: dict, index: int, name: str) -> Any:
    if name in kwargs:
        return kwargs[name]
    return args[index] if len(args) > index else None


def _first_agent(starting_agent: Any, run_input: Any, run_state: Any = None) -> Any:
    """The agent a run's loop starts with: a resumed RunState's current agent, else the starting agent."""
    for state in (run_state, run_input):
        if state is None or isinstance(state, (str, list)):
            continue
        current = getattr(state, "_current_agent", None)
        if current is not None:
            return current
    return starting_agent


def _conversation_id(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


# --- runs ----------------------------------------------------------------------------------------------
def _begin_run(name: str, conversation_id: str | None) -> tuple[AgentRun | None, Any]:
    """The run (not entered yet) and the token of its scope in `_CURRENT_RUN`; (None, None) if that failed."""
    try:
        run = agent_run(name, conversation_id=conversation_id)
        return run, _CURRENT_RUN.set(_RunScope(name))
    except Exception:  # noqa: BLE001
        report_internal_error("openai_agents.run.begin")
        return None, None


def _reset_run(token: Any) -> None:
    if token is not None:
        try:
            _CURRENT_RUN.reset(token)
        except Exception:  # noqa: BLE001 - e.g. a token from another context: leave the variable alone
            report_internal_error("openai_agents.run.reset")


async def _run_wrapper(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    """`AgentRunner.run(starting_agent, input, **options)`: the whole (non-streamed) run."""
    try:
        starting_agent = _arg(args, kwargs, 0, "starting_agent")
        name = _agent_name(_first_agent(starting_agent, _arg(args, kwargs, 1, "input")))
        conversation_id = _conversation_id(kwargs.get("conversation_id"))
    except Exception:  # noqa: BLE001
        report_internal_error("openai_agents.run")
        return await wrapped(*args, **kwargs)
    run, token = _begin_run(name, conversation_id)
    if run is None:
        return await wrapped(*args, **kwargs)
    try:
        with run:
            return await wrapped(*args, **kwargs)
    finally:
        _reset_run(token)


async def _streaming_wrapper(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    """`start_streaming(...)`: the loop of `run_streamed`, in the background task the SDK creates for it."""
    try:
        starting_agent = _arg(args, kwargs, 2, "starting_agent")
        run_state = _arg(args, kwargs, 12, "run_state")
        name = _agent_name(_first_agent(starting_agent, None, run_state))
        conversation_id = _conversation_id(_arg(args, kwargs, 10, "conversation_id"))
        streamed_result = _arg(args, kwargs, 1, "streamed_result")
    except Exception:  # noqa: BLE001
        report_internal_error("openai_agents.run_streamed")
        return await wrapped(*args, **kwargs)
    run, token = _begin_run(name, conversation_id)
    if run is None:
        return await wrapped(*args, **kwargs)
    try:
        with run:
            result = await wrapped(*args, **kwargs)
            _fail_if_stream_stored_exception(run, streamed_result)
            return result
    finally:
        _reset_run(token)


def _fail_if_stream_stored_exception(run: AgentRun, streamed_result: Any) -> None:
    """A streamed run can end without raising, its error kept for the consumer (e.g. a guardrail tripwire)."""
    try:
        stored = getattr(streamed_result, "_stored_exception", None)
        if isinstance(stored, BaseException):
            error_type = type(stored).__qualname__
            run.fail(f"streamed run ended with {error_type}", error_type=error_type)
    except Exception:  # noqa: BLE001
        report_internal_error("openai_agents.run_streamed.result")


class _AgentSpanProxy(wrapt.ObjectProxy):
    """The SDK's agent span, unchanged, except that `start()` / `finish()` also enter / exit a nested run for
    every agent after the first of an instrumented run (the first one is the run itself)."""

    def __init__(self, wrapped: Any, name: str):
        super().__init__(wrapped)
        self._self_name = name
        self._self_run: AgentRun | None = None
        self._self_baseline: BaseException | None = None

    def start(self, *args: Any, **kwargs: Any) -> Any:
        result = self.__wrapped__.start(*args, **kwargs)
        self._self_begin()
        return result

    def finish(self, *args: Any, **kwargs: Any) -> Any:
        self._self_end()
        return self.__wrapped__.finish(*args, **kwargs)

    def __enter__(self) -> Any:
        self.__wrapped__.__enter__()
        self._self_begin()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        self._self_end(exc)
        return self.__wrapped__.__exit__(exc_type, exc, tb)

    def _self_begin(self) -> None:
        try:
            if self._self_run is not None:
                return
            scope = _CURRENT_RUN.get()
            if scope is not None:
                scope.segments += 1
                if scope.segments == 1:
                    return  # the run's first agent: its spans go straight under the run
            # An exception being handled around the whole run (the caller's `except:` block) is not ours.
            self._self_baseline = sys.exc_info()[1]
            run = agent_run(self._self_name)
            run.__enter__()
            self._self_run = run
        except Exception:  # noqa: BLE001
            report_internal_error("openai_agents.agent_span.start")

    def _self_end(self, exc: BaseException | None = None) -> None:
        try:
            run, self._self_run = self._self_run, None
            if run is None:
                return
            if exc is None:
                # The run loops finish the agent span in a `finally:`; an exception unwinding through it
                # is visible here, unless it is the one that was already being handled at start.
                current = sys.exc_info()[1]
                if current is not None and current is not self._self_baseline:
                    exc = current
            self._self_baseline = None
            if exc is not None:
                run.__exit__(type(exc), exc, exc.__traceback__)
            else:
                run.__exit__(None, None, None)
        except Exception:  # noqa: BLE001
            report_internal_error("openai_agents.agent_span.finish")


def _agent_span_wrapper(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    span = wrapped(*args, **kwargs)
    try:
        name = kwargs.get("name", args[0] if args else None)
        return _AgentSpanProxy(span, name if isinstance(name, str) and name else _UNKNOWN_AGENT)
    except Exception:  # noqa: BLE001
        report_internal_error("openai_agents.agent_span")
        return span


# --- tools ---------------------------------------------------------------------------------------------
def _tool_arguments(arguments: Any) -> Any:
    """Arguments as an object when they are a JSON string (semconv asks for the object)."""
    if isinstance(arguments, str):
        try:
            return json.loads(arguments)
        except ValueError:
            return arguments
    return arguments


async def _invoke_tool_wrapper(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    """`_invoke_function_tool_with_metadata(function_tool=, context=, arguments=)`: one function-tool call."""
    try:
        function_tool = _arg(args, kwargs, 0, "function_tool")
        context = _arg(args, kwargs, 1, "context")
        name = getattr(function_tool, "name", None)
        name = name if isinstance(name, str) and name else _UNKNOWN_TOOL
        call_id = getattr(context, "tool_call_id", None)
        captured = None
        if capture_content():
            captured = _tool_arguments(_arg(args, kwargs, 2, "arguments"))
        timeout = getattr(function_tool, "timeout_seconds", None)
        call = tool_call(name, call_id=call_id if isinstance(call_id, str) else None, arguments=captured)
        active = _ActiveTool(call, function_tool)
    except Exception:  # noqa: BLE001
        report_internal_error("openai_agents.tool")
        return await wrapped(*args, **kwargs)
    with call:
        token = _CURRENT_TOOL.set(active)
        started = time.monotonic()
        try:
            result = await wrapped(*args, **kwargs)
        finally:
            _CURRENT_TOOL.reset(token)
        _finish_tool(active, result, timeout, time.monotonic() - started)
        return result


def _finish_tool(active: _ActiveTool, result: Any, timeout: Any, elapsed: float) -> None:
    try:
        call = active.call
        if active.failed:
            call.fail(active.failed[0])
        elif isinstance(timeout, (int, float)) and timeout > 0 and elapsed >= timeout:
            call.fail(TIMEOUT_ERROR_TYPE)  # `timeout_behavior="error_as_result"`: a message instead of a raise
        elif getattr(result, "is_sdk_generated_error", False) is True:
            call.fail(sc.ERROR_OTHER)  # the SDK answered the model with an error message we saw no cause for
        call.set_result(getattr(result, "output", result))
    except Exception:  # noqa: BLE001
        report_internal_error("openai_agents.tool.finish")


async def _failure_function_wrapper(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    """The tool raised; the SDK asks its `failure_error_function` for a message for the model instead."""
    try:
        active = _CURRENT_TOOL.get()
        error = kwargs.get("error")
        function_tool = kwargs.get("function_tool")
        if active is not None and isinstance(error, BaseException) and (
                function_tool is None or function_tool is active.tool
                or getattr(function_tool, "name", None) == getattr(active.tool, "name", None)):
            active.failed.append(type(error).__qualname__)
    except Exception:  # noqa: BLE001
        report_internal_error("openai_agents.tool.failure")
    return await wrapped(*args, **kwargs)


# --- the instrumentor ----------------------------------------------------------------------------------
# (module, attribute, wrapper); an attribute "Class.method" patches a method.
_TARGETS: tuple[tuple[str, str, Any], ...] = (
    ("agents.run", "AgentRunner.run", _run_wrapper),
    ("agents.run", "start_streaming", _streaming_wrapper),
    ("agents.run", "agent_span", _agent_span_wrapper),
    ("agents.run_internal.run_loop", "agent_span", _agent_span_wrapper),
    ("agents.run_internal.tool_execution", "_invoke_function_tool_with_metadata", _invoke_tool_wrapper),
    ("agents.tool", "_invoke_function_tool_with_metadata", _invoke_tool_wrapper),
    ("agents.tool", "maybe_invoke_function_tool_failure_error_function", _failure_function_wrapper),
)


class OpenAIAgentsInstrumentor(BaseInstrumentor):
    """Agent runs (with handoffs as nested runs) and function tools of the OpenAI Agents SDK."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("openai-agents >= 0.2",)

    def _instrument(self, **kwargs: Any) -> None:
        patches = self._patches = ImportPatches("agents")  # ModuleNotFoundError when the SDK is absent
        ensure_processor(kwargs.get("tracer_provider"))
        patches.when_imported("agents", _patch_seams)
        patches.start()  # patched when the application imports the SDK, not before

    def _uninstrument(self, **kwargs: Any) -> None:
        self._patches.stop()


def _patch_seams(_agents: Any, patches: ImportPatches) -> None:
    """Runs once `agents` is imported. Every seam's module is imported first: some bind the others'
    functions by name at import time, and each binding is patched where the SDK looks it up."""
    for module_name in dict.fromkeys(module for module, _attr, _wrapper in _TARGETS):
        try:
            importlib.import_module(module_name)
        except ImportError:
            pass
    for module_name, attribute, wrapper in _TARGETS:
        if module_name in sys.modules:
            patches.wrap_now(module_name, attribute, wrapper)
        else:
            _log.info("agentwatch: openai-agents has no %s.%s; that part is not instrumented", module_name, attribute)
