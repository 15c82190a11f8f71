"""The collector path: OpenTelemetry Collector (contrib) settings whose `elasticsearch` exporter writes the
same data stream, with the same field names, as the in-agent handler (`agentwatch es collector-config`)."""

from __future__ import annotations

from typing import Any

from agentwatch import semconv as sc
from agentwatch.config import data_stream_name
from agentwatch.runtime.logs import ECS_VERSION

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
