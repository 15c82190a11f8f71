"""The telemetry contract: every span, metric and attribute name agentwatch emits or queries.

Instrumentors, the span processor, the dashboard and alert generators all import names from here, so a
name is spelled once. Names follow the OpenTelemetry GenAI semantic conventions as they stand in
open-telemetry/semantic-conventions-genai; `agentwatch.*` names are ours, for what the conventions do not
cover (cost, unpriced calls, unavailable usage). Renamed conventions: the current name is written, the older
ones are read (the LEGACY_* names; README "Semantic-convention renames"). `gen_ai.*` names agentwatch writes
that the published registry does not have are listed in OWN_GEN_AI_NAMES (tests/test_semconv_conformance.py).
"""

from __future__ import annotations

from typing import Final

# The instrumentation scope of everything agentwatch emits (tracer, meter, logger), in Python and in the
# collector's agentwatch connector alike (Prometheus labels the series with it: otel_scope_name).
SCOPE_NAME: Final = "agentwatch"

# --- Span and operation names -------------------------------------------------------------------------
OP_CHAT: Final = "chat"
OP_EMBEDDINGS: Final = "embeddings"
OP_INVOKE_AGENT: Final = "invoke_agent"
OP_EXECUTE_TOOL: Final = "execute_tool"
OP_TEXT_COMPLETION: Final = "text_completion"
OP_GENERATE_CONTENT: Final = "generate_content"
# The inference operations: a span with one of these is an LLM call (a "step" of an agent run).
INFERENCE_OPERATIONS: Final = frozenset({OP_CHAT, OP_TEXT_COMPLETION, OP_GENERATE_CONTENT, OP_EMBEDDINGS})

PROVIDER_OPENAI: Final = "openai"
PROVIDER_ANTHROPIC: Final = "anthropic"

# --- gen_ai.* span attributes ---------------------------------------------------------------------------
GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
GEN_AI_REQUEST_MAX_TOKENS: Final = "gen_ai.request.max_tokens"
GEN_AI_REQUEST_TEMPERATURE: Final = "gen_ai.request.temperature"
GEN_AI_REQUEST_TOP_P: Final = "gen_ai.request.top_p"
GEN_AI_REQUEST_TOP_K: Final = "gen_ai.request.top_k"
GEN_AI_REQUEST_STREAM: Final = "gen_ai.request.stream"
GEN_AI_REQUEST_ENCODING_FORMATS: Final = "gen_ai.request.encoding_formats"
GEN_AI_RESPONSE_MODEL: Final = "gen_ai.response.model"
GEN_AI_RESPONSE_ID: Final = "gen_ai.response.id"
GEN_AI_RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: Final = "gen_ai.response.time_to_first_chunk"
GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: Final = "gen_ai.usage.cache_read.input_tokens"
# renamed from gen_ai.usage.cache_creation.input_tokens (read as LEGACY_USAGE_CACHE_WRITE_TOKENS)
GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS: Final = "gen_ai.usage.cache_write.input_tokens"
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: Final = "gen_ai.usage.reasoning.output_tokens"
GEN_AI_OUTPUT_TYPE: Final = "gen_ai.output.type"
GEN_AI_INPUT_MESSAGES: Final = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
GEN_AI_SYSTEM_INSTRUCTIONS: Final = "gen_ai.system_instructions"
GEN_AI_TOKEN_TYPE: Final = "gen_ai.token.type"
GEN_AI_AGENT_NAME: Final = "gen_ai.agent.name"
GEN_AI_TOOL_NAME: Final = "gen_ai.tool.name"
GEN_AI_TOOL_CALL_ID: Final = "gen_ai.tool.call.id"
GEN_AI_CONVERSATION_ID: Final = "gen_ai.conversation.id"
GEN_AI_TOOL_TYPE: Final = "gen_ai.tool.type"
GEN_AI_TOOL_CALL_ARGUMENTS: Final = "gen_ai.tool.call.arguments"
GEN_AI_TOOL_CALL_RESULT: Final = "gen_ai.tool.call.result"
GEN_AI_AGENT_ID: Final = "gen_ai.agent.id"
# Older names still emitted by some instrumentations (e.g. OpenLLMetry); read, never written.
LEGACY_GEN_AI_SYSTEM: Final = "gen_ai.system"
LEGACY_USAGE_PROMPT_TOKENS: Final = "gen_ai.usage.prompt_tokens"
LEGACY_USAGE_COMPLETION_TOKENS: Final = "gen_ai.usage.completion_tokens"
LEGACY_USAGE_CACHE_READ_TOKENS: Final = "gen_ai.usage.cache_read_input_tokens"
LEGACY_USAGE_CACHE_WRITE_TOKENS: Final = ("gen_ai.usage.cache_creation.input_tokens",
                                          "gen_ai.usage.cache_creation_input_tokens")
LEGACY_LLM_REQUEST_TYPE: Final = "llm.request.type"
# The operation an older instrumentation's `llm.request.type` value implies.
LEGACY_LLM_REQUEST_TYPES: Final = {"chat": OP_CHAT, "completion": OP_TEXT_COMPLETION, "embedding": OP_EMBEDDINGS}
LEGACY_USAGE_REASONING_TOKENS: Final = ("gen_ai.usage.reasoning_tokens", "llm.usage.reasoning_tokens")
MCP_METHOD_NAME: Final = "mcp.method.name"
SERVICE_NAME: Final = "service.name"
SERVICE_NAMESPACE: Final = "service.namespace"
SERVICE_INSTANCE_ID: Final = "service.instance.id"
HOST_NAME: Final = "host.name"
OS_TYPE: Final = "os.type"
# The attribute of the one series an OTel SDK (and the collector's agentwatch connector) folds the
# points past a metric's cardinality limit into.
OTEL_METRIC_OVERFLOW: Final = "otel.metric.overflow"
SERVER_ADDRESS: Final = "server.address"
SERVER_PORT: Final = "server.port"
ERROR_TYPE: Final = "error.type"

TOOL_TYPE_FUNCTION: Final = "function"  # gen_ai.tool.type: the agent's side picks the arguments and runs it
MCP_METHOD_TOOLS_CALL: Final = "tools/call"

TOKEN_TYPE_INPUT: Final = "input"
TOKEN_TYPE_OUTPUT: Final = "output"

# --- agentwatch's own span attributes -------------------------------------------------------------------
AGENTWATCH_COST_USD: Final = "agentwatch.usage.cost_usd"
AGENTWATCH_COST_UNKNOWN: Final = "agentwatch.usage.cost_unknown"
AGENTWATCH_USAGE_UNAVAILABLE: Final = "agentwatch.usage.unavailable"
AGENTWATCH_STREAM_OUTCOME: Final = "agentwatch.stream.outcome"  # completed | closed | abandoned | error
AGENTWATCH_STREAM_USAGE_INJECTED: Final = "agentwatch.stream.usage_injected"
AGENTWATCH_AGENT_TOOL_ERRORS: Final = "agentwatch.agent.tool_errors"
AGENTWATCH_RUN_UNPRICED_CALLS: Final = "agentwatch.agent.unpriced_calls"
AGENTWATCH_RUN_USAGE_UNAVAILABLE_CALLS: Final = "agentwatch.agent.usage_unavailable_calls"
AGENTWATCH_RUN_FAILURE_REASON: Final = "agentwatch.agent.failure_reason"
AGENTWATCH_RUN_FROM_ROOT_SPAN: Final = "agentwatch.agent.from_root_span"
# Resource attribute of a process running this package with metrics exported in-process: the collector's
# agentwatch connector makes no metrics from its spans (they were counted in the process already).
AGENTWATCH_RESOURCE_METRICS_IN_PROCESS: Final = "agentwatch.metrics.in_process"
GEN_AI_INVOKE_AGENT_INFERENCE_CALLS_ATTR: Final = "gen_ai.invoke_agent.inference_calls"
GEN_AI_INVOKE_AGENT_TOOL_CALLS_ATTR: Final = "gen_ai.invoke_agent.tool_calls"

# Current names of the semantic-conventions-genai registry that the newest opentelemetry-semantic-conventions
# release does not carry yet (its gen_ai attributes lag the registry); drop each when the package ships it.
NEWER_REGISTRY_NAMES: Final = frozenset({
    GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS,  # renamed from gen_ai.usage.cache_creation.input_tokens
})

# gen_ai.* names agentwatch writes that the published semantic-conventions registry does not (yet) have:
# the run totals and agent-level metrics of the design's telemetry contract. Everything else agentwatch
# writes under gen_ai.* must be in the registry (tests/test_semconv_conformance.py).
OWN_GEN_AI_NAMES: Final = frozenset({
    GEN_AI_INVOKE_AGENT_INFERENCE_CALLS_ATTR,  # span attribute: steps of the run
    GEN_AI_INVOKE_AGENT_TOOL_CALLS_ATTR,       # span attribute: tool calls of the run
    "gen_ai.invoke_agent.duration",            # metric (the registry has gen_ai.client.operation.duration)
    "gen_ai.execute_tool.duration",            # metric
    "gen_ai.client.inference",                 # log event name of one LLM call
    "gen_ai.invoke_agent",                     # log event name of one run
    "gen_ai.execute_tool",                     # log event name of one tool call
})

# Values of error.type we set ourselves (otherwise the exception's class name or the HTTP status code).
ERROR_STREAM_ABANDONED: Final = "stream_abandoned"
ERROR_BUDGET_EXCEEDED: Final = "budget_exceeded"
ERROR_RUN_FAILED: Final = "run_failed"  # run.fail() without an exception
# A tool call that failed without raising (MCP `isError: true`, a LangChain ToolMessage with status "error");
# the value the MCP semantic conventions prescribe.
ERROR_TOOL: Final = "tool_error"
ERROR_OTHER: Final = "_OTHER"

# --- Metric instruments ---------------------------------------------------------------------------------
METRIC_CLIENT_TOKEN_USAGE: Final = "gen_ai.client.token.usage"
METRIC_CLIENT_OPERATION_DURATION: Final = "gen_ai.client.operation.duration"
METRIC_CLIENT_TIME_TO_FIRST_CHUNK: Final = "gen_ai.client.operation.time_to_first_chunk"
METRIC_INVOKE_AGENT_DURATION: Final = "gen_ai.invoke_agent.duration"
METRIC_INVOKE_AGENT_INFERENCE_CALLS: Final = "gen_ai.invoke_agent.inference_calls"
METRIC_INVOKE_AGENT_TOOL_CALLS: Final = "gen_ai.invoke_agent.tool_calls"
METRIC_EXECUTE_TOOL_DURATION: Final = "gen_ai.execute_tool.duration"
METRIC_LLM_COST: Final = "agentwatch.llm.cost"
METRIC_AGENT_COST: Final = "agentwatch.agent.cost"
METRIC_AGENT_TOKEN_USAGE: Final = "agentwatch.agent.token.usage"
METRIC_PRICING_UNPRICED_CALLS: Final = "agentwatch.pricing.unpriced_calls"
METRIC_INTERNAL_ERRORS: Final = "agentwatch.internal.errors"
METRIC_EVICTED_RUNS: Final = "agentwatch.processor.evicted_runs"

UNIT_TOKEN: Final = "{token}"
UNIT_SECONDS: Final = "s"
UNIT_USD: Final = "USD"
UNIT_CALL: Final = "{call}"
UNIT_ERROR: Final = "{error}"
UNIT_INFERENCE_CALL: Final = "{inference_call}"
UNIT_TOOL_CALL: Final = "{tool_call}"
UNIT_RUN: Final = "{run}"

# Semantic-convention advisory bucket boundaries.
TOKEN_USAGE_BUCKETS: Final = (
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
)
DURATION_BUCKETS: Final = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)
TIME_TO_FIRST_CHUNK_BUCKETS: Final = DURATION_BUCKETS
# Per-call cost in USD: a fine low end (cheap models cost fractions of a cent per call).
LLM_CALL_COST_BUCKETS: Final = (0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0)

# Agent-level metrics: base boundaries here; thresholds.py adds every threshold value as a boundary.
INVOKE_AGENT_DURATION_BUCKETS: Final = DURATION_BUCKETS + (163.84, 327.68, 655.36, 1310.72)
EXECUTE_TOOL_DURATION_BUCKETS: Final = DURATION_BUCKETS
INFERENCE_CALLS_BUCKETS: Final = (1, 2, 3, 5, 8, 10, 20, 30, 50, 100, 200)
TOOL_CALLS_BUCKETS: Final = (0, 1, 2, 3, 5, 8, 10, 20, 30, 50, 100)
AGENT_COST_BUCKETS: Final = (0.0001, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 2.5, 5.0, 10.0, 50.0)
AGENT_TOKEN_USAGE_BUCKETS: Final = TOKEN_USAGE_BUCKETS

# Prometheus series names (what dashboards and alerts query). The Prometheus exporter and the collector
# turn "." into "_" and append the unit ("_seconds", "_USD") and "_total" for counters.
PROM_CLIENT_TOKEN_USAGE: Final = "gen_ai_client_token_usage"
PROM_CLIENT_OPERATION_DURATION: Final = "gen_ai_client_operation_duration_seconds"
PROM_CLIENT_TIME_TO_FIRST_CHUNK: Final = "gen_ai_client_operation_time_to_first_chunk_seconds"
PROM_INVOKE_AGENT_DURATION: Final = "gen_ai_invoke_agent_duration_seconds"
PROM_INVOKE_AGENT_INFERENCE_CALLS: Final = "gen_ai_invoke_agent_inference_calls"
PROM_INVOKE_AGENT_TOOL_CALLS: Final = "gen_ai_invoke_agent_tool_calls"
PROM_EXECUTE_TOOL_DURATION: Final = "gen_ai_execute_tool_duration_seconds"
PROM_LLM_COST: Final = "agentwatch_llm_cost_USD_total"
PROM_AGENT_COST: Final = "agentwatch_agent_cost_USD"
PROM_AGENT_TOKEN_USAGE: Final = "agentwatch_agent_token_usage"
PROM_PRICING_UNPRICED_CALLS: Final = "agentwatch_pricing_unpriced_calls_total"
# Every histogram above is exposed as three cumulative series: `<name>_bucket` (with `le`), `_count`, `_sum`.
PROM_BUCKET_SUFFIX: Final = "_bucket"
PROM_COUNT_SUFFIX: Final = "_count"
PROM_SUM_SUFFIX: Final = "_sum"
PROM_HISTOGRAMS: Final = (
    PROM_CLIENT_TOKEN_USAGE, PROM_CLIENT_OPERATION_DURATION, PROM_CLIENT_TIME_TO_FIRST_CHUNK,
    PROM_INVOKE_AGENT_DURATION, PROM_INVOKE_AGENT_INFERENCE_CALLS, PROM_INVOKE_AGENT_TOOL_CALLS,
    PROM_EXECUTE_TOOL_DURATION, PROM_AGENT_COST, PROM_AGENT_TOKEN_USAGE,
)
PROM_COUNTERS: Final = (PROM_LLM_COST, PROM_PRICING_UNPRICED_CALLS)
# Prometheus' own series of the alerts its rules evaluate (labels alertname, alertstate, severity, ...).
PROM_ALERTS: Final = "ALERTS"

# --- Log records (ECS field names, plus gen_ai.* for what ECS lacks) ------------------------------------
LOG_EVENT_LLM_CALL: Final = "gen_ai.client.inference"
LOG_EVENT_AGENT_RUN: Final = "gen_ai.invoke_agent"
LOG_EVENT_TOOL_CALL: Final = "gen_ai.execute_tool"
# ECS fields of every record (the JSON-lines writer, the Elasticsearch handler and the collector's
# elasticsearch exporter write them; `agentwatch logs` reads them).
ECS_TIMESTAMP: Final = "@timestamp"
ECS_MESSAGE: Final = "message"
ECS_LOG_LEVEL: Final = "log.level"
ECS_TRACE_ID: Final = "trace.id"
ECS_SPAN_ID: Final = "span.id"

# --- Elasticsearch (logs shipped straight from the agent, or by the collector's elasticsearch exporter) ---
# Data stream naming scheme `{type}-{dataset}-{namespace}`: logs-agentwatch-default, logs-agentwatch-prod, ...
ES_DATA_STREAM_TYPE: Final = "logs"
ES_DATASET: Final = "agentwatch"
ES_DEFAULT_NAMESPACE: Final = "default"
ES_DATA_STREAM_PATTERN: Final = "logs-agentwatch-{namespace}"
ES_DEFAULT_RETENTION_DAYS: Final = 30
# Records the Elasticsearch handler could not deliver, by `error.type` (the reasons: runtime/elasticsearch.py).
METRIC_ES_DROPPED_RECORDS: Final = "agentwatch.elasticsearch.dropped_records"
PROM_ES_DROPPED_RECORDS: Final = "agentwatch_elasticsearch_dropped_records_total"
UNIT_RECORD: Final = "{record}"

# --- Resource marker and the collector components (otelcol-agentwatch) -----------------------------------
# A process running the agentwatch Python package sets this RESOURCE attribute (bool true): its metrics were
# emitted in-process, so the collector's agentwatch connector makes none from its spans (no double counting
# when a fleet mixes Python and other agents). The agentwatch processor still prices its spans lacking cost.
AGENTWATCH_RESOURCE_METRICS_IN_PROCESS: Final = "agentwatch.metrics.in_process"
# The collector components' own telemetry (the collector's internal metrics, :8888).
METRIC_COLLECTOR_PRICED_SPANS: Final = "agentwatch.collector.priced_spans"
METRIC_COLLECTOR_UNPRICED_SPANS: Final = "agentwatch.collector.unpriced_spans"
METRIC_COLLECTOR_EVICTED_TRACES: Final = "agentwatch.collector.evicted_traces"
METRIC_COLLECTOR_TRACES_IN_FLIGHT: Final = "agentwatch.collector.traces_in_flight"
METRIC_COLLECTOR_SPANS_IN_FLIGHT: Final = "agentwatch.collector.spans_in_flight"
UNIT_SPAN: Final = "{span}"
UNIT_TRACE: Final = "{trace}"
