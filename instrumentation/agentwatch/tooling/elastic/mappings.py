"""The Elasticsearch objects agentwatch's log records live in: the index template of the data stream
`logs-agentwatch-<namespace>` (every field the records carry, with its type) and its ILM policy, each stamped
with a digest so `setup` can tell an up-to-date object from a stale one."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Mapping

from agentwatch import semconv as sc
from agentwatch.config import ConfigError, data_stream_name
from agentwatch.runtime.logs import ECS_VERSION

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
