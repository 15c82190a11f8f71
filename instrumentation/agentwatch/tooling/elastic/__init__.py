"""agentwatch's log records in Elasticsearch, the operator's side: the index template and ILM policy, their
setup, the collector exporter settings, and the run timeline behind `agentwatch logs`.

The records are the ECS JSON records of agentwatch.runtime.logs (one per LLM call, agent run and tool call). They
go to the data stream `logs-agentwatch-<namespace>`, written either

* straight from the agent by `agentwatch.runtime.elasticsearch.ElasticsearchHandler` (`AGENTWATCH_ES_URL`, or
  `agentwatch.init(elasticsearch_url=...)`), or
* by the OpenTelemetry Collector's elasticsearch exporter in ECS mapping mode, with the settings of
  `collector_exporter_config()`, which produce documents with the same field names.

    mappings.py   the index template (field types) and the ILM policy
    setup.py      setup(): installs both, idempotently (`agentwatch es setup`)
    exporter.py   collector_exporter_config() (`agentwatch es collector-config`)
    timeline.py   find_records() and build_timelines() (`agentwatch logs`)

The client (`build_client`, `describe_error`, `scrub`, `warn_insecure`) lives with the in-agent handler in
`agentwatch.runtime.elasticsearch.client`, which the runtime uses without importing the tooling; it is
re-exported here for the commands. No ingest pipeline is needed: documents arrive with their final field
names from both paths. Credentials (API key, password) never appear in a log line, an error message or a repr.
"""

from agentwatch.config import data_stream_name
from agentwatch.runtime.elasticsearch.client import build_client, describe_error, scrub, warn_insecure
from agentwatch.tooling.elastic.exporter import (
    COLLECTOR_EXPORTER, COLLECTOR_FILTER, COLLECTOR_MAPPING_MODE, COLLECTOR_PIPELINE, COLLECTOR_TRANSFORM,
    collector_exporter_config,
)
from agentwatch.tooling.elastic.mappings import (
    CONTENT, CONTENT_FIELDS, FIELD_MAPPINGS, MANAGED_BY, ROLLOVER_MAX_AGE, ROLLOVER_MAX_PRIMARY_SHARD_SIZE,
    TEMPLATE_PRIORITY, custom_component_name, ilm_policy, index_template, policy_name, template_name,
)
from agentwatch.tooling.elastic.setup import SetupChange, setup
from agentwatch.tooling.elastic.timeline import (
    TimelineEvent, TraceTimeline, agent_runs_query, build_timelines, find_records, get_field, since_to_date_math,
    trace_query,
)

__all__ = [
    "COLLECTOR_EXPORTER", "COLLECTOR_FILTER", "COLLECTOR_MAPPING_MODE", "COLLECTOR_PIPELINE", "COLLECTOR_TRANSFORM",
    "CONTENT", "CONTENT_FIELDS", "FIELD_MAPPINGS", "MANAGED_BY", "ROLLOVER_MAX_AGE", "ROLLOVER_MAX_PRIMARY_SHARD_SIZE",
    "TEMPLATE_PRIORITY", "SetupChange", "TimelineEvent", "TraceTimeline", "agent_runs_query", "build_client",
    "build_timelines", "collector_exporter_config", "custom_component_name", "data_stream_name", "describe_error",
    "find_records", "get_field", "ilm_policy", "index_template", "policy_name", "scrub", "since_to_date_math",
    "setup", "template_name", "trace_query", "warn_insecure",
]
