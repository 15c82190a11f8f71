"""The public API for agents that mark their structure: runs (`agent_run`, `@agent`) and tools (`@tool`).

    with agentwatch.agent_run("support-agent", conversation_id=cid, budget={"cost_usd": 0.50}) as run:
        ...
        if not answer:
            run.fail("no answer found", error_type="no_answer")

A run is an `invoke_agent {name}` span; a tool call an `execute_tool {name}` span. The span processor
counts what happens inside them; the run's span gets its totals when it ends. User exceptions pass through
unchanged; agentwatch's own are swallowed.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, TypeVar, overload

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from agentwatch import semconv as sc
from agentwatch.runtime.content import content_json
from agentwatch.runtime.logs import redact
from agentwatch.runtime.processor import ensure_processor
from agentwatch.runtime.runs import Budget, BudgetExceeded, RunState, run_of_span
from agentwatch.runtime.telemetry import SCHEMA_URL, SCOPE, SCOPE_VERSION, get_telemetry, report_internal_error

F = TypeVar("F", bound=Callable[..., Any])


def _tracer() -> trace.Tracer:
    return trace.get_tracer(SCOPE, SCOPE_VERSION, schema_url=SCHEMA_URL)


def _error_type(exc: BaseException) -> str:
    return sc.ERROR_BUDGET_EXCEEDED if isinstance(exc, BudgetExceeded) else type(exc).__qualname__


class AgentRun:
    """One agent run: a context manager (sync and async) around an `invoke_agent` span."""

    def __init__(self, name: str, *, conversation_id: str | None = None, budget: Budget | dict | None = None,
                 agent_id: str | None = None, attributes: dict[str, Any] | None = None):
        self.name = name
        self.budget = Budget.coerce(budget)
        self._attributes: dict[str, Any] = {
            sc.GEN_AI_OPERATION_NAME: sc.OP_INVOKE_AGENT,
            sc.GEN_AI_AGENT_NAME: name,
        }
        if conversation_id is not None:
            self._attributes[sc.GEN_AI_CONVERSATION_ID] = str(conversation_id)
        if agent_id is not None:
            self._attributes[sc.GEN_AI_AGENT_ID] = str(agent_id)
        if attributes:
            self._attributes.update(attributes)
        self.span: trace.Span = trace.INVALID_SPAN
        self._token: object = None
        self._failure: tuple[str, str] | None = None
        self._processor: Any = None

    # -- API
    def fail(self, reason: str, *, error_type: str = sc.ERROR_RUN_FAILED) -> None:
        """Marks the run failed without raising; `error_type` should be a short, low-cardinality code."""
        self._failure = (str(reason), str(error_type))

    @property
    def state(self) -> RunState | None:
        """The run's live totals (inference_calls, tool_calls, cost, ...), while the processor follows it."""
        return run_of_span(self.span)

    # -- context manager
    def __enter__(self) -> "AgentRun":
        try:
            self._processor = ensure_processor()
            self.span = _tracer().start_span(f"{sc.OP_INVOKE_AGENT} {self.name}", kind=SpanKind.INTERNAL,
                                             attributes=self._attributes)
            self._token = otel_context.attach(trace.set_span_in_context(self.span))
            state = self.state
            if state is not None:
                state.budget = self.budget if self.budget is not None else Budget.from_env()
        except Exception:  # noqa: BLE001
            report_internal_error("agent_run.enter")
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self._finish(exc)
        except Exception:  # noqa: BLE001
            report_internal_error("agent_run.exit")

    async def __aenter__(self) -> "AgentRun":
        return self.__enter__()

    async def __aexit__(self, exc_type, exc, tb) -> None:
        self.__exit__(exc_type, exc, tb)

    def _finish(self, exc: BaseException | None) -> None:
        span = self.span
        if self._token is not None:
            otel_context.detach(self._token)
            self._token = None
        if span is trace.INVALID_SPAN:
            return
        state = self.state
        if state is not None and self._processor is not None:
            span.set_attributes(self._processor.run_attributes(state))
        if exc is not None:
            error_type = _error_type(exc)
            span.set_attribute(sc.ERROR_TYPE, error_type)
            span.set_status(Status(StatusCode.ERROR, redact(f"{error_type}: {exc}")))
        elif self._failure is not None:
            reason, error_type = self._failure
            span.set_attribute(sc.ERROR_TYPE, error_type)
            span.set_attribute(sc.AGENTWATCH_RUN_FAILURE_REASON, redact(reason))
            span.set_status(Status(StatusCode.ERROR, redact(reason)))
        span.end()


def agent_run(name: str, *, conversation_id: str | None = None, budget: Budget | dict | None = None,
              agent_id: str | None = None, attributes: dict[str, Any] | None = None) -> AgentRun:
    """A run of the agent `name`: `with agent_run(...) as run:` or `async with agent_run(...) as run:`."""
    return AgentRun(name, conversation_id=conversation_id, budget=budget, agent_id=agent_id, attributes=attributes)


def agent(name: str, *, budget: Budget | dict | None = None) -> Callable[[F], F]:
    """Decorator: each call of the (sync or async) function is one run of agent `name`."""

    def decorate(fn: F) -> F:
        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                async with agent_run(name, budget=budget):
                    return await fn(*args, **kwargs)

            return run_async  # type: ignore[return-value]

        @functools.wraps(fn)
        def run_sync(*args: Any, **kwargs: Any) -> Any:
            with agent_run(name, budget=budget):
                return fn(*args, **kwargs)

        return run_sync  # type: ignore[return-value]

    return decorate


class ToolCall:
    """One tool call: a context manager around an `execute_tool` span. Used by `@tool` and by the framework
    instrumentors (MCP, LangChain, OpenAI Agents), so every tool span has the same shape."""

    def __init__(self, name: str, *, call_id: str | None = None, tool_type: str = sc.TOOL_TYPE_FUNCTION,
                 arguments: Any = None, attributes: dict[str, Any] | None = None):
        self.name = name
        self._attributes: dict[str, Any] = {
            sc.GEN_AI_OPERATION_NAME: sc.OP_EXECUTE_TOOL,
            sc.GEN_AI_TOOL_NAME: name,
            sc.GEN_AI_TOOL_TYPE: tool_type,
        }
        if call_id:
            self._attributes[sc.GEN_AI_TOOL_CALL_ID] = str(call_id)
        if attributes:
            self._attributes.update(attributes)
        self._arguments = arguments
        self.span: trace.Span = trace.INVALID_SPAN
        self._token: object = None
        self._error_type: str | None = None

    def set_result(self, result: Any) -> None:
        """Records the result (content capture only)."""
        try:
            settings = get_telemetry().settings
            if settings.capture_content and self.span is not trace.INVALID_SPAN:
                self.span.set_attribute(sc.GEN_AI_TOOL_CALL_RESULT, content_json(result, settings.content_max_length))
        except Exception:  # noqa: BLE001
            report_internal_error("tool.set_result")

    def fail(self, error_type: str) -> None:
        """Marks the call failed without an exception (e.g. a tool result flagged as an error)."""
        self._error_type = error_type

    def __enter__(self) -> "ToolCall":
        try:
            ensure_processor()
            self.span = _tracer().start_span(f"{sc.OP_EXECUTE_TOOL} {self.name}", kind=SpanKind.INTERNAL,
                                             attributes=self._attributes)
            settings = get_telemetry().settings
            if settings.capture_content and self._arguments is not None:
                self.span.set_attribute(sc.GEN_AI_TOOL_CALL_ARGUMENTS,
                                        content_json(self._arguments, settings.content_max_length))
            self._token = otel_context.attach(trace.set_span_in_context(self.span))
        except Exception:  # noqa: BLE001
            report_internal_error("tool.enter")
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if self._token is not None:
                otel_context.detach(self._token)
                self._token = None
            span = self.span
            if span is trace.INVALID_SPAN:
                return
            error_type = _error_type(exc) if exc is not None else self._error_type
            if error_type is not None:
                span.set_attribute(sc.ERROR_TYPE, error_type)
                span.set_status(Status(StatusCode.ERROR, error_type))
            span.end()
        except Exception:  # noqa: BLE001
            report_internal_error("tool.exit")

    async def __aenter__(self) -> "ToolCall":
        return self.__enter__()

    async def __aexit__(self, exc_type, exc, tb) -> None:
        self.__exit__(exc_type, exc, tb)


def tool_call(name: str, *, call_id: str | None = None, tool_type: str = sc.TOOL_TYPE_FUNCTION, arguments: Any = None,
              attributes: dict[str, Any] | None = None) -> ToolCall:
    return ToolCall(name, call_id=call_id, tool_type=tool_type, arguments=arguments, attributes=attributes)


def _call_arguments(fn: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
    try:
        bound = inspect.signature(fn).bind_partial(*args, **kwargs)
        return dict(bound.arguments)
    except (TypeError, ValueError):
        return {"args": list(args), "kwargs": kwargs}


@overload
def tool(fn: F) -> F: ...
@overload
def tool(*, name: str | None = None) -> Callable[[F], F]: ...


def capture_content() -> bool:
    """Whether content capture is on (tool instrumentors read arguments and results only then)."""
    try:
        return bool(get_telemetry().settings.capture_content)
    except Exception:  # noqa: BLE001
        return False


def tool(fn: Any = None, *, name: str | None = None) -> Any:
    """Decorator for sync and async tools: `@tool` or `@tool(name="lookup_order")`.

    A tool that raises records the error and re-raises the same exception.
    """

    def decorate(func: F) -> F:
        tool_name = name or func.__name__
        capture = lambda: get_telemetry().settings.capture_content  # noqa: E731 - read at call time

        if inspect.iscoroutinefunction(func):
            @functools.wraps(func)
            async def call_async(*args: Any, **kwargs: Any) -> Any:
                arguments = _call_arguments(func, args, kwargs) if capture() else None
                with ToolCall(tool_name, arguments=arguments) as call:
                    result = await func(*args, **kwargs)
                    call.set_result(result)
                    return result

            return call_async  # type: ignore[return-value]

        @functools.wraps(func)
        def call_sync(*args: Any, **kwargs: Any) -> Any:
            arguments = _call_arguments(func, args, kwargs) if capture() else None
            with ToolCall(tool_name, arguments=arguments) as call:
                result = func(*args, **kwargs)
                call.set_result(result)
                return result

        return call_sync  # type: ignore[return-value]

    return decorate(fn) if fn is not None else decorate
