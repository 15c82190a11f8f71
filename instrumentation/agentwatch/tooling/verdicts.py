"""The threshold table, measured: per agent and signal, the value, the threshold and whether it is breached.

Two sources, one table:

* `from_records()`: exactly, from agentwatch's JSON log records (`gen_ai.invoke_agent` run records with their
  totals, `gen_ai.execute_tool` tool records). `agentwatch demo` prints this.
* `from_prometheus()`: from any Prometheus, with the very PromQL the alerts use
  (`agentwatch.tooling.generate.promql.signal_query`) over each signal's window. `agentwatch check` prints this.

Both follow the metric definitions, so they agree up to what Prometheus itself approximates (rates over
windows, p99 interpolated within a histogram bucket):

| signal | value |
|---|---|
| success_rate | successful runs / runs |
| steps_per_run | mean LLM calls per run |
| p99_latency | 99th percentile of run duration (records: nearest rank; Prometheus: histogram_quantile) |
| tokens_per_run | mean input + output tokens per run, over runs whose usage is known |
| cost_per_run | mean cost per run, over runs whose cost is known |
| tool_error_rate | failed / all calls per tool; the agent's row shows its worst tool (the alert is per tool) |

An agent with no traffic for a signal has no value ("no data") and never breaches. With aggregation labels in
thresholds.yaml `queries` (e.g. cluster), a verdict is per agent and label values, as the alerts are: two
agents named `support` in two clusters get a row each.
"""

from __future__ import annotations

import json
import math
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from agentwatch import semconv as sc
from agentwatch.tooling.generate import promql
from agentwatch.thresholds import SIGNALS, Threshold, Thresholds

__all__ = ["PrometheusError", "Report", "Verdict", "from_prometheus", "from_records", "render", "validate_url"]

LABELS = {
    "success_rate": "success rate",
    "steps_per_run": "steps per run",
    "p99_latency": "p99 latency",
    "tokens_per_run": "tokens per run",
    "cost_per_run": "cost per run",
    "tool_error_rate": "tool error rate",
}
OK, BREACHED, NO_DATA = "ok", "breached", "no_data"
_EVENT_ACTION = "event.action"
_EVENT_OUTCOME = "event.outcome"
_EVENT_DURATION = "event.duration"  # ECS: nanoseconds


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


# ---------------------------------------------------------------------------------------------------------
# From JSON log records
# ---------------------------------------------------------------------------------------------------------

def _nearest_rank(sorted_values: list[float], pct: float) -> float:
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
            "p99_latency": (_nearest_rank(durations, 99) if durations else None, len(durations)),
            "tokens_per_run": (_mean(tokens), len(tokens)),
            "cost_per_run": (_mean(costs), len(costs)),
        }
        for signal in SIGNALS:
            threshold = table[signal]
            if signal == "tool_error_rate":
                by_tool: dict[str, float | None] = {t: sum(f) / len(f) for t, f in tools.items() if f}
                worst = _worst(threshold, by_tool)
                verdicts.append(Verdict(agent, signal, threshold, by_tool.get(worst) if worst else None, tool=worst,
                                        by_tool=by_tool, samples=sum(len(f) for f in tools.values())))
            else:
                value, samples = values[signal]
                verdicts.append(Verdict(agent, signal, threshold, value, samples=samples))
    return Report(source=source, thresholds=table.source, agents=list(records_by_agent), verdicts=verdicts)


def _worst(threshold: Threshold, values: dict[str, float | None]) -> str | None:
    """The key whose value is furthest on the breaching side (lowest for "<", highest for ">")."""
    known = sorted((k, v) for k, v in values.items() if v is not None and not math.isnan(v))
    if not known:
        return None
    pick = min if threshold.comparison == "<" else max  # the first (by name) of equal values
    return pick(known, key=lambda kv: kv[1])[0]


# ---------------------------------------------------------------------------------------------------------
# From Prometheus
# ---------------------------------------------------------------------------------------------------------

class PrometheusError(Exception):
    """Prometheus could not be asked or did not answer like Prometheus; the message is one line."""


def validate_url(url: str) -> str:
    """The base URL without a trailing slash; ValueError (a usage error) when it is not http(s)://host[:port]."""
    parsed = urllib.parse.urlsplit(url.strip())
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError(f"{url!r} is not an http(s) URL like http://127.0.0.1:9090")
    try:
        parsed.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise ValueError(f"{url!r} has a malformed port") from None
    if parsed.query or parsed.fragment:
        raise ValueError(f"{url!r}: give the Prometheus base URL, without a query or fragment")
    return url.strip().rstrip("/")


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", exc)
    if isinstance(reason, BaseException):
        return getattr(reason, "strerror", None) or str(reason) or type(reason).__name__
    return str(reason)


def query(base_url: str, expr: str, timeout: float = 10.0, what: str = "the query") -> list[dict[str, Any]]:
    """An instant query's result vector; PrometheusError (one line) for every way it can fail."""
    url = f"{base_url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, content_type, body = response.status, response.headers.get("Content-Type", ""), response.read()
    except urllib.error.HTTPError as exc:
        status, content_type = exc.code, exc.headers.get("Content-Type", "") if exc.headers else ""
        body = exc.read() if exc.fp is not None else b""
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, ConnectionRefusedError):
            raise PrometheusError(f"Prometheus at {base_url} is not reachable: connection refused "
                                  "(is it running? `agentwatch stack status` shows a local one)") from None
        if isinstance(reason, socket.gaierror):
            raise PrometheusError(f"cannot resolve the host of {base_url}: {_reason(exc)}") from None
        if isinstance(reason, (socket.timeout, TimeoutError)):
            raise PrometheusError(f"no answer from {base_url} within {timeout:g}s") from None
        raise PrometheusError(f"cannot reach Prometheus at {base_url}: {_reason(exc)}") from None
    except (socket.timeout, TimeoutError):
        raise PrometheusError(f"no answer from {base_url} within {timeout:g}s") from None
    except (OSError, ValueError) as exc:  # connection reset, bad status line, ...
        raise PrometheusError(f"cannot talk to Prometheus at {base_url}: {_reason(exc)}") from None
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if not isinstance(data, dict) or data.get("status") not in ("success", "error"):
        kind = content_type.split(";")[0].strip() or "no content type"
        raise PrometheusError(f"{base_url} does not answer like Prometheus (HTTP {status}, {kind} from "
                              "/api/v1/query): check the URL")
    if data["status"] == "error":
        raise PrometheusError(f"Prometheus at {base_url} rejected {what}: {data.get('errorType', 'error')}: "
                              f"{data.get('error', '?')}")
    result = (data.get("data") or {}).get("result")
    if (data.get("data") or {}).get("resultType") != "vector" or not isinstance(result, list):
        raise PrometheusError(f"{base_url} answered {what} without an instant vector: not a Prometheus query API?")
    return result


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
    base_url = validate_url(base_url)
    scope = promql.Scope.of(table)
    Key = tuple[str, tuple[tuple[str, str], ...]]
    values: dict[str, dict[Key, float | None]] = {}
    tool_values: dict[Key, dict[str, float | None]] = defaultdict(dict)
    seen: set[Key] = set()
    for signal in SIGNALS:
        threshold = table[signal]
        result = query(base_url, scope.signal_query(signal, threshold.window), timeout,
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
                worst = _worst(threshold, by_tool)
                verdicts.append(Verdict(agent, signal, threshold, by_tool.get(worst) if worst else None, tool=worst,
                                        by_tool=dict(by_tool), labels=labels))
            else:
                verdicts.append(Verdict(agent, signal, threshold, values[signal].get(key), labels=labels))
    return Report(source=base_url, thresholds=table.source, agents=names, verdicts=verdicts)


# ---------------------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------------------

def format_measured(value: float | None, unit: str) -> str:
    if value is None or math.isnan(value):
        return "no data"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if unit == "ratio":
        return f"{value * 100:.1f}%"
    if unit == "s":
        return f"{value:.2f}s" if value < 100 else f"{value:,.0f}s"
    if unit == "USD":
        if value == 0 or value >= 0.01:
            return f"${value:,.4f}"
        return f"${value:.{1 - math.floor(math.log10(abs(value)))}f}"
    if unit == "{token}":
        return f"{value:,.0f}"
    return f"{value:,.1f}"


def render(report: Report, console: Console, *, title: str, breached_word: str = "BREACHED",
           note: str | None = None) -> None:
    """The table: agent (and its aggregation labels), signal, measured, threshold, verdict (OK / breached_word /
    no data), severity."""
    table = Table(title=title, title_justify="left", title_style="bold", header_style="bold", box=box.ROUNDED)
    label_names = list(dict.fromkeys(name for _, labels in report.subjects for name, _ in labels))
    for name, justify in ((*((n, "left") for n in label_names), ("Agent", "left"), ("Signal", "left"),
                           ("Measured", "right"), ("Threshold", "right"), ("Verdict", "left"), ("Severity", "left"))):
        table.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    by_subject: dict[tuple[str, tuple[tuple[str, str], ...]], list[Verdict]] = defaultdict(list)
    for v in report.verdicts:
        by_subject[(v.agent, tuple(v.labels.items()))].append(v)
    for subject in report.subjects:
        agent, labels = subject[0], dict(subject[1])
        rows = by_subject[subject]
        for i, v in enumerate(rows):
            t = v.threshold
            measured = format_measured(v.measured, t.unit)
            if v.tool and v.status != NO_DATA and v.measured:
                measured += f" ({v.tool})"  # the worst tool, when any failed
            status = v.status
            if status == BREACHED:
                style = "bold red" if t.severity == "critical" else "bold yellow"
                verdict = Text(breached_word, style=style)
            elif status == OK:
                verdict = Text("OK", style="green")
            else:
                verdict = Text("no data", style="dim")
            table.add_row(*(labels.get(n, "") if i == 0 else "" for n in label_names),
                          Text(agent, style="bold") if i == 0 else "", v.label,
                          Text(measured, style="dim" if status == NO_DATA else ""), f"{t.comparison} {t.display}",
                          verdict, Text(t.severity, style="red" if t.severity == "critical" and status == BREACHED
                                        else ""), end_section=i == len(rows) - 1)
    console.print(table)
    if note:
        console.print(note, highlight=False, soft_wrap=True)


def summary_line(report: Report, breached_word: str = "breached") -> str:
    """One line: how many thresholds are breached, which critical ones."""
    breached = report.breached
    if not report.agents:
        return "no agents found"
    if not breached:
        return f"all {len(report.subjects)} agents within every threshold"
    parts = [f"{v.agent}" + "".join(f" {k}={x}" for k, x in v.labels.items()) + f" {v.label}"
             + (f" ({v.tool})" if v.tool else "") + f" [{v.threshold.severity}]" for v in breached]
    return f"{len(breached)} threshold(s) {breached_word}: " + ", ".join(parts)
