"""The demo's tables come from the JSON log records the instrumentation wrote, never from the agents' own
counting: per agent and model, LLM calls, errors, tokens, cost and latency; per agent, runs and tool calls."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

from agentwatch import semconv as sc
from agentwatch.tooling.demo.results import AgentSummary, ModelSummary
from agentwatch.tooling.verdicts.measure import nearest_rank

_EVENT_DURATION = "event.duration"  # ECS: nanoseconds
_EVENT_OUTCOME = "event.outcome"
_EVENT_ACTION = "event.action"
_TRACE_ID = "trace.id"


def _percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile (an observed value, no interpolation); 0.0 for no values."""
    return nearest_rank(sorted_values, pct) if sorted_values else 0.0


def read_records(path: Path) -> list[dict[str, Any]]:
    """The JSON lines of one log file; a torn or foreign line is skipped, not fatal."""
    records = []
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict):
                    records.append(record)
    except FileNotFoundError:
        pass
    return records


def summarize_logs(agent: str, records: Iterable[dict[str, Any]]) -> tuple[list[ModelSummary], AgentSummary]:
    """Per-model LLM-call statistics of one agent from its `gen_ai.client.inference` log records."""
    by_model: dict[str, ModelSummary] = {}
    durations: dict[str, list[float]] = {}
    summary = AgentSummary(name=agent, service_name=f"demo-{agent}")
    traces: set[str] = set()
    for record in records:
        summary.records += 1
        trace_id = record.get(_TRACE_ID)
        if isinstance(trace_id, str) and len(trace_id) == 32 and trace_id.strip("0"):
            summary.records_with_trace_id += 1
            traces.add(trace_id)
        if record.get(_EVENT_ACTION) != sc.LOG_EVENT_LLM_CALL:
            continue
        model = str(record.get(sc.GEN_AI_REQUEST_MODEL) or "?")
        stats = by_model.get(model)
        if stats is None:
            stats = by_model[model] = ModelSummary(agent, model, str(record.get(sc.GEN_AI_PROVIDER_NAME) or "?"))
            durations[model] = []
        stats.calls += 1
        failed = record.get(_EVENT_OUTCOME) == "failure" or sc.ERROR_TYPE in record
        if failed:
            stats.errors += 1
            kind = str(record.get(sc.ERROR_TYPE) or "error")
            stats.error_types[kind] = stats.error_types.get(kind, 0) + 1
        stats.input_tokens += int(record.get(sc.GEN_AI_USAGE_INPUT_TOKENS) or 0)
        stats.output_tokens += int(record.get(sc.GEN_AI_USAGE_OUTPUT_TOKENS) or 0)
        cost = record.get(sc.AGENTWATCH_COST_USD)
        if isinstance(cost, (int, float)):
            stats.cost_usd += float(cost)
        elif not failed:  # a failed call has no usage and costs nothing; a successful one must be priced
            stats.unpriced_calls += 1
        duration = record.get(_EVENT_DURATION)
        if isinstance(duration, (int, float)):
            durations[model].append(duration / 1e6)
    for model, stats in by_model.items():
        values = sorted(durations[model])
        stats.p50_ms = _percentile(values, 50)
        stats.p99_ms = _percentile(values, 99)
        summary.calls += stats.calls
        summary.errors += stats.errors
        summary.input_tokens += stats.input_tokens
        summary.output_tokens += stats.output_tokens
        summary.cost_usd += stats.cost_usd
        summary.unpriced_calls += stats.unpriced_calls
    summary.trace_ids = len(traces)
    return list(by_model.values()), summary


def add_run_totals(summary: AgentSummary, records: list[dict[str, Any]]) -> None:
    """Runs, failed runs, tool calls and tool errors of one agent, from its run and tool records."""
    for record in records:
        action = record.get(_EVENT_ACTION)
        failed = record.get(_EVENT_OUTCOME) == "failure" or sc.ERROR_TYPE in record
        if action == sc.LOG_EVENT_AGENT_RUN:
            summary.runs += 1
            summary.failed_runs += failed
        elif action == sc.LOG_EVENT_TOOL_CALL:
            summary.tool_calls += 1
            summary.tool_errors += failed
