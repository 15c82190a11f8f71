"""The calculation: the threshold table from JSON log records (exact) or from Prometheus (the alerts' PromQL)."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any, Iterable, Sequence

from agentwatch import semconv as sc
from agentwatch.thresholds import SIGNALS, Thresholds
from agentwatch.tooling import prometheus
from agentwatch.tooling.generate import promql
from agentwatch.tooling.verdicts.report import LABELS, Report, Verdict, worst_key

_EVENT_ACTION = "event.action"
_EVENT_OUTCOME = "event.outcome"
_EVENT_DURATION = "event.duration"  # ECS: nanoseconds


def nearest_rank(sorted_values: list[float], pct: float) -> float:
    """The nearest-rank percentile of non-empty sorted values: an observed value, no interpolation."""
    rank = max(1, math.ceil(pct / 100.0 * len(sorted_values)))
    return sorted_values[rank - 1]


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _number(record: dict[str, Any], key: str) -> float | None:
    value = record.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def from_records(records_by_agent: dict[str, Iterable[dict[str, Any]]], table: Thresholds,
                 source: str = "JSON log records") -> Report:
    """The table from each agent's JSON log records (run and tool records; other records are ignored)."""
    verdicts: list[Verdict] = []
    for agent, records in records_by_agent.items():
        runs: list[dict[str, Any]] = []
        tools: dict[str, list[bool]] = defaultdict(list)  # tool -> failed?
        for record in records:
            action = record.get(_EVENT_ACTION)
            if action == sc.LOG_EVENT_AGENT_RUN:
                runs.append(record)
            elif action == sc.LOG_EVENT_TOOL_CALL:
                tool = str(record.get(sc.GEN_AI_TOOL_NAME) or "?")
                tools[tool].append(record.get(_EVENT_OUTCOME) == "failure" or sc.ERROR_TYPE in record)
        durations = sorted(d / 1e9 for d in (_number(r, _EVENT_DURATION) for r in runs) if d is not None)
        steps = [s for s in (_number(r, sc.GEN_AI_INVOKE_AGENT_INFERENCE_CALLS_ATTR) for r in runs) if s is not None]
        tokens = [(_number(r, sc.GEN_AI_USAGE_INPUT_TOKENS) or 0.0) + (_number(r, sc.GEN_AI_USAGE_OUTPUT_TOKENS) or 0.0)
                  for r in runs if not r.get(sc.AGENTWATCH_RUN_USAGE_UNAVAILABLE_CALLS)]
        costs = [c for c in (_number(r, sc.AGENTWATCH_COST_USD) for r in runs
                             if not r.get(sc.AGENTWATCH_COST_UNKNOWN)) if c is not None]
        succeeded = sum(1 for r in runs if r.get(_EVENT_OUTCOME) == "success" and sc.ERROR_TYPE not in r)
        values: dict[str, tuple[float | None, int]] = {
            "success_rate": (succeeded / len(runs) if runs else None, len(runs)),
            "steps_per_run": (_mean(steps), len(steps)),
            "p99_latency": (nearest_rank(durations, 99) if durations else None, len(durations)),
            "tokens_per_run": (_mean(tokens), len(tokens)),
            "cost_per_run": (_mean(costs), len(costs)),
        }
        for signal in SIGNALS:
            threshold = table[signal]
            if signal == "tool_error_rate":
                by_tool: dict[str, float | None] = {t: sum(f) / len(f) for t, f in tools.items() if f}
                worst = worst_key(threshold, by_tool)
                verdicts.append(Verdict(agent, signal, threshold, by_tool.get(worst) if worst else None, tool=worst,
                                        by_tool=by_tool, samples=sum(len(f) for f in tools.values())))
            else:
                value, samples = values[signal]
                verdicts.append(Verdict(agent, signal, threshold, value, samples=samples))
    return Report(source=source, thresholds=table.source, agents=list(records_by_agent), verdicts=verdicts)


def _value(sample: dict[str, Any]) -> float | None:
    try:
        value = float(sample["value"][1])
    except (KeyError, IndexError, TypeError, ValueError):
        return None
    return None if math.isnan(value) else value


def from_prometheus(base_url: str, table: Thresholds, agents: Sequence[str] = (), timeout: float = 10.0) -> Report:
    """The table evaluated now by Prometheus, with the alerts' PromQL (selector and aggregation labels of
    thresholds.yaml `queries` included) over each signal's window.

    Agents: those named, else every agent any signal query returns (an agent Prometheus knows but with no
    traffic in a window has NaN there: "no data"). A verdict is per agent and aggregation-label values."""
    base_url = prometheus.base_url(base_url)
    scope = promql.Scope.of(table)
    Key = tuple[str, tuple[tuple[str, str], ...]]
    values: dict[str, dict[Key, float | None]] = {}
    tool_values: dict[Key, dict[str, float | None]] = defaultdict(dict)
    seen: set[Key] = set()
    for signal in SIGNALS:
        threshold = table[signal]
        result = prometheus.query(base_url, scope.signal_query(signal, threshold.window), timeout,
                                  what=f"the {LABELS[signal]} query")
        per_agent: dict[Key, float | None] = {}
        for sample in result:
            labels = sample.get("metric") or {}
            agent = labels.get(promql.AGENT)
            if not agent:
                continue
            key = (agent, tuple((label, labels.get(label, "")) for label in scope.labels))
            seen.add(key)
            if signal == "tool_error_rate":
                tool_values[key][labels.get(promql.TOOL) or "?"] = _value(sample)
            else:
                per_agent[key] = _value(sample)
        values[signal] = per_agent
    names = list(dict.fromkeys(agents)) if agents else sorted({agent for agent, _ in seen})
    keys: list[Key] = []
    for agent in names:
        keys += sorted(k for k in seen if k[0] == agent) or [(agent, ())]
    verdicts = []
    for key in keys:
        agent, labels = key[0], dict(key[1])
        for signal in SIGNALS:
            threshold = table[signal]
            if signal == "tool_error_rate":
                by_tool = tool_values.get(key, {})
                worst = worst_key(threshold, by_tool)
                verdicts.append(Verdict(agent, signal, threshold, by_tool.get(worst) if worst else None, tool=worst,
                                        by_tool=dict(by_tool), labels=labels))
            else:
                verdicts.append(Verdict(agent, signal, threshold, values[signal].get(key), labels=labels))
    return Report(source=base_url, thresholds=table.source, agents=names, verdicts=verdicts)
