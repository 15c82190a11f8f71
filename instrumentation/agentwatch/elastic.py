"""agentwatch's log records in Elasticsearch: index template, ILM policy, a non-blocking bulk handler, search.

The records are the ECS JSON records of agentwatch.logs (one per LLM call, agent run and tool call). They
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

import atexit
import base64
import collections
import hashlib
import json
import logging
import os
import queue
import random
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping, Sequence

from agentwatch import semconv as sc
from agentwatch.config import DEFAULT_ES_QUEUE_SIZE, ConfigError, ElasticsearchSettings, validate_namespace
from agentwatch.logs import ECS_VERSION, redact

_log = logging.getLogger("agentwatch")

TEMPLATE_PRIORITY = 200  # the built-in `logs` template (logs-*-*) has priority 100
ROLLOVER_MAX_AGE = "1d"
ROLLOVER_MAX_PRIMARY_SHARD_SIZE = "50gb"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MANAGED_BY = "agentwatch"


def data_stream_name(namespace: str = sc.ES_DEFAULT_NAMESPACE) -> str:
    """`logs-agentwatch-<namespace>`; raises ConfigError for a namespace Elasticsearch would refuse."""
    return sc.ES_DATA_STREAM_PATTERN.format(namespace=validate_namespace(namespace))


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
    sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: _LONG,
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


# --- client ---------------------------------------------------------------------------------------------
def _secrets(es: ElasticsearchSettings | None) -> list[str]:
    if es is None:
        return []
    found = [s for s in (es.api_key, es.password) if s]
    if es.username and es.password:
        found.append(base64.b64encode(f"{es.username}:{es.password}".encode()).decode())
    return found


def scrub(text: str, es: ElasticsearchSettings | None = None, limit: int = 400) -> str:
    """Text safe to log or print: known secrets and credential-looking strings masked, length bounded."""
    for secret in _secrets(es):
        text = text.replace(secret, "[REDACTED]")
    text = re.sub(r"(?i)(authorization|api[-_ ]?key|apikey|basic)(\W+)\S+", r"\1\2[REDACTED]", text)
    text = re.sub(r"//[^/@\s]+:[^/@\s]*@", "//[REDACTED]@", text)  # user:password@ in any URL
    return redact(text, limit)


def _quiet_client_class() -> type:
    """An Elasticsearch client whose requests create no spans: the handler's bulk requests are not part of
    the agent's work and must not show up in its traces (the client has built-in OpenTelemetry spans)."""
    from elasticsearch import Elasticsearch

    try:
        from elasticsearch._otel import OpenTelemetry
    except ImportError:  # an older client without built-in tracing
        return Elasticsearch

    class QuietElasticsearch(Elasticsearch):  # `options()` copies keep the class, so stay quiet too
        def __init__(self, *args: Any, **kwargs: Any):
            super().__init__(*args, **kwargs)
            try:
                self._otel = OpenTelemetry(enabled=False)
            except Exception:  # noqa: BLE001 - a client change leaves its spans on; nothing else breaks
                pass

    return QuietElasticsearch


def build_client(es: ElasticsearchSettings, *, request_timeout: float = 10.0, quiet: bool = False,
                 max_retries: int = 0) -> Any:
    """An `elasticsearch.Elasticsearch` for the settings: API key or basic auth, TLS verification on unless
    turned off, an optional CA file. Retries are the caller's (`max_retries=0`): the handler does its own."""
    from elasticsearch import Elasticsearch

    cls = _quiet_client_class() if quiet else Elasticsearch
    kwargs: dict[str, Any] = {"hosts": [es.url], "request_timeout": request_timeout, "max_retries": max_retries,
                              "retry_on_status": (), "retry_on_timeout": False}
    if es.url.startswith("https://"):
        kwargs["verify_certs"] = es.verify_certs
        if not es.verify_certs:
            kwargs["ssl_show_warn"] = False  # warned once below instead of on every request
        if es.ca_certs:
            kwargs["ca_certs"] = es.ca_certs
    if es.api_key:
        kwargs["api_key"] = es.api_key
    elif es.username:
        kwargs["basic_auth"] = (es.username, es.password or "")
    return cls(**kwargs)


def warn_insecure(es: ElasticsearchSettings) -> None:
    if es.url.startswith("https://") and not es.verify_certs:
        _log.warning("agentwatch: TLS certificate verification for Elasticsearch at %s is OFF (%s=false)",
                     es.url, sc.ENV_ES_VERIFY_CERTS)
    if es.url.startswith("http://") and (es.api_key or es.password):
        _log.warning("agentwatch: sending Elasticsearch credentials over plain http to %s; use https", es.url)


def describe_error(exc: BaseException, es: ElasticsearchSettings | None = None) -> str:
    """One line about a failed Elasticsearch call for a person, without secrets."""
    try:
        from elasticsearch import exceptions as ex
    except ImportError:  # pragma: no cover - the client is a dependency
        return scrub(f"{type(exc).__name__}: {exc}", es)
    where = es.url if es is not None else "Elasticsearch"
    if isinstance(exc, ex.AuthenticationException):
        return (f"{where} rejected the credentials (401); check {sc.ENV_ES_API_KEY} / {sc.ENV_ES_API_KEY_FILE} "
                f"or {sc.ENV_ES_USERNAME} and {sc.ENV_ES_PASSWORD}")
    if isinstance(exc, ex.AuthorizationException):
        return scrub(f"{where}: the credentials lack a privilege (403): {_api_reason(exc)}", es)
    if isinstance(exc, ex.UnsupportedProductError):
        return f"{where} does not answer as Elasticsearch (no X-Elastic-Product header)"
    if isinstance(exc, ex.ApiError):
        reason = _api_reason(exc)
        if "media_type_header_exception" in reason or "compatible-with" in reason:
            reason += ("; the elasticsearch client is newer than the cluster: "
                       "pip install 'elasticsearch>=8.13,<9' for an 8.x cluster")
        return scrub(f"{where} answered {exc.meta.status}: {reason}", es)
    if isinstance(exc, ex.SSLError) or "CERTIFICATE_VERIFY_FAILED" in str(exc):
        return scrub(f"TLS verification of {where} failed ({_first_line(exc)}); give the cluster's CA with "
                     f"--ca-certs or {sc.ENV_ES_CA_CERTS}", es)
    if isinstance(exc, ex.ConnectionTimeout):
        return f"{where} did not answer in time"
    if isinstance(exc, ex.ConnectionError):
        return scrub(f"cannot connect to {where}: {_first_line(exc)}", es)
    return scrub(f"{type(exc).__name__}: {_first_line(exc)}", es)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _api_reason(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = body["error"]
        root = (err.get("root_cause") or [{}])[0] if isinstance(err.get("root_cause"), list) else {}
        kind = err.get("type") or root.get("type") or "error"
        reason = err.get("reason") or root.get("reason") or ""
        return f"{kind}: {reason}" if reason else str(kind)
    return str(getattr(exc, "message", "") or exc)


# --- the handler ----------------------------------------------------------------------------------------
_WAKE = object()  # queue marker: send what you have now (flush, shutdown)
_MAX_ERROR_KINDS = 32
_REPORT_INTERVAL_S = 60.0


class ElasticsearchHandler:
    """Sends ECS log records to a data stream from a background thread; `write` never blocks.

    A full queue drops the record and counts it (`agentwatch.elasticsearch.dropped_records`,
    `error.type=queue_full`). Documents answered 429 or 5xx, or lost to a connection error, are resent
    (only those) with exponential backoff, up to `max_retries` times; other rejections (mapping errors, 4xx)
    are counted per Elasticsearch error type in `stats()["errors"]`. `flush()` waits for what was written
    so far; `close()` (also at interpreter exit) flushes for up to `shutdown_timeout` seconds.
    """

    def __init__(self, client: Any, namespace: str = sc.ES_DEFAULT_NAMESPACE, *,
                 queue_size: int = DEFAULT_ES_QUEUE_SIZE, batch_size: int = 500, flush_interval: float = 1.0,
                 max_batch_bytes: int = 5 * 1024 * 1024, max_retries: int = 5, initial_backoff: float = 0.5,
                 max_backoff: float = 30.0, shutdown_timeout: float = 5.0, dropped_counter: Any = None,
                 settings: ElasticsearchSettings | None = None, register_atexit: bool = True):
        self.index = data_stream_name(namespace)
        self.namespace = namespace
        # retries are ours (with backoff, failed documents only), not the transport's (whole request, no wait)
        self._client = client.options(max_retries=0, retry_on_status=())
        self.queue_size = queue_size
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_batch_bytes = max_batch_bytes
        self.max_retries = max_retries
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.shutdown_timeout = shutdown_timeout
        self._dropped_counter = dropped_counter
        self._settings = settings
        self._ds_fields = {"data_stream.type": sc.ES_DATA_STREAM_TYPE, "data_stream.dataset": sc.ES_DATASET,
                           "data_stream.namespace": namespace}
        self._accepted = 0  # records taken into the queue
        self._settled = 0  # of those, records indexed, rejected or given up on (set in _init_worker_state)
        self._indexed = 0
        self._failed = 0
        self._dropped = 0
        self._retried = 0
        self._errors: collections.Counter[str] = collections.Counter()
        self._last_report: dict[str, float] = {}
        self._closed = False
        self._deadline: float | None = None
        self._init_worker_state()
        self._atexit_registered = register_atexit
        if register_atexit:
            atexit.register(self.close)

    def _init_worker_state(self) -> None:
        """Queue, locks and (lazily started) thread; again in a forked child, which inherits none of the
        parent's threads and whose copies of the parent's locks and records are not its own."""
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._settled_cond = threading.Condition(self._lock)
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=self.queue_size)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._settled = self._accepted  # the parent's queued records are the parent's to send

    def _after_fork(self) -> None:
        self._init_worker_state()
        if self._settings is not None:  # the parent's pooled connections must not be shared
            try:
                self._client = build_client(self._settings, quiet=True).options(max_retries=0, retry_on_status=())
            except Exception:  # noqa: BLE001
                _log.debug("agentwatch: cannot rebuild the Elasticsearch client after fork", exc_info=True)

    def __repr__(self) -> str:
        where = self._settings.url if self._settings is not None else "client"
        return f"<ElasticsearchHandler {self.index} at {where}>"

    # --- the agent's side: never blocks, never raises
    def write(self, record: Mapping[str, Any]) -> None:
        try:
            if self._closed:
                self._drop(1, sc.ES_DROP_SHUTDOWN)
                return
            if self._pid != os.getpid():  # forked: the worker thread did not come along
                self._after_fork()
            if self._thread is None:
                self._start()
            with self._lock:
                try:
                    self._queue.put_nowait(record)
                except queue.Full:
                    full = True
                else:
                    self._accepted += 1
                    full = False
            if full:
                self._drop(1, sc.ES_DROP_QUEUE_FULL)
                self._report("queue_full", "agentwatch: the Elasticsearch log queue is full (%d records); dropping "
                             "records (counted in %s)", self.queue_size, sc.METRIC_ES_DROPPED_RECORDS)
        except Exception:  # noqa: BLE001 - the agent must never see a logging failure
            _log.debug("agentwatch: Elasticsearch handler write failed", exc_info=True)

    emit = write

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                thread = threading.Thread(target=self._run, name="agentwatch-elasticsearch", daemon=True)
                thread.start()
                self._thread = thread

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every record written so far is indexed or given up on; False on timeout."""
        timeout = self.shutdown_timeout if timeout is None else timeout
        with self._lock:
            target = self._accepted
            if self._settled >= target:
                return True
        self._wake()
        with self._settled_cond:
            return self._settled_cond.wait_for(lambda: self._settled >= target, timeout)

    def close(self, timeout: float | None = None) -> None:
        """Flush for up to `timeout` seconds (default `shutdown_timeout`), then stop the thread. Records that
        could not be sent by then are counted as dropped (`error.type=shutdown`)."""
        if self._closed:
            return
        self._closed = True
        if self._atexit_registered:
            atexit.unregister(self.close)
        timeout = self.shutdown_timeout if timeout is None else timeout
        self._deadline = time.monotonic() + timeout
        self._stopping.set()
        self._wake()
        thread = self._thread
        if thread is not None and thread.is_alive() and thread is not threading.current_thread():
            thread.join(timeout)
        with self._lock:
            left = self._accepted - self._settled
        if left > 0:
            self._settle(dropped=left, reason=sc.ES_DROP_SHUTDOWN)
            _log.warning("agentwatch: %d log records were still unsent to Elasticsearch at shutdown", left)

    shutdown = close

    def stats(self) -> dict[str, Any]:
        """Counters: records queued, indexed, failed (rejected or retries exhausted), dropped, resent."""
        with self._lock:
            return {"queued": self._accepted - self._settled, "indexed": self._indexed, "failed": self._failed,
                    "dropped": self._dropped, "retried": self._retried, "errors": dict(self._errors)}

    # --- accounting
    def _wake(self) -> None:
        try:
            self._queue.put_nowait(_WAKE)
        except queue.Full:
            pass  # a full queue keeps the worker busy anyway

    def _drop(self, count: int, reason: str) -> None:
        with self._lock:
            self._dropped += count
        self._count(count, reason)

    def _count(self, count: int, reason: str) -> None:
        if self._dropped_counter is not None and count:
            try:
                self._dropped_counter.add(count, {sc.ERROR_TYPE: reason})
            except Exception:  # noqa: BLE001
                pass

    def _settle(self, *, indexed: int = 0, failed: int = 0, dropped: int = 0, reason: str | None = None,
                errors: Mapping[str, int] | None = None) -> None:
        with self._lock:
            self._indexed += indexed
            self._failed += failed
            self._dropped += dropped
            for kind, n in (errors or {}).items():
                if kind not in self._errors and len(self._errors) >= _MAX_ERROR_KINDS:
                    kind = sc.ERROR_OTHER
                self._errors[kind] += n
            self._settled += indexed + failed + dropped
            self._settled_cond.notify_all()
        if reason is not None:
            self._count(failed + dropped, reason)

    def _report(self, key: str, message: str, *args: Any) -> None:
        now = time.monotonic()
        if now - self._last_report.get(key, -_REPORT_INTERVAL_S) >= _REPORT_INTERVAL_S:
            self._last_report[key] = now
            _log.warning(message, *args)

    # --- the worker
    def _run(self) -> None:
        try:
            from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY, attach, set_value

            attach(set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))  # no HTTP-client spans for our requests
        except Exception:  # noqa: BLE001
            pass
        while True:
            batch = self._next_batch()
            if batch:
                try:
                    self._send(batch)
                except Exception:  # noqa: BLE001 - the worker must outlive any bug
                    _log.warning("agentwatch: Elasticsearch handler error (records dropped)", exc_info=True)
                    self._settle(failed=len(batch), reason=sc.ES_DROP_REJECTED, errors={"agentwatch_error": 1})
            elif self._stopping.is_set() and self._queue.empty():
                return

    def _next_batch(self) -> list[Mapping[str, Any]]:
        batch: list[Mapping[str, Any]] = []
        linger_until: float | None = None
        while len(batch) < self.batch_size:
            if self._stopping.is_set():
                timeout = 0.0
            elif linger_until is None:
                timeout = self.flush_interval
            else:
                timeout = linger_until - time.monotonic()
            try:
                item = self._queue.get(timeout=timeout) if timeout > 0 else self._queue.get_nowait()
            except queue.Empty:
                if batch or self._stopping.is_set():
                    break
                continue
            if item is _WAKE:
                if batch:
                    break
                continue
            batch.append(item)
            if linger_until is None:
                linger_until = time.monotonic() + self.flush_interval
        return batch

    def _serialize(self, batch: Sequence[Mapping[str, Any]]) -> list[bytes]:
        docs = []
        bad = 0
        for record in batch:
            try:
                doc = {**record, **self._ds_fields}
                docs.append(json.dumps(doc, default=str, ensure_ascii=False, separators=(",", ":")).encode())
            except (TypeError, ValueError):
                bad += 1
        if bad:
            self._settle(failed=bad, reason=sc.ES_DROP_SERIALIZATION, errors={"serialization": bad})
        return docs

    def _send(self, batch: Sequence[Mapping[str, Any]]) -> None:
        pending = self._serialize(batch)
        attempt = 0
        while pending:
            pending, problem = self._bulk(pending)
            if not pending:
                return
            if attempt >= self.max_retries:
                self._settle(failed=len(pending), reason=sc.ES_DROP_RETRIES_EXHAUSTED,
                             errors={"retries_exhausted": len(pending)})
                self._report("exhausted", "agentwatch: gave up on %d log records for Elasticsearch after %d "
                             "retries (%s)", len(pending), self.max_retries, problem)
                return
            delay = min(self.max_backoff, self.initial_backoff * 2 ** attempt) * random.uniform(0.5, 1.0)
            if not self._sleep(delay):
                self._settle(dropped=len(pending), reason=sc.ES_DROP_SHUTDOWN)
                self._report("shutdown", "agentwatch: %d log records for Elasticsearch dropped at shutdown (%s)",
                             len(pending), problem)
                return
            attempt += 1
            with self._lock:
                self._retried += len(pending)

    def _sleep(self, delay: float) -> bool:
        """Back off; False when shutting down and the deadline leaves no time for another try."""
        if self._stopping.is_set():
            left = (self._deadline or 0.0) - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(delay, left))
            return True
        self._stopping.wait(delay)  # returns early at shutdown: try once more straight away
        return True

    def _bulk(self, docs: list[bytes]) -> tuple[list[bytes], str]:
        """One pass over `docs`: returns the documents to resend and a word on why."""
        from elasticsearch import helpers

        actions = ({"_op_type": "create", "_index": self.index, "_source": doc} for doc in docs)
        results: list[tuple[bool, dict[str, Any]]] = []
        failure: BaseException | None = None
        try:
            for result in helpers.streaming_bulk(
                    self._client, actions, chunk_size=self.batch_size, max_chunk_bytes=self.max_batch_bytes,
                    raise_on_error=False, raise_on_exception=False, max_retries=0, yield_ok=True):
                results.append(result)
        except Exception as exc:  # noqa: BLE001 - connection refused, timeout, TLS: resend what is left
            failure = exc
        retry: list[bytes] = []
        indexed = 0
        rejected: collections.Counter[str] = collections.Counter()
        sample = ""
        problem = describe_error(failure, self._settings) if failure is not None else ""
        for i, doc in enumerate(docs):
            if i >= len(results):
                retry.append(doc)
                continue
            ok, item = results[i]
            if ok:
                indexed += 1
                continue
            info = next(iter(item.values()), {}) if item else {}
            status = info.get("status")
            error = info.get("error")
            exception = info.get("exception")  # set when the whole request failed
            kind = _error_kind(error, status, exception)
            if status in RETRY_STATUSES or not isinstance(status, int):
                retry.append(doc)
                problem = problem or f"HTTP {status}: {kind}"
                continue
            rejected[kind] += 1
            if not sample:
                if exception is not None:
                    sample = f"{status} {kind}: {describe_error(exception, self._settings)}"
                else:
                    reason = error.get("reason", "") if isinstance(error, dict) else str(error or "")
                    sample = f"{status} {kind}: {reason}"
        self._settle(indexed=indexed)
        if rejected:
            count = sum(rejected.values())
            self._settle(failed=count, reason=sc.ES_DROP_REJECTED, errors=rejected)
            self._report("rejected", "agentwatch: Elasticsearch rejected %d log records (%s)", count,
                         scrub(sample, self._settings))
        return retry, problem


def _error_kind(error: Any, status: Any, exception: Any = None) -> str:
    """The Elasticsearch error type of a failed item (or of the failed request), e.g.
    mapper_parsing_exception; http_<status> when the answer names none."""
    if isinstance(error, dict) and error.get("type"):
        return str(error["type"])[:100]
    body = getattr(exception, "body", None)
    if isinstance(body, dict) and isinstance(body.get("error"), dict) and body["error"].get("type"):
        return str(body["error"]["type"])[:100]
    return f"http_{status}"


def open_handler(es: ElasticsearchSettings, *, meter: Any = None, **options: Any) -> ElasticsearchHandler:
    """The handler for the settings, with its dropped-records counter on `meter` (or the global meter)."""
    if meter is None:
        from opentelemetry import metrics

        meter = metrics.get_meter("agentwatch")
    counter = meter.create_counter(
        sc.METRIC_ES_DROPPED_RECORDS, unit=sc.UNIT_RECORD,
        description="Log records the Elasticsearch handler could not deliver, by error.type "
                    "(queue_full, rejected, retries_exhausted, shutdown, serialization).")
    warn_insecure(es)
    handler = ElasticsearchHandler(build_client(es, quiet=True), es.namespace, queue_size=es.queue_size,
                                   dropped_counter=counter, settings=es, **options)
    _log.debug("agentwatch: log records go to Elasticsearch data stream %s at %s", handler.index, es.url)
    return handler


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
