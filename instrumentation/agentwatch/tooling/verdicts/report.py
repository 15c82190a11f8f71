"""The threshold table as data: one Verdict per agent and signal, gathered in a Report."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from agentwatch.thresholds import Threshold

LABELS = {
    "success_rate": "success rate",
    "steps_per_run": "steps per run",
    "p99_latency": "p99 latency",
    "tokens_per_run": "tokens per run",
    "cost_per_run": "cost per run",
    "tool_error_rate": "tool error rate",
}
OK, BREACHED, NO_DATA = "ok", "breached", "no_data"


@dataclass
class Verdict:
    agent: str
    signal: str
    threshold: Threshold
    measured: float | None = None  # None: no data
    tool: str | None = None  # tool_error_rate: the tool the value is of (the worst one)
    by_tool: dict[str, float | None] = field(default_factory=dict)
    samples: int | None = None  # runs or tool calls behind the value (from records)
    labels: dict[str, str] = field(default_factory=dict)  # the aggregation labels' values, e.g. {"cluster": "east"}

    @property
    def status(self) -> str:
        if self.measured is None or math.isnan(self.measured):
            return NO_DATA
        return BREACHED if self.threshold.breached(self.measured) else OK

    @property
    def breached(self) -> bool:
        return self.status == BREACHED

    @property
    def label(self) -> str:
        return LABELS.get(self.signal, self.signal)

    def to_dict(self) -> dict[str, Any]:
        t = self.threshold
        out: dict[str, Any] = {"agent": self.agent}
        if self.labels:
            out["labels"] = dict(self.labels)
        out.update({
            "signal": self.signal, "alert": t.alert, "measured": _json_number(self.measured),
            "comparison": t.comparison, "threshold": t.value, "unit": t.unit, "window": t.window,
            "severity": t.severity, "status": self.status, "breached": self.breached,
        })
        if self.signal == "tool_error_rate":
            out["tool"] = self.tool
            out["by_tool"] = {k: _json_number(v) for k, v in sorted(self.by_tool.items())}
        if self.samples is not None:
            out["samples"] = self.samples
        return out


def _json_number(value: float | None) -> float | str | None:
    if value is None or math.isnan(value):
        return None
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return value


@dataclass
class Report:
    source: str  # where the values come from: "JSON log records" or the Prometheus URL
    thresholds: str  # the threshold table's source
    agents: list[str]
    verdicts: list[Verdict]

    @property
    def breached(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.breached]

    @property
    def critical_breached(self) -> list[Verdict]:
        return [v for v in self.breached if v.threshold.severity == "critical"]

    def verdict(self, agent: str, signal: str, **labels: str) -> Verdict:
        """The verdict of an agent (with these aggregation label values, when given) on a signal."""
        for v in self.verdicts:
            if v.agent == agent and v.signal == signal and (not labels or v.labels == labels):
                return v
        raise KeyError((agent, signal, labels))

    @property
    def subjects(self) -> list[tuple[str, tuple[tuple[str, str], ...]]]:
        """(agent, its aggregation label values) of every verdict, in order: one per agent without labels."""
        return list(dict.fromkeys((v.agent, tuple(v.labels.items())) for v in self.verdicts))

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source, "thresholds": self.thresholds, "agents": self.agents,
            "verdicts": [v.to_dict() for v in self.verdicts],
            "breached": [{"agent": v.agent, **({"labels": dict(v.labels)} if v.labels else {}), "signal": v.signal,
                          "alert": v.threshold.alert, "severity": v.threshold.severity, "tool": v.tool}
                         for v in self.breached],
            "critical_breached": bool(self.critical_breached),
        }


def worst_key(threshold: Threshold, values: dict[str, float | None]) -> str | None:
    """The key whose value is furthest on the breaching side (lowest for "<", highest for ">")."""
    known = sorted((k, v) for k, v in values.items() if v is not None and not math.isnan(v))
    if not known:
        return None
    pick = min if threshold.comparison == "<" else max  # the first (by name) of equal values
    return pick(known, key=lambda kv: kv[1])[0]
