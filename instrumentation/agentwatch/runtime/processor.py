"""The span processor: step counts, tool calls, tokens and cost of every agent run, from any gen_ai.* spans.

It follows each run (an `invoke_agent` span, or optionally a trace's root span) and every span below it.
When an LLM-call span ends it adds the call's tokens and cost to the run and to every enclosing run (a
sub-agent's steps count for its parent too); an LLM-call span inside another LLM-call span (e.g. a
provider SDK's own span under agentwatch's, or two instrumentations of the same client) is counted once, and
so is a tool-call span inside a tool-call span of the same tool (an MCP client's and server's view of one
call).
Spans from other instrumentations work too, including older attribute names (`gen_ai.system`,
`gen_ai.usage.prompt_tokens`). An LLM-call span another instrumentation made (the anthropic SDK's own,
the official or OpenLLMetry instrumentations; agentwatch observes those calls instead of tracing them
twice) is enriched here, inside runs and outside them: its cost (or the unknown marker) goes onto the span
and into `agentwatch.llm.cost` / `agentwatch.pricing.unpriced_calls`, the call gets its log record, and the
gen_ai.client.* points when that instrumentation records none (`foreign.emits_client_metrics`).

When a run ends its `invoke_agent` span gets the totals, and the agent-level metrics and a log record are
emitted. Per-run state is a few counters, freed at run end; runs whose span never ends are evicted after a
TTL (`AGENTWATCH_RUN_TTL_SECONDS`, default 3600) and counted.

Spans created elsewhere cannot be changed through the public API once they end, and the SDK makes
attributes immutable before `_on_ending` runs; for those spans the processor writes through the SDK's
attribute container (`_write_ended`), guarded, and a test pins that behaviour.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import SpanKind, StatusCode

from agentwatch import config
from agentwatch import semconv as sc
from agentwatch.runtime import foreign
from agentwatch.runtime.logs import emit as emit_log
from agentwatch.pricing import TokenUsage
from agentwatch.runtime.runs import INFERENCE, NESTED_INFERENCE, OTHER, REGISTRY, RUN, TOOL, RunState, Tracked
from agentwatch.runtime.telemetry import CallFacts, LabelLimiter, Telemetry, get_telemetry, report_internal_error

_log = logging.getLogger("agentwatch")

_SWEEP_EVERY = 4096


def operation_of(attributes: Any) -> str | None:
    """gen_ai.operation.name, or the operation an older instrumentation's `llm.request.type` implies."""
    op = attributes.get(sc.GEN_AI_OPERATION_NAME)
    if op is None:
        op = sc.LEGACY_LLM_REQUEST_TYPES.get(attributes.get(sc.LEGACY_LLM_REQUEST_TYPE))
    return op


def _int_attr(attributes: Any, *names: str) -> int | None:
    for name in names:
        value = attributes.get(name)
        if type(value) is int and value >= 0:
            return value
    return None


def usage_from_attributes(attributes: Any) -> TokenUsage | None:
    """Token usage from current or legacy attribute names; None when not reported."""
    get = attributes.get
    input_tokens = get(sc.GEN_AI_USAGE_INPUT_TOKENS)
    if input_tokens is None:
        input_tokens = get(sc.LEGACY_USAGE_PROMPT_TOKENS)
    output_tokens = get(sc.GEN_AI_USAGE_OUTPUT_TOKENS)
    if output_tokens is None:
        output_tokens = get(sc.LEGACY_USAGE_COMPLETION_TOKENS)
    if type(input_tokens) is not int or type(output_tokens) is not int or input_tokens < 0 or output_tokens < 0:
        return None
    return TokenUsage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_tokens=_int_attr(attributes, sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
                                    sc.LEGACY_USAGE_CACHE_READ_TOKENS) or 0,
        cache_write_tokens=_int_attr(attributes, sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS,
                                     *sc.LEGACY_USAGE_CACHE_WRITE_TOKENS) or 0,
        reasoning_tokens=_int_attr(attributes, sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
                                   *sc.LEGACY_USAGE_REASONING_TOKENS) or 0,
    )


def _attributes_of(span: Any) -> Any:
    """The span's attribute dict for reading: the SDK container's plain dict when there is one (its
    read-only view raises and catches KeyError on every missing key, ten times slower)."""
    container = getattr(span, "_attributes", None)
    plain = getattr(container, "_dict", None)
    return plain if isinstance(plain, dict) else span.attributes


def _write_ended(span: Span, attributes: dict[str, Any]) -> None:
    """Sets attributes on a span in `_on_ending` (the SDK has already frozen its attribute container).

    Our values are plain numbers and booleans, so when the span has room under its attribute limit they go
    straight into the container's dict; otherwise through the container, which applies the limit."""
    container = getattr(span, "_attributes", None)
    if container is None or not hasattr(container, "_immutable"):
        return
    plain = getattr(container, "_dict", None)
    maxlen = getattr(container, "maxlen", None)
    if isinstance(plain, dict) and (maxlen is None or len(plain) + len(attributes) <= maxlen):
        plain.update(attributes)
        return
    container._immutable = False
    try:
        for key, value in attributes.items():
            container[key] = value
    finally:
        container._immutable = True


def _failed(span: ReadableSpan | Span) -> str | None:
    """The span's error.type, `_OTHER` when it only has an ERROR status, None when it succeeded."""
    error_type = span.attributes.get(sc.ERROR_TYPE)
    if error_type:
        return str(error_type)
    if span.status.status_code is StatusCode.ERROR:
        return sc.ERROR_OTHER
    return None


class AgentSpanProcessor(SpanProcessor):
    """Follows agent runs through their spans; see the module docstring."""

    def __init__(self, telemetry: Telemetry | None = None, *, root_span_runs: str | None = None,
                 run_ttl_seconds: float | None = None):
        self._telemetry = telemetry
        self.root_span_runs = root_span_runs if root_span_runs is not None else config.root_span_mode()
        self.run_ttl = run_ttl_seconds if run_ttl_seconds is not None else config.run_ttl_seconds()
        self._instruments: Any = None
        self._starts = 0
        self.evicted_runs = 0

    # --- lazily built: the global providers may be set after the processor is created
    def telemetry(self) -> Telemetry:
        if self._telemetry is None:
            self._telemetry = get_telemetry()
        return self._telemetry

    def instruments(self) -> "_AgentInstruments":
        if self._instruments is None:
            self._instruments = _AgentInstruments(self.telemetry())
        return self._instruments

    # --- SpanProcessor
    def on_start(self, span: Span, parent_context: Any = None) -> None:
        try:
            self._start(span, parent_context)
        except Exception:  # noqa: BLE001
            report_internal_error("processor.on_start")

    def _start(self, span: Span, parent_context: Any = None) -> None:
        self._starts += 1
        if self._starts % _SWEEP_EVERY == 0:
            self._sweep()
        parent = span.parent
        parent_tracked = REGISTRY.get(parent.span_id) if parent is not None else None
        attributes = _attributes_of(span)
        op = operation_of(attributes)
        span_id = span.context.span_id
        if span_id in REGISTRY:
            return  # another AgentSpanProcessor on this provider follows it already
        if op == sc.OP_INVOKE_AGENT:
            name = attributes.get(sc.GEN_AI_AGENT_NAME) or span.name
            run = RunState(str(name), span_id, parent_tracked.run if parent_tracked is not None else None)
            REGISTRY[span_id] = Tracked(run, RUN, False, owner=self)
        elif parent_tracked is not None:
            kind = INFERENCE if op in sc.INFERENCE_OPERATIONS else TOOL if op == sc.OP_EXECUTE_TOOL else OTHER
            inside = parent_tracked.inside_inference
            tool = parent_tracked.tool
            outer = (parent_tracked if parent_tracked.kind == INFERENCE else parent_tracked.outer) if inside else None
            if kind == INFERENCE and inside:
                kind = NESTED_INFERENCE  # an LLM-call span inside another: the outer one counts
            elif parent_tracked.run is None:
                return  # below an LLM call outside runs: only a nested LLM-call span matters
            elif kind == TOOL:
                name = attributes.get(sc.GEN_AI_TOOL_NAME)
                if name is not None and name == tool:
                    kind = OTHER  # the same tool call seen twice (e.g. MCP client and in-process server)
                tool = name
            REGISTRY[span_id] = Tracked(parent_tracked.run, kind, inside or kind == INFERENCE, tool, self, outer,
                                        kind == INFERENCE and foreign.scope_of(span) != foreign.SCOPE)
        elif op in sc.INFERENCE_OPERATIONS:
            if foreign.scope_of(span) != foreign.SCOPE and not self._inside_inference(span, parent_context):
                # another instrumentation's LLM call outside runs: enriched when it ends
                REGISTRY[span_id] = Tracked(None, INFERENCE, True, owner=self, foreign=True)
        elif (parent is None or parent.is_remote) and self._is_root_run(span, op):
            run = RunState(self._root_run_name(span), span_id, from_root_span=True)
            REGISTRY[span_id] = Tracked(run, RUN, False, owner=self)

    @staticmethod
    def _inside_inference(span: Span, parent_context: Any) -> bool:
        """Whether the span's (in-process) parent is a live LLM-call span, which counts for the call."""
        parent = trace.get_current_span(parent_context)
        if parent.get_span_context().span_id != getattr(span.parent, "span_id", None):
            return False
        return foreign.current_inference_span(parent) is not None

    def _is_root_run(self, span: Span, op: str | None) -> bool:
        if self.root_span_runs == "off" or op in sc.INFERENCE_OPERATIONS or op == sc.OP_EXECUTE_TOOL:
            return False
        return self.root_span_runs == "all" or span.kind is SpanKind.SERVER

    @staticmethod
    def _root_run_name(span: Span) -> str:
        name = span.attributes.get(sc.GEN_AI_AGENT_NAME) or span.resource.attributes.get("service.name")
        return str(name or span.name)

    def _on_ending(self, span: Span) -> None:
        try:
            tracked = REGISTRY.get(span.context.span_id)
            if tracked is None or tracked.owner is not self:
                return
            if tracked.kind == RUN:
                if sc.GEN_AI_INVOKE_AGENT_INFERENCE_CALLS_ATTR not in span.attributes:
                    _write_ended(span, self.run_attributes(tracked.run))
            elif tracked.kind == INFERENCE:
                self._count_inference(span, tracked)
            elif tracked.kind == NESTED_INFERENCE and tracked.outer is not None:
                cost = _attributes_of(span).get(sc.AGENTWATCH_COST_USD)
                if isinstance(cost, (int, float)):
                    tracked.outer.inner_cost = float(cost)
            elif tracked.kind == TOOL and tracked.run is not None:
                tracked.run.add_tool(_failed(span) is not None)
        except Exception:  # noqa: BLE001
            report_internal_error("processor._on_ending")

    def run_attributes(self, run: RunState) -> dict[str, Any]:
        """The totals for a run's span (the public API sets them itself before ending its span)."""
        attrs = run.attributes()
        attrs.setdefault(sc.GEN_AI_AGENT_NAME, run.name)
        return attrs

    def _count_inference(self, span: Span, tracked: Tracked) -> None:
        run = tracked.run
        attributes = _attributes_of(span)
        usage = usage_from_attributes(attributes)
        cost = attributes.get(sc.AGENTWATCH_COST_USD)
        if cost is None and tracked.inner_cost is not None:
            cost = tracked.inner_cost  # agentwatch's own span inside priced (and metered) this call already
        elif tracked.foreign and cost is None and not attributes.get(sc.AGENTWATCH_COST_UNKNOWN):
            cost = self._enrich_foreign(span, attributes, usage)
        if run is None:
            return
        run.add_inference(usage, cost if isinstance(cost, (int, float)) else None)
        for warned_run, limit, used, allowed in run.new_budget_warnings():
            self._budget_warning(span, warned_run, limit, used, allowed)

    def _enrich_foreign(self, span: Span, attributes: Any, usage: TokenUsage | None) -> float | None:
        """An LLM-call span another instrumentation made: its cost (on the span and in the cost counters),
        its log record, and the gen_ai.client.* points when that instrumentation records none."""
        tel = self.telemetry()
        provider = str(attributes.get(sc.GEN_AI_PROVIDER_NAME) or attributes.get(sc.LEGACY_GEN_AI_SYSTEM) or "")
        response_model = attributes.get(sc.GEN_AI_RESPONSE_MODEL)
        port = attributes.get(sc.SERVER_PORT)
        facts = CallFacts(
            str(operation_of(attributes)), provider, str(attributes.get(sc.GEN_AI_REQUEST_MODEL) or "unknown"),
            str(response_model) if response_model else None, attributes.get(sc.SERVER_ADDRESS) or None,
            port if type(port) is int else None, attributes.get(sc.GEN_AI_RESPONSE_ID),
            attributes.get(sc.GEN_AI_RESPONSE_FINISH_REASONS) or (), span.start_time,
        )
        cost = None
        cost_unknown = False
        if usage is None:
            _write_ended(span, {sc.AGENTWATCH_USAGE_UNAVAILABLE: True})
        else:
            cost = tel.price(provider, facts.request_model, facts.response_model, usage)
            if cost is not None:
                _write_ended(span, {sc.AGENTWATCH_COST_USD: cost})
            else:
                cost_unknown = True
                _write_ended(span, {sc.AGENTWATCH_COST_UNKNOWN: True})
        elapsed = ((span.end_time or 0) - (span.start_time or 0)) / 1e9
        error_type = _failed(span)
        ttfc = attributes.get(sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK)
        tel.record_call(facts, elapsed=elapsed, time_to_first_chunk=ttfc if isinstance(ttfc, (int, float)) else None,
                        usage=usage, cost=cost, cost_unknown=cost_unknown, error_type=error_type,
                        client_metrics=not foreign.emits_client_metrics(foreign.scope_of(span)))
        tel.log_call(facts, span, elapsed=elapsed, usage=usage, cost=cost, cost_unknown=cost_unknown, error=None,
                     error_type=error_type, stream_outcome=attributes.get(sc.AGENTWATCH_STREAM_OUTCOME))
        return cost

    def on_end(self, span: ReadableSpan) -> None:
        try:
            span_id = span.context.span_id
            tracked = REGISTRY.get(span_id)
            if tracked is None or tracked.owner is not self:
                return
            del REGISTRY[span_id]
            if tracked.kind == RUN:
                self._run_ended(span, tracked.run)
            elif tracked.kind == TOOL:
                self._tool_ended(span, tracked.run)
        except Exception:  # noqa: BLE001
            report_internal_error("processor.on_end")

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

    # --- run and tool ends
    def _run_ended(self, span: ReadableSpan, run: RunState) -> None:
        inst = self.instruments()
        error_type = _failed(span)
        agent = inst.agent_label(run.name)
        attrs = {sc.GEN_AI_AGENT_NAME: agent}
        duration_attrs = dict(attrs)
        if error_type is not None:
            duration_attrs[sc.ERROR_TYPE] = inst.error_label(error_type)
        duration = ((span.end_time or 0) - (span.start_time or 0)) / 1e9
        inst.duration.record(max(duration, 0.0), duration_attrs)
        inst.inference_calls.record(run.inference_calls, attrs)
        inst.tool_calls.record(run.tool_calls, attrs)
        if run.usage_unavailable_calls == 0:
            inst.tokens.record(run.total_tokens, attrs)
        if run.cost_known:
            inst.cost.record(run.cost, attrs)
        fields: dict[str, Any] = {
            "event.outcome": "failure" if error_type else "success",
            "event.duration": int(duration * 1e9),
            sc.GEN_AI_AGENT_NAME: run.name,
            **run.attributes(),
        }
        if error_type is not None:
            fields[sc.ERROR_TYPE] = error_type
            reason = span.attributes.get(sc.AGENTWATCH_RUN_FAILURE_REASON)
            if reason:
                fields[sc.AGENTWATCH_RUN_FAILURE_REASON] = reason
        cost = f"${run.cost:.4f}" if run.cost_known else "cost unknown"
        message = (f"invoke_agent {run.name} {error_type or 'ok'}: {run.inference_calls} LLM calls, "
                   f"{run.tool_calls} tool calls, {run.total_tokens} tokens, {cost}")
        self._log(sc.LOG_EVENT_AGENT_RUN, message, fields, error_type is not None, span)

    def _tool_ended(self, span: ReadableSpan, run: RunState) -> None:
        inst = self.instruments()
        error_type = _failed(span)
        tool = str(span.attributes.get(sc.GEN_AI_TOOL_NAME) or span.name)
        attrs = {sc.GEN_AI_AGENT_NAME: inst.agent_label(run.name), sc.GEN_AI_TOOL_NAME: inst.tool_label(tool)}
        if error_type is not None:
            attrs[sc.ERROR_TYPE] = inst.error_label(error_type)
        duration = ((span.end_time or 0) - (span.start_time or 0)) / 1e9
        inst.tool_duration.record(max(duration, 0.0), attrs)
        fields: dict[str, Any] = {
            "event.outcome": "failure" if error_type else "success",
            "event.duration": int(duration * 1e9),
            sc.GEN_AI_AGENT_NAME: run.name,
            sc.GEN_AI_TOOL_NAME: tool,
        }
        for key in (sc.GEN_AI_TOOL_CALL_ID, sc.GEN_AI_TOOL_CALL_ARGUMENTS, sc.GEN_AI_TOOL_CALL_RESULT):
            value = span.attributes.get(key)
            if value is not None:
                fields[key] = value
        if error_type is not None:
            fields[sc.ERROR_TYPE] = error_type
        message = f"execute_tool {tool} {error_type or 'ok'} in {duration * 1000:.0f} ms"
        self._log(sc.LOG_EVENT_TOOL_CALL, message, fields, error_type is not None, span)

    def _budget_warning(self, span: Span, run: RunState, limit: str, used: float, allowed: float) -> None:
        fields = {sc.GEN_AI_AGENT_NAME: run.name, "agentwatch.budget.limit": limit,
                  "agentwatch.budget.used": used, "agentwatch.budget.allowed": allowed}
        message = f"agent run {run.name} used {used:g} of its {limit} budget {allowed:g}"
        self._log("agentwatch.budget.warning", message, fields, False, span, warning=True)

    def _log(self, event: str, message: str, fields: dict[str, Any], failed: bool, span: Any,
             warning: bool = False) -> None:
        tel = self.telemetry()
        ctx = span.context
        emit_log(
            tel.otel_logger, tel.log_sink, event=event, message=message, fields=fields, failed=failed,
            context=trace.set_span_in_context(trace.NonRecordingSpan(ctx)), trace_id=ctx.trace_id,
            span_id=ctx.span_id, service_name=tel.service_name() if tel.log_sink is not None else None,
            warning=warning, start_ns=getattr(span, "start_time", None),
        )

    # --- bounded memory
    def _sweep(self) -> None:
        """Forget spans (and so runs) older than the TTL: their span never ended."""
        cutoff = time.monotonic() - self.run_ttl
        stale = [span_id for span_id, tracked in list(REGISTRY.items()) if tracked.started < cutoff]
        for span_id in stale:
            tracked = REGISTRY.pop(span_id, None)
            if tracked is not None and tracked.kind == RUN:
                self.evicted_runs += 1
                self.instruments().evicted.add(1)

    def sweep_now(self) -> None:
        self._sweep()


class _AgentInstruments:
    """The agent-level instruments; bucket boundaries include every threshold value."""

    def __init__(self, tel: Telemetry):
        from agentwatch import thresholds  # the table is read on the first run, not at start-up

        table = thresholds.current()
        meter = tel.meter
        self.duration = meter.create_histogram(
            sc.METRIC_INVOKE_AGENT_DURATION, unit=sc.UNIT_SECONDS, description="Duration of agent runs.",
            explicit_bucket_boundaries_advisory=list(thresholds.with_boundaries(
                sc.INVOKE_AGENT_DURATION_BUCKETS, table["p99_latency"].value)))
        self.inference_calls = meter.create_histogram(
            sc.METRIC_INVOKE_AGENT_INFERENCE_CALLS, unit=sc.UNIT_INFERENCE_CALL,
            description="LLM calls (steps) per agent run.",
            explicit_bucket_boundaries_advisory=list(thresholds.with_boundaries(
                sc.INFERENCE_CALLS_BUCKETS, table["steps_per_run"].value)))
        self.tool_calls = meter.create_histogram(
            sc.METRIC_INVOKE_AGENT_TOOL_CALLS, unit=sc.UNIT_TOOL_CALL, description="Tool calls per agent run.",
            explicit_bucket_boundaries_advisory=list(sc.TOOL_CALLS_BUCKETS))
        self.tool_duration = meter.create_histogram(
            sc.METRIC_EXECUTE_TOOL_DURATION, unit=sc.UNIT_SECONDS, description="Duration of tool calls.",
            explicit_bucket_boundaries_advisory=list(sc.EXECUTE_TOOL_DURATION_BUCKETS))
        self.cost = meter.create_histogram(
            sc.METRIC_AGENT_COST, unit=sc.UNIT_USD, description="Cost of agent runs in USD (runs with a known cost).",
            explicit_bucket_boundaries_advisory=list(thresholds.with_boundaries(
                sc.AGENT_COST_BUCKETS, table["cost_per_run"].value)))
        self.tokens = meter.create_histogram(
            sc.METRIC_AGENT_TOKEN_USAGE, unit=sc.UNIT_TOKEN, description="Tokens (input + output) per agent run.",
            explicit_bucket_boundaries_advisory=list(thresholds.with_boundaries(
                sc.AGENT_TOKEN_USAGE_BUCKETS, table["tokens_per_run"].value)))
        self.evicted = meter.create_counter(
            sc.METRIC_EVICTED_RUNS, unit=sc.UNIT_RUN,
            description="Runs forgotten because their span never ended within the TTL.")
        limit = tel.settings.model_label_limit
        self.agent_label = LabelLimiter(limit)
        self.tool_label = LabelLimiter(limit)
        self.error_label = LabelLimiter(50)


def ensure_processor(tracer_provider: Any = None) -> AgentSpanProcessor | None:
    """Adds one AgentSpanProcessor to an SDK tracer provider (the global one by default), once."""
    provider = tracer_provider or trace.get_tracer_provider()
    add = getattr(provider, "add_span_processor", None)
    if add is None:
        return None
    existing = getattr(provider, "_agentwatch_processor", None)
    if existing is not None:
        return existing
    processor = AgentSpanProcessor()
    add(processor)
    try:
        provider._agentwatch_processor = processor
    except AttributeError:
        pass
    return processor
