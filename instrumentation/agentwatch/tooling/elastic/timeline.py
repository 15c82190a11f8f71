"""The run timeline behind `agentwatch logs`: the search for one trace's records (or an agent's recent runs'),
and the records grouped by trace, ordered by start time, with each trace's totals. Reads documents written
flat (the in-agent handler) and nested (the collector's ECS mode) alike."""

from __future__ import annotations

import collections
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping

from agentwatch import semconv as sc
from agentwatch.config import ConfigError, data_stream_name

_SINCE = re.compile(r"^(\d+)([smhdw])$")


def since_to_date_math(since: str) -> str:
    """"1h" -> "now-1h" (s, m, h, d, w); raises ConfigError."""
    if not _SINCE.match(since.strip()):
        raise ConfigError(f"--since {since!r} is not a duration like 30m, 1h, 2d or 1w")
    return f"now-{since.strip()}"


def trace_query(trace_id: str) -> dict[str, Any]:
    return {"bool": {"filter": [{"term": {"trace.id": trace_id.lower()}}]}}


def agent_runs_query(agent: str, since: str) -> dict[str, Any]:
    return {"bool": {"filter": [
        {"term": {sc.GEN_AI_AGENT_NAME: agent}},
        {"term": {"event.action": sc.LOG_EVENT_AGENT_RUN}},
        {"range": {"@timestamp": {"gte": since_to_date_math(since)}}},
    ]}}


def find_records(client: Any, namespace: str = sc.ES_DEFAULT_NAMESPACE, *, trace_id: str | None = None,
                 agent: str | None = None, since: str = "1h", max_runs: int = 20,
                 limit: int = 2000) -> list[dict[str, Any]]:
    """The records of one trace, or of the traces of an agent's runs in the last `since` (newest
    `max_runs`), oldest first."""
    index = data_stream_name(namespace)
    sort = [{"@timestamp": {"order": "asc"}}]
    if trace_id:
        query = trace_query(trace_id)
    elif agent:
        runs = client.search(index=index, query=agent_runs_query(agent, since), size=max_runs,
                             sort=[{"@timestamp": {"order": "desc"}}], source=["trace.id"], ignore_unavailable=True)
        trace_ids = []
        for hit in runs["hits"]["hits"]:
            tid = get_field(hit.get("_source", {}), "trace.id")
            if tid and tid not in trace_ids:
                trace_ids.append(tid)
        if not trace_ids:
            return []
        query = {"bool": {"filter": [{"terms": {"trace.id": trace_ids}}]}}
    else:
        raise ConfigError("give --trace-id or --agent")
    resp = client.search(index=index, query=query, sort=sort, size=limit, ignore_unavailable=True)
    return [hit["_source"] for hit in resp["hits"]["hits"]]


def get_field(doc: Mapping[str, Any], name: str) -> Any:
    """A field by its dotted name, whether the document holds it flat ("gen_ai.usage.input_tokens", as the
    handler writes it) or as nested objects (as the collector's ECS mode writes it)."""
    if name in doc:
        return doc[name]
    parts = name.split(".")
    for i in range(len(parts) - 1, 0, -1):
        head = ".".join(parts[:i])
        sub = doc.get(head)
        if isinstance(sub, Mapping):
            value = get_field(sub, ".".join(parts[i:]))
            if value is not None:
                return value
    return None


@dataclass
class TimelineEvent:
    start: datetime
    offset_s: float
    kind: str  # run | llm | tool | budget | log
    name: str
    outcome: str  # ok | error type | warn
    duration_s: float | None
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None
    cost_unknown: bool
    error: str | None
    span_id: str | None
    record: dict[str, Any] = field(repr=False, default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"start": self.start.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "offset_s": round(self.offset_s, 3), "kind": self.kind, "name": self.name,
                "outcome": self.outcome, "duration_s": self.duration_s, "input_tokens": self.input_tokens,
                "output_tokens": self.output_tokens, "cost_usd": self.cost_usd, "cost_unknown": self.cost_unknown,
                "error": self.error, "span_id": self.span_id, "record": self.record}


@dataclass
class TraceTimeline:
    trace_id: str
    events: list[TimelineEvent]
    llm_calls: int = 0
    tool_calls: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    cost_unknown: bool = False
    agents: list[str] = field(default_factory=list)

    def totals(self) -> dict[str, Any]:
        return {"llm_calls": self.llm_calls, "tool_calls": self.tool_calls, "errors": self.errors,
                "input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
                "cost_usd": round(self.cost_usd, 10), "cost_unknown": self.cost_unknown, "agents": self.agents}


def _parse_time(value: Any) -> datetime | None:
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value / 1000, tz=timezone.utc)
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _event(doc: dict[str, Any]) -> tuple[datetime, str, str, dict[str, Any]]:
    action = get_field(doc, "event.action") or ""
    end = _parse_time(get_field(doc, "@timestamp")) or datetime.fromtimestamp(0, tz=timezone.utc)
    duration_ns = _num(get_field(doc, "event.duration"))
    start = _parse_time(get_field(doc, "event.start"))  # exact, when the record has it (direct handler)
    exact = start is not None
    if start is None:
        start = end if duration_ns is None else datetime.fromtimestamp(end.timestamp() - duration_ns / 1e9,
                                                                        tz=timezone.utc)
    if action == sc.LOG_EVENT_LLM_CALL:
        kind = "llm"
        name = " ".join(str(v) for v in (get_field(doc, sc.GEN_AI_OPERATION_NAME),
                                         get_field(doc, sc.GEN_AI_REQUEST_MODEL)) if v)
    elif action == sc.LOG_EVENT_TOOL_CALL:
        kind, name = "tool", str(get_field(doc, sc.GEN_AI_TOOL_NAME) or "?")
    elif action == sc.LOG_EVENT_AGENT_RUN:
        kind, name = "run", str(get_field(doc, sc.GEN_AI_AGENT_NAME) or "?")
    elif action.startswith("agentwatch.budget"):
        kind, name = "budget", str(get_field(doc, "agentwatch.budget.limit") or "budget")
    else:
        kind, name = "log", action or "?"
    return start, kind, name, {"duration_ns": duration_ns, "exact_start": exact}


def build_timelines(docs: Iterable[dict[str, Any]]) -> list[TraceTimeline]:
    """Records grouped by trace, each trace's events ordered by start time (`@timestamp` is the end of the
    call, run or tool; `event.duration` gives its start), with the trace's totals."""
    by_trace: dict[str, list[dict[str, Any]]] = collections.OrderedDict()
    for doc in docs:
        by_trace.setdefault(str(get_field(doc, "trace.id") or "-"), []).append(doc)
    timelines = []
    for trace_id, trace_docs in by_trace.items():
        rows = []
        for doc in trace_docs:
            start, kind, name, extra = _event(doc)
            rows.append((start, kind, name, extra, doc))
        # by start time. A record without `event.start` (e.g. written by the collector) only has
        # @timestamp - duration, good to a millisecond: those compare by millisecond, a run first on a tie.
        rows.sort(key=lambda r: (r[0].timestamp() if r[3]["exact_start"] else round(r[0].timestamp(), 3),
                                 r[1] != "run"))
        origin = min(r[0] for r in rows)
        tl = TraceTimeline(trace_id=trace_id, events=[])
        for start, kind, name, extra, doc in rows:
            error_type = get_field(doc, "error.type")
            outcome = get_field(doc, "event.outcome")
            failed = outcome == "failure" or error_type is not None
            level = str(get_field(doc, "log.level") or "").lower()
            cost = _num(get_field(doc, sc.AGENTWATCH_COST_USD))
            cost_unknown = bool(get_field(doc, sc.AGENTWATCH_COST_UNKNOWN))
            tokens_in = get_field(doc, sc.GEN_AI_USAGE_INPUT_TOKENS)
            tokens_out = get_field(doc, sc.GEN_AI_USAGE_OUTPUT_TOKENS)
            message = get_field(doc, "error.message") or get_field(doc, sc.AGENTWATCH_RUN_FAILURE_REASON)
            event = TimelineEvent(
                start=start, offset_s=(start - origin).total_seconds(), kind=kind, name=name,
                outcome=str(error_type or ("error" if failed else ("warn" if level == "warn" else "ok"))),
                duration_s=extra["duration_ns"] / 1e9 if extra["duration_ns"] is not None else None,
                input_tokens=int(tokens_in) if isinstance(tokens_in, (int, float)) else None,
                output_tokens=int(tokens_out) if isinstance(tokens_out, (int, float)) else None,
                cost_usd=cost, cost_unknown=cost_unknown,
                error=str(message) if failed and message else None,
                span_id=get_field(doc, "span.id"), record=doc)
            tl.events.append(event)
            if failed and kind in ("llm", "tool", "run"):
                tl.errors += 1
            if kind == "llm":
                tl.llm_calls += 1
                tl.input_tokens += event.input_tokens or 0
                tl.output_tokens += event.output_tokens or 0
                tl.cost_usd += cost or 0.0
                # a failed call that reported no usage cost nothing; any other call without a price is unknown
                tl.cost_unknown = tl.cost_unknown or cost_unknown or (cost is None and not failed)
            elif kind == "tool":
                tl.tool_calls += 1
            elif kind == "run" and name not in tl.agents:
                tl.agents.append(name)
        timelines.append(tl)
    return timelines
