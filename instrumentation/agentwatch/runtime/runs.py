"""Per-run state: the totals of one agent run, its budget, and the registry that maps live spans to runs.

The span processor fills it in; the LLM-client wrappers read it to enforce a run's budget before a request
is sent. State is small (a few counters per run, one entry per live span) and freed when spans end.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Iterator

from opentelemetry import trace

from agentwatch import config
from agentwatch import semconv as sc
from agentwatch.pricing import TokenUsage


@dataclass(frozen=True)
class Budget:
    """Limits of one run; None means no limit. Reached (>=) limits stop the next LLM call."""

    cost_usd: float | None = None
    tokens: int | None = None
    inference_calls: int | None = None
    warn_fraction: float = 0.8

    def is_empty(self) -> bool:
        return self.cost_usd is None and self.tokens is None and self.inference_calls is None

    @classmethod
    def from_env(cls) -> "Budget | None":
        """Default limits from the AGENTWATCH_RUN_MAX_* variables (see `config.run_budget_limits`)."""
        budget = cls(**config.run_budget_limits())
        return None if budget.is_empty() else budget

    @classmethod
    def coerce(cls, value: "Budget | dict | None") -> "Budget | None":
        if value is None or isinstance(value, Budget):
            return value
        if isinstance(value, dict):
            return cls(**value)
        raise TypeError(f"budget must be an agentwatch.Budget or a dict, not {type(value).__name__}")


class BudgetExceeded(RuntimeError):
    """Raised by an LLM call, before its request is sent, when its run has used up a budget limit."""

    def __init__(self, run_name: str, limit: str, used: float, allowed: float):
        self.run_name = run_name
        self.limit = limit
        self.used = used
        self.allowed = allowed
        super().__init__(f"agent run {run_name!r} reached its {limit} budget: {used:g} of {allowed:g}")


class RunState:
    """Totals of one run. LLM calls and tool calls count for the run they are in and for every enclosing
    run (a sub-agent's steps and cost are part of its parent's), so a parent's cost is the exact sum of all
    LLM calls below it."""

    __slots__ = (
        "name", "span_id", "parent", "started", "budget", "inference_calls", "tool_calls", "tool_errors",
        "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens", "cost",
        "unpriced_calls", "usage_unavailable_calls", "warned", "lock", "from_root_span",
    )

    def __init__(self, name: str, span_id: int, parent: "RunState | None" = None, *, from_root_span: bool = False):
        self.name = name
        self.span_id = span_id
        self.parent = parent
        self.started = time.monotonic()
        self.budget: Budget | None = None
        self.inference_calls = 0
        self.tool_calls = 0
        self.tool_errors = 0
        self.input_tokens = 0
        self.output_tokens = 0
        self.cache_read_tokens = 0
        self.cache_write_tokens = 0
        self.reasoning_tokens = 0
        self.cost = 0.0
        self.unpriced_calls = 0
        self.usage_unavailable_calls = 0
        self.warned: set[str] = set()
        self.lock = threading.Lock()
        self.from_root_span = from_root_span

    def chain(self) -> Iterator["RunState"]:
        run: RunState | None = self
        while run is not None:
            yield run
            run = run.parent

    def add_inference(self, usage: TokenUsage | None, cost: float | None) -> None:
        run: RunState | None = self
        while run is not None:
            with run.lock:
                run.inference_calls += 1
                if usage is None:
                    run.usage_unavailable_calls += 1
                else:
                    run.input_tokens += usage.input_tokens
                    run.output_tokens += usage.output_tokens
                    run.cache_read_tokens += usage.cache_read_tokens
                    run.cache_write_tokens += usage.cache_write_tokens
                    run.reasoning_tokens += usage.reasoning_tokens
                    if cost is None:
                        run.unpriced_calls += 1
                    else:
                        run.cost += cost
            run = run.parent

    def add_tool(self, failed: bool) -> None:
        for run in self.chain():
            with run.lock:
                run.tool_calls += 1
                if failed:
                    run.tool_errors += 1

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def cost_known(self) -> bool:
        return self.unpriced_calls == 0 and self.usage_unavailable_calls == 0

    def usage_of(self, limit: str) -> tuple[float, float | None]:
        budget = self.budget
        if budget is None:
            return 0.0, None
        if limit == "cost_usd":
            return self.cost, budget.cost_usd
        if limit == "tokens":
            return float(self.total_tokens), budget.tokens
        return float(self.inference_calls), budget.inference_calls

    def check_budget(self) -> None:
        for run in self.chain():
            for limit in ("cost_usd", "tokens", "inference_calls"):
                used, allowed = run.usage_of(limit)
                if allowed is not None and used >= allowed:
                    raise BudgetExceeded(run.name, limit, used, allowed)

    def new_budget_warnings(self) -> list[tuple["RunState", str, float, float]]:
        """Limits that crossed the warning fraction since the last call (each reported once per run)."""
        out: list[tuple[RunState, str, float, float]] = []
        if all(run.budget is None for run in self.chain()):
            return out
        for run in self.chain():
            if run.budget is None:
                continue
            for limit in ("cost_usd", "tokens", "inference_calls"):
                used, allowed = run.usage_of(limit)
                if allowed is not None and limit not in run.warned and used >= allowed * run.budget.warn_fraction:
                    run.warned.add(limit)
                    out.append((run, limit, used, allowed))
        return out

    def attributes(self) -> dict[str, Any]:
        """The totals the run's invoke_agent span carries."""
        attrs: dict[str, Any] = {
            sc.GEN_AI_INVOKE_AGENT_INFERENCE_CALLS_ATTR: self.inference_calls,
            sc.GEN_AI_INVOKE_AGENT_TOOL_CALLS_ATTR: self.tool_calls,
            sc.AGENTWATCH_AGENT_TOOL_ERRORS: self.tool_errors,
            sc.GEN_AI_USAGE_INPUT_TOKENS: self.input_tokens,
            sc.GEN_AI_USAGE_OUTPUT_TOKENS: self.output_tokens,
        }
        if self.cache_read_tokens:
            attrs[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = self.cache_read_tokens
        if self.cache_write_tokens:
            attrs[sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS] = self.cache_write_tokens
        if self.reasoning_tokens:
            attrs[sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = self.reasoning_tokens
        if self.cost_known:
            attrs[sc.AGENTWATCH_COST_USD] = self.cost
        else:
            # the known part is still exported, flagged as incomplete
            attrs[sc.AGENTWATCH_COST_USD] = self.cost
            attrs[sc.AGENTWATCH_COST_UNKNOWN] = True
            if self.unpriced_calls:
                attrs[sc.AGENTWATCH_RUN_UNPRICED_CALLS] = self.unpriced_calls
            if self.usage_unavailable_calls:
                attrs[sc.AGENTWATCH_RUN_USAGE_UNAVAILABLE_CALLS] = self.usage_unavailable_calls
        if self.from_root_span:
            attrs[sc.AGENTWATCH_RUN_FROM_ROOT_SPAN] = True
        return attrs


class Kind(IntEnum):
    """What a tracked span is to its run. An IntEnum: the processor compares kinds on every span end, and an
    IntEnum compares as fast as the int it is."""

    RUN = 0
    INFERENCE = 1
    TOOL = 2
    OTHER = 3
    NESTED_INFERENCE = 4  # an LLM-call span inside another: counted once, by the outer one


RUN, INFERENCE, TOOL, OTHER, NESTED_INFERENCE = Kind.RUN, Kind.INFERENCE, Kind.TOOL, Kind.OTHER, Kind.NESTED_INFERENCE


class Tracked:
    """A live span the processor follows: its run, whether an LLM-call span encloses it, and the name of the
    innermost tool call around it (to recognise the same tool call seen twice, e.g. MCP client and server)."""

    __slots__ = ("run", "kind", "inside_inference", "tool", "started", "owner", "outer", "inner_cost", "foreign")

    def __init__(self, run: RunState | None, kind: Kind, inside_inference: bool, tool: str | None = None,
                 owner: object = None, outer: "Tracked | None" = None, foreign: bool = False):
        self.foreign = foreign  # an LLM-call span another instrumentation made: the processor enriches it
        self.owner = owner  # the processor that follows this span (two on one provider must not both count)
        self.outer = outer  # for a span inside an LLM-call span: that (counted) span's entry
        self.inner_cost: float | None = None  # a nested LLM-call span's cost, for its outer span
        self.run = run
        self.kind = kind
        self.inside_inference = inside_inference
        self.tool = tool
        self.started = time.monotonic()

# span id -> Tracked, for every live span inside a run (shared by all processors of the process)
REGISTRY: dict[int, Tracked] = {}


def run_of_span(span: Any) -> RunState | None:
    """The run a live span belongs to (None outside runs, e.g. an LLM call the processor only enriches)."""
    tracked = REGISTRY.get(span.get_span_context().span_id)
    return tracked.run if tracked is not None else None


def current_run() -> RunState | None:
    """The innermost run around the current span, if a processor follows it."""
    return run_of_span(trace.get_current_span())


def check_current_budget() -> None:
    """Raises BudgetExceeded when the current run (or an enclosing one) has used up a limit."""
    run = current_run()
    if run is not None:
        run.check_budget()
