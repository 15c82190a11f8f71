"""agentwatch's log records in Elasticsearch: index template, ILM policy, a non-blocking bulk handler, search.

The records are the ECS JSON records of agentwatch.runtime.logs (one per LLM call, agent run and tool call). They
go to the data stream `logs-agentwatch-<namespace>`, written either

* straight from the agent by `ElasticsearchHandler` (`AGENTWATCH_ES_URL`, or
  `agentwatch.init(elasticsearch_url=...)`): a bounded queue and a background thread that sends
  `helpers.streaming_bulk` requests (`op_type: create`), retries 429 and 5xx answers with backoff, resending
  only the documents that failed, and counts what it has to drop; the agent never waits for it; or
* by the OpenTelemetry Collector's elasticsearch exporter in ECS mapping mode, with the settings of
  `collector_exporter_config()`, which produce documents with the same field names.

`setup()` (the `agentwatch es setup` command) installs the index template and the ILM policy, idempotently.
No ingest pipeline is needed: documents arrive with their final field names from both paths.

Credentials (API key, password) never appear in a log line, an error message or a repr.
"""

from __future__ import annotations

import collections
import hashlib
import json
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping

from agentwatch import semconv as sc
from agentwatch.config import ConfigError, data_stream_name, validate_namespace
# the client helpers live with the in-agent handler; `agentwatch es` and `agentwatch logs` use them from here
from agentwatch.runtime.elasticsearch import build_client, describe_error, scrub, warn_insecure  # noqa: F401
from agentwatch.runtime.logs import ECS_VERSION

_log = logging.getLogger("agentwatch")

TEMPLATE_PRIORITY = 200  # the built-in `logs` template (logs-*-*) has priority 100
ROLLOVER_MAX_AGE = "1d"
ROLLOVER_MAX_PRIMARY_SHARD_SIZE = "50gb"
MANAGED_BY = "agentwatch"


def template_name(namespace: str = sc.ES_DEFAULT_NAMESPACE) -> str:
    return data_stream_name(namespace)


def policy_name(namespace: str = sc.ES_DEFAULT_NAMESPACE) -> str:
    return data_stream_name(namespace)


def custom_component_name(namespace: str = sc.ES_DEFAULT_NAMESPACE) -> str:
    """Optional component template of the user's own settings (replicas, shards); setup never writes it."""
    return data_stream_name(namespace) + "@custom"


# --- mappings -------------------------------------------------------------------------------------------
_KEYWORD: dict[str, Any] = {"type": "keyword", "ignore_above": 1024}
_TEXT: dict[str, Any] = {"type": "match_only_text"}
_LONG: dict[str, Any] = {"type": "long"}
_DOUBLE: dict[str, Any] = {"type": "double"}
_BOOL: dict[str, Any] = {"type": "boolean"}
_DATE: dict[str, Any] = {"type": "date"}
# Prompt, completion and tool payloads: kept in _source (shown by `agentwatch logs --json`, Kibana's
# document view), never parsed or indexed. Accepts strings and objects alike.
CONTENT: dict[str, Any] = {"type": "object", "enabled": False}

CONTENT_FIELDS: tuple[str, ...] = (
    sc.GEN_AI_INPUT_MESSAGES, sc.GEN_AI_OUTPUT_MESSAGES, sc.GEN_AI_SYSTEM_INSTRUCTIONS,
    sc.GEN_AI_TOOL_CALL_ARGUMENTS, sc.GEN_AI_TOOL_CALL_RESULT, "gen_ai.tool.definitions",
)

# Every field the records carry, with its type. Strings not listed here become `keyword` (dynamic template).
FIELD_MAPPINGS: dict[str, dict[str, Any]] = {
    # ECS
    "@timestamp": _DATE,
    "message": _TEXT,
    "log.level": _KEYWORD,
    "ecs.version": _KEYWORD,
    "event.dataset": _KEYWORD,
    "event.action": _KEYWORD,
    "event.outcome": _KEYWORD,
    "event.duration": _LONG,  # nanoseconds
    "event.start": _DATE,
    "event.severity": _LONG,  # the collector's ECS mode adds the OTel severity number
    "trace.id": _KEYWORD,
    "span.id": _KEYWORD,
    "service.name": _KEYWORD,
    "service.environment": _KEYWORD,
    "error.type": _KEYWORD,
    "error.message": _TEXT,
    sc.SERVER_ADDRESS: _KEYWORD,
    sc.SERVER_PORT: _LONG,
    # gen_ai.* (OpenTelemetry GenAI semantic conventions)
    sc.GEN_AI_OPERATION_NAME: _KEYWORD,
    sc.GEN_AI_PROVIDER_NAME: _KEYWORD,
    sc.GEN_AI_REQUEST_MODEL: _KEYWORD,
    sc.GEN_AI_REQUEST_MAX_TOKENS: _LONG,
    sc.GEN_AI_REQUEST_TEMPERATURE: _DOUBLE,
    sc.GEN_AI_REQUEST_TOP_P: _DOUBLE,
    sc.GEN_AI_REQUEST_STREAM: _BOOL,
    sc.GEN_AI_RESPONSE_MODEL: _KEYWORD,
    sc.GEN_AI_RESPONSE_ID: _KEYWORD,
    sc.GEN_AI_RESPONSE_FINISH_REASONS: _KEYWORD,
    sc.GEN_AI_OUTPUT_TYPE: _KEYWORD,
    sc.GEN_AI_USAGE_INPUT_TOKENS: _LONG,
    sc.GEN_AI_USAGE_OUTPUT_TOKENS: _LONG,
    sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: _LONG,
    sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS: _LONG,
    sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: _LONG,
    sc.GEN_AI_AGENT_NAME: _KEYWORD,
    sc.GEN_AI_AGENT_ID: _KEYWORD,
    sc.GEN_AI_CONVERSATION_ID: _KEYWORD,
    sc.GEN_AI_TOOL_NAME: _KEYWORD,
    sc.GEN_AI_TOOL_TYPE: _KEYWORD,
    sc.GEN_AI_TOOL_CALL_ID: _KEYWORD,
    sc.GEN_AI_INVOKE_AGENT_INFERENCE_CALLS_ATTR: _LONG,
    sc.GEN_AI_INVOKE_AGENT_TOOL_CALLS_ATTR: _LONG,
    # agentwatch.*
    sc.AGENTWATCH_COST_USD: _DOUBLE,
    sc.AGENTWATCH_COST_UNKNOWN: _BOOL,
    sc.AGENTWATCH_USAGE_UNAVAILABLE: _BOOL,
    sc.AGENTWATCH_STREAM_OUTCOME: _KEYWORD,
    sc.AGENTWATCH_AGENT_TOOL_ERRORS: _LONG,
    sc.AGENTWATCH_RUN_UNPRICED_CALLS: _LONG,
    sc.AGENTWATCH_RUN_USAGE_UNAVAILABLE_CALLS: _LONG,
    sc.AGENTWATCH_RUN_FAILURE_REASON: _KEYWORD,
    sc.AGENTWATCH_RUN_FROM_ROOT_SPAN: _BOOL,
    "agentwatch.budget.limit": _KEYWORD,
    "agentwatch.budget.used": _DOUBLE,
    "agentwatch.budget.allowed": _DOUBLE,
    **{name: CONTENT for name in CONTENT_FIELDS},
}


def _nest(flat: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """{"a.b": m} -> {"a": {"properties": {"b": m}}}: the object form Elasticsearch stores mappings in."""
    root: dict[str, Any] = {}
    for name in sorted(flat):
        *parents, leaf = name.split(".")
        node = root
        for part in parents:
            node = node.setdefault(part, {"properties": {}})["properties"]
        node[leaf] = dict(flat[name])
    return root


def _stamp(body: dict[str, Any], meta_key: tuple[str, ...]) -> dict[str, Any]:
    """Adds `_meta` with a digest of the body, so setup can tell an up-to-date object from a stale one."""
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]
    meta = {"managed_by": MANAGED_BY, "ecs_version": ECS_VERSION, "digest": digest,
            "description": "agentwatch log records (LLM calls, agent runs, tool calls); see `agentwatch es setup`"}
    target = body
    for key in meta_key:
        target = target[key]
    target["_meta"] = meta
    return body


def index_template(namespace: str = sc.ES_DEFAULT_NAMESPACE) -> dict[str, Any]:
    """The composable index template of the data stream `logs-agentwatch-<namespace>`."""
    ds = data_stream_name(namespace)
    properties = _nest(FIELD_MAPPINGS)
    properties["data_stream"] = {"properties": {
        "type": {"type": "constant_keyword", "value": sc.ES_DATA_STREAM_TYPE},
        "dataset": {"type": "constant_keyword", "value": sc.ES_DATASET},
        "namespace": {"type": "constant_keyword", "value": namespace},
    }}
    body = {
        "index_patterns": [ds],
        "data_stream": {},
        "priority": TEMPLATE_PRIORITY,
        "composed_of": [custom_component_name(namespace)],
        "ignore_missing_component_templates": [custom_component_name(namespace)],
        "template": {
            "settings": {
                "index": {
                    "lifecycle": {"name": policy_name(namespace)},
                    "codec": "best_compression",
                    # a value of the wrong type loses that field, never the whole record
                    "mapping": {"ignore_malformed": True},
                },
            },
            "mappings": {
                "dynamic": True,
                "date_detection": False,
                "dynamic_templates": [
                    {"strings_as_keyword": {"match_mapping_type": "string", "mapping": dict(_KEYWORD)}},
                    {"floats_as_double": {"match_mapping_type": "double", "mapping": dict(_DOUBLE)}},
                ],
                "properties": properties,
            },
        },
    }
    return _stamp(body, ())


def ilm_policy(retention_days: int = sc.ES_DEFAULT_RETENTION_DAYS) -> dict[str, Any]:
    """Rollover daily (or at 50 GB a primary shard); delete `retention_days` after an index rolled over.
    (The built-in `logs` policy rolls over but never deletes.)"""
    if not isinstance(retention_days, int) or isinstance(retention_days, bool) or retention_days < 1:
        raise ConfigError(f"retention must be a whole number of days >= 1, not {retention_days!r}")
    body = {"policy": {"phases": {
        "hot": {"min_age": "0ms", "actions": {
            "rollover": {"max_age": ROLLOVER_MAX_AGE, "max_primary_shard_size": ROLLOVER_MAX_PRIMARY_SHARD_SIZE},
            "set_priority": {"priority": 100},
        }},
        "delete": {"min_age": f"{retention_days}d", "actions": {"delete": {}}},
    }}}
    return _stamp(body, ("policy",))


# --- setup ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SetupChange:
    kind: str  # "ILM policy" | "index template"
    name: str
    action: str  # "created" | "updated" | "unchanged"
    detail: str = ""


def setup(client: Any, namespace: str = sc.ES_DEFAULT_NAMESPACE,
          retention_days: int = sc.ES_DEFAULT_RETENTION_DAYS) -> list[SetupChange]:
    """Install (or bring up to date) the ILM policy and the index template; idempotent: an object already
    as agentwatch would write it is left alone. Returns what was created, updated or left unchanged."""
    policy_body = ilm_policy(retention_days)
    template_body = index_template(namespace)
    changes = []

    pname = policy_name(namespace)
    existing = client.options(ignore_status=404).ilm.get_lifecycle(name=pname)
    current = existing.body.get(pname) if existing.meta.status == 200 else None
    current_digest = ((current or {}).get("policy") or {}).get("_meta", {}).get("digest")
    if current_digest == policy_body["policy"]["_meta"]["digest"]:
        changes.append(SetupChange("ILM policy", pname, "unchanged"))
    else:
        client.ilm.put_lifecycle(name=pname, body=policy_body)
        changes.append(SetupChange("ILM policy", pname, "updated" if current else "created",
                                   f"delete after {retention_days} d"))

    tname = template_name(namespace)
    existing = client.options(ignore_status=404).indices.get_index_template(name=tname)
    found = existing.body.get("index_templates", []) if existing.meta.status == 200 else []
    current_t = found[0].get("index_template") if found else None
    if ((current_t or {}).get("_meta") or {}).get("digest") == template_body["_meta"]["digest"]:
        changes.append(SetupChange("index template", tname, "unchanged"))
    else:
        client.indices.put_index_template(name=tname, body=template_body)
        detail = f"priority {TEMPLATE_PRIORITY}, data stream {data_stream_name(namespace)}"
        if current_t is not None:
            detail += "; applies to new backing indices (next rollover)"
        changes.append(SetupChange("index template", tname, "updated" if current_t else "created", detail))
    return changes


# --- the collector path ---------------------------------------------------------------------------------
COLLECTOR_MAPPING_MODE = "ecs"
COLLECTOR_EXPORTER = "elasticsearch/agentwatch"
COLLECTOR_TRANSFORM = "transform/agentwatch_ecs"
COLLECTOR_FILTER = "filter/agentwatch_only"
COLLECTOR_PIPELINE = "logs/agentwatch_elasticsearch"


def collector_exporter_config(namespace: str = sc.ES_DEFAULT_NAMESPACE, *,
                              endpoint: str = "${env:AGENTWATCH_ES_URL}",
                              api_key: str | None = "${env:AGENTWATCH_ES_API_KEY}",
                              ca_file: str | None = None) -> dict[str, Any]:
    """Collector (contrib) settings that write agentwatch's OTLP log records into the same data stream, with
    the same field names, as ElasticsearchHandler: `{"processors": ..., "exporters": ..., "service":
    {"pipelines": ...}}`, to merge into a collector config that has an `otlp` receiver.

    * `mapping.mode: ecs`: log attributes keep their names at the document root (`gen_ai.*`, `event.*`,
      `error.*`, `agentwatch.*`), body -> `message`, severity text -> `log.level`, trace/span ids ->
      `trace.id`/`span.id`, resource `service.name` -> `service.name`. (The default `otel` mode nests
      attributes under `attributes.` and appends `.otel` to the dataset: not our data stream.)
    * `logs_index: logs-agentwatch-<namespace>`: static routing to the data stream; the filter keeps only
      records of the instrumentation scope `agentwatch` in this pipeline.
    * the transform fills what ECS mode does not derive: `event.action` from the OTLP event name,
      `event.dataset`, `ecs.version`, the `data_stream.*` fields, and a lower-case `log.level`.
    """
    ds = data_stream_name(namespace)
    exporter: dict[str, Any] = {
        "endpoint": endpoint,
        "mapping": {"mode": COLLECTOR_MAPPING_MODE},
        "logs_index": ds,
    }
    if api_key:
        exporter["api_key"] = api_key
    if ca_file:
        exporter["tls"] = {"ca_file": ca_file}
    statements = [
        'set(attributes["event.action"], event_name) where event_name != ""',
        f'set(attributes["event.dataset"], "{sc.ES_DATASET}")',
        f'set(attributes["ecs.version"], "{ECS_VERSION}")',
        f'set(attributes["data_stream.type"], "{sc.ES_DATA_STREAM_TYPE}")',
        f'set(attributes["data_stream.dataset"], "{sc.ES_DATASET}")',
        f'set(attributes["data_stream.namespace"], "{namespace}")',
        'set(severity_text, ConvertCase(severity_text, "lower")) where severity_text != ""',
    ]
    return {
        "processors": {
            COLLECTOR_FILTER: {"error_mode": "ignore",
                               "logs": {"log_record": ['instrumentation_scope.name != "agentwatch"']}},
            COLLECTOR_TRANSFORM: {"error_mode": "ignore",
                                  "log_statements": [{"context": "log", "statements": statements}]},
        },
        "exporters": {COLLECTOR_EXPORTER: exporter},
        "service": {"pipelines": {COLLECTOR_PIPELINE: {
            "receivers": ["otlp"],
            "processors": [COLLECTOR_FILTER, COLLECTOR_TRANSFORM],
            "exporters": [COLLECTOR_EXPORTER],
        }}},
    }


# --- search: the run timeline of `agentwatch logs` --------------------------------------------------------
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
