"""OpenTelemetry Collector (otelcol-contrib) configs: agent, gateway (Prometheus pull or remote write), standalone.

    artifacts(thresholds.load())  ->  {"collector/agent.yaml": "...", "collector/gateway.yaml": "...", ...}

    app --OTLP--> agent (DaemonSet/sidecar) --loadbalancing by trace ID--> gateway (Deployment + HPA) --> backends
    app --OTLP--> standalone (one node: agent and gateway in one process)       --> backends

The gateway's tail sampler keeps every errored trace, every trace longer than the p99-latency threshold and
every trace with a span whose `agentwatch.usage.cost_usd` is over the cost-per-run threshold, plus a
probabilistic share of the rest; those two numbers come from the threshold table, so these files are generated.
Everything that differs per deployment (backend addresses, credentials, the sampled share, content keys
allowed through) is an `${env:NAME:-default}` reference, resolved by the collector at start-up.

Pinned to otelcol-contrib OTELCOL_VERSION: only components and keys that exist there (and are not
deprecated there) are used. Notes on the choices:

* `numeric_attribute` compares int64 bounds against `Value.Int()`, which is 0 for a double attribute, so it
  cannot see a cost of $1.50; the cost policy is an `ottl_condition` (a real double comparison) instead.
* `decision_wait` is the latency threshold plus a margin: a run's root span (`invoke_agent`, which carries
  the run's total cost) ends last, so the decision must wait for runs as long as the threshold. Spans that
  arrive after a decision follow it through the decision caches.
* Logs take agentwatch.tooling.elastic's collector settings (`collector_exporter_config()`): only records of the
  `agentwatch` instrumentation scope, ECS mapping, into the data stream `agentwatch es setup` creates.
* Metrics reach the gateway through a second loadbalancing exporter routed by resource, so every series of
  one process is exposed by exactly one gateway replica (no duplicate series across replicas).
* The prometheus exporter's `translation_strategy: UnderscoreEscapingWithSuffixes` turns
  `agentwatch.llm.cost` (counter, unit USD) into `agentwatch_llm_cost_USD_total` and
  `gen_ai.invoke_agent.duration` (unit s) into `gen_ai_invoke_agent_duration_seconds_bucket`: the contract's
  names (semconv.PROM_*). Resource attributes stay on `target_info` (no resource_to_telemetry_conversion):
  every resource attribute as a label multiplies the series count.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agentwatch.tooling import elastic
from agentwatch import config
from agentwatch import semconv as sc
from agentwatch.tooling.generate import _yaml
from agentwatch.thresholds import Thresholds, ThresholdsError

OTELCOL_VERSION = "0.138.0"
OTELCOL_IMAGE = f"otel/opentelemetry-collector-contrib:{OTELCOL_VERSION}"

COLLECTOR_DIR = "collector"
AGENT_FILE = f"{COLLECTOR_DIR}/agent.yaml"
GATEWAY_FILE = f"{COLLECTOR_DIR}/gateway.yaml"
GATEWAY_REMOTE_WRITE_FILE = f"{COLLECTOR_DIR}/gateway-remotewrite.yaml"
STANDALONE_FILE = f"{COLLECTOR_DIR}/standalone.yaml"

# Ports every manifest (compose, Kubernetes) must agree with; tests check that they do.
OTLP_GRPC_PORT = 4317
OTLP_HTTP_PORT = 4318
PROMETHEUS_PORT = 8889  # the prometheus exporter: agentwatch's metrics, for Prometheus to scrape
TELEMETRY_PORT = 8888  # the collector's own metrics (otelcol_*)
HEALTH_PORT = 13133
PPROF_PORT = 1777
ZPAGES_PORT = 55679

GATEWAY_HEADLESS_SERVICE = "agentwatch-gateway-headless"  # the Kubernetes headless Service the agents resolve

# Environment variables the configs read (defaults in brackets are for the bundled docker compose stack).
ENV_GATEWAY_HOSTNAME = "AGENTWATCH_GATEWAY_HOSTNAME"
ENV_ALLOWED_CONTENT_KEYS = "AGENTWATCH_ALLOWED_CONTENT_KEYS"
ENV_SAMPLING_PERCENTAGE = "AGENTWATCH_SAMPLING_PERCENTAGE"
ENV_TRACES_ENDPOINT = "AGENTWATCH_TRACES_ENDPOINT"
ENV_TRACES_INSECURE = "AGENTWATCH_TRACES_INSECURE"
ENV_REMOTE_WRITE_URL = "AGENTWATCH_REMOTE_WRITE_URL"
ENV_REMOTE_WRITE_TENANT = "AGENTWATCH_REMOTE_WRITE_TENANT"
ENV_CLUSTER = "AGENTWATCH_CLUSTER"
# Elasticsearch: the same variables `agentwatch es setup` and the agent's own log handler read.
ENV_ES_URL = config.ENV_ES_URL
ENV_ES_USERNAME = config.ENV_ES_USERNAME
ENV_ES_PASSWORD = config.ENV_ES_PASSWORD
ENV_ES_API_KEY = config.ENV_ES_API_KEY
ENV_ES_CA_CERTS = config.ENV_ES_CA_CERTS

DEFAULT_TRACES_ENDPOINT = f"jaeger:{OTLP_GRPC_PORT}"
DEFAULT_ES_URL = "http://elasticsearch:9200"
DEFAULT_REMOTE_WRITE_URL = "http://mimir:9009/api/v1/push"
DEFAULT_SAMPLING_PERCENTAGE = 10  # share of the traces no policy keeps: ok, fast and cheap
DECISION_MARGIN_S = 30  # decision_wait = latency threshold + this
EXPECTED_TRACES_PER_SECOND = 200  # per gateway replica: sizes num_traces and the decision caches (docs/scaling.md)

# Content attributes (prompts, completions, tool arguments, results and definitions; the same list the
# Elasticsearch mapping stores unindexed): masked by the agent collector unless listed in
# $AGENTWATCH_ALLOWED_CONTENT_KEYS (a YAML list, e.g. '[gen_ai.input.messages]').
CONTENT_ATTRIBUTES = elastic.CONTENT_FIELDS
# Credentials that must never leave the node, whatever attribute they hide in (RE2 syntax).
SECRET_VALUE_PATTERNS = (
    r"sk-(?:ant-|proj-)?[A-Za-z0-9_\-]{20,}",
    r"(?i)bearer\s+[A-Za-z0-9._~+/\-]{20,}=*",
    r"AKIA[0-9A-Z]{16}",
)


def env(name: str, default: str | int | None = None) -> str:
    """A collector environment reference, `${env:NAME}` or `${env:NAME:-default}` (the value is parsed as YAML)."""
    return f"${{env:{name}}}" if default is None else f"${{env:{name}:-{default}}}"


def _num(value: float) -> str:
    return repr(float(value))


# --- components -----------------------------------------------------------------------------------------
def extensions(debug_host: str) -> dict[str, Any]:
    """health_check on all interfaces (probes), pprof and zpages on `debug_host` (localhost: port-forward)."""
    return {
        "health_check": {"endpoint": f"0.0.0.0:{HEALTH_PORT}"},
        "pprof": {"endpoint": f"{debug_host}:{PPROF_PORT}"},
        "zpages": {"endpoint": f"{debug_host}:{ZPAGES_PORT}"},
    }


def otlp_receiver() -> dict[str, Any]:
    return {"protocols": {
        "grpc": {"endpoint": f"0.0.0.0:{OTLP_GRPC_PORT}", "max_recv_msg_size_mib": 16},
        "http": {"endpoint": f"0.0.0.0:{OTLP_HTTP_PORT}"},
    }}


def memory_limiter() -> dict[str, Any]:
    # Percentages of the container's memory limit (cgroup); must run first in every pipeline.
    return {"check_interval": "1s", "limit_percentage": 80, "spike_limit_percentage": 20}


def resource_detection() -> dict[str, Any]:
    # env: OTEL_RESOURCE_ATTRIBUTES of the collector (the manifests put k8s.node.name there); system: host.name.
    # override=false: what the application says about itself wins.
    return {"detectors": ["env", "system"], "timeout": "2s", "override": False,
            "system": {"hostname_sources": ["os"]}}


def redaction() -> dict[str, Any]:
    return {
        "allow_all_keys": True,
        "blocked_key_patterns": [f"^{key.replace('.', '[.]')}$" for key in CONTENT_ATTRIBUTES],
        "ignored_keys": env(ENV_ALLOWED_CONTENT_KEYS, "[]"),
        "blocked_values": list(SECRET_VALUE_PATTERNS),
        "summary": "info",
    }


def batch(size: int, timeout: str) -> dict[str, Any]:
    return {"send_batch_size": size, "send_batch_max_size": size * 2, "timeout": timeout}


def decision_wait_s(table: Thresholds) -> int:
    latency = table["p99_latency"]
    return int(latency.value) + DECISION_MARGIN_S


def tail_sampling(table: Thresholds) -> dict[str, Any]:
    """Keep errored, slow and costly traces (thresholds from the table) and a share of the rest."""
    latency, cost = table["p99_latency"], table["cost_per_run"]
    if latency.unit != "s" or cost.unit != "USD":
        raise ThresholdsError(f"{table.source}: the collector's tail sampler needs p99_latency in s and cost_per_run "
                              f"in USD, got {latency.unit!r} and {cost.unit!r}")
    wait = decision_wait_s(table)
    cost_condition = f'attributes["{sc.AGENTWATCH_COST_USD}"] {cost.comparison} {_num(cost.value)}'
    expected = EXPECTED_TRACES_PER_SECOND
    return {
        "decision_wait": f"{wait}s",
        "num_traces": expected * (wait + 10),
        "expected_new_traces_per_sec": expected,
        "decision_cache": {"sampled_cache_size": expected * wait * 4, "non_sampled_cache_size": expected * wait * 4},
        "policies": [
            {"name": "errors", "type": "status_code", "status_code": {"status_codes": ["ERROR"]}},
            {"name": f"slower-than-{latency.display}", "type": "latency",
             "latency": {"threshold_ms": int(round(latency.value * 1000))}},
            {"name": f"costlier-than-{cost.value:g}-usd", "type": "ottl_condition",
             "ottl_condition": {"error_mode": "ignore",
                                "span": [cost_condition]}},
            {"name": "share-of-the-rest", "type": "probabilistic",
             "probabilistic": {"sampling_percentage": env(ENV_SAMPLING_PERCENTAGE, DEFAULT_SAMPLING_PERCENTAGE)}},
        ],
    }


def loadbalancing(routing_key: str) -> dict[str, Any]:
    return {
        "routing_key": routing_key,
        "protocol": {"otlp": {"timeout": "10s", "tls": {"insecure": True}}},
        "resolver": {"dns": {"hostname": env(ENV_GATEWAY_HOSTNAME, GATEWAY_HEADLESS_SERVICE),
                             "port": str(OTLP_GRPC_PORT), "interval": "5s"}},
    }


def prometheus_exporter() -> dict[str, Any]:
    return {
        "endpoint": f"0.0.0.0:{PROMETHEUS_PORT}",
        "translation_strategy": "UnderscoreEscapingWithSuffixes",
        "resource_to_telemetry_conversion": {"enabled": False},
        "enable_open_metrics": True,  # exemplars (trace_id) on histograms: from a panel to the trace
        "metric_expiration": "5m",
        "send_timestamps": False,
    }


def remote_write_exporter() -> dict[str, Any]:
    return {
        "endpoint": env(ENV_REMOTE_WRITE_URL, DEFAULT_REMOTE_WRITE_URL),
        "headers": {"X-Scope-OrgID": env(ENV_REMOTE_WRITE_TENANT, "anonymous")},
        "external_labels": {"cluster": env(ENV_CLUSTER, "default")},
        "add_metric_suffixes": True,
        "resource_to_telemetry_conversion": {"enabled": False},
        "target_info": {"enabled": True},
        "remote_write_queue": {"enabled": True, "queue_size": 10000, "num_consumers": 5},
        "retry_on_failure": {"enabled": True, "initial_interval": "5s", "max_interval": "30s",
                             "max_elapsed_time": "5m"},
        "timeout": "30s",
    }


def traces_exporter() -> dict[str, Any]:
    return {
        "endpoint": env(ENV_TRACES_ENDPOINT, DEFAULT_TRACES_ENDPOINT),
        "tls": {"insecure": env(ENV_TRACES_INSECURE, "true")},
        "sending_queue": {"enabled": True, "num_consumers": 4, "queue_size": 5000},
        "retry_on_failure": {"enabled": True},
    }


def elasticsearch_logs() -> dict[str, Any]:
    """agentwatch.tooling.elastic's collector settings (filter, ECS transform, exporter, pipeline), with our env refs:
    the same data stream and field names as `agentwatch es setup` and the agent's own handler."""
    settings = elastic.collector_exporter_config(sc.ES_DEFAULT_NAMESPACE, endpoint=env(ENV_ES_URL, DEFAULT_ES_URL),
                                                 api_key=env(ENV_ES_API_KEY, ""), ca_file=env(ENV_ES_CA_CERTS, ""))
    exporter = settings["exporters"][elastic.COLLECTOR_EXPORTER]
    exporter["user"] = env(ENV_ES_USERNAME, "")
    exporter["password"] = env(ENV_ES_PASSWORD, "")
    return settings


def telemetry() -> dict[str, Any]:
    return {
        "logs": {"level": "info"},
        "metrics": {"level": "normal", "readers": [
            {"pull": {"exporter": {"prometheus": {"host": "0.0.0.0", "port": TELEMETRY_PORT}}}},
        ]},
    }


def _config(receivers: dict[str, Any], processors: dict[str, Any], exporters: dict[str, Any],
            pipelines: dict[str, Any], debug_host: str) -> dict[str, Any]:
    ext = extensions(debug_host)
    return {
        "extensions": ext,
        "receivers": receivers,
        "processors": processors,
        "exporters": exporters,
        "service": {"extensions": list(ext), "telemetry": telemetry(), "pipelines": pipelines},
    }


def _pipeline(processors: list[str], exporters: list[str]) -> dict[str, Any]:
    return {"receivers": ["otlp"], "processors": processors, "exporters": exporters}


# --- the four configs -----------------------------------------------------------------------------------
def agent_config(table: Thresholds) -> dict[str, Any]:
    def edge() -> list[str]:
        return ["memory_limiter", "resourcedetection", "redaction/content", "batch"]

    return _config(
        {"otlp": otlp_receiver()},
        {"memory_limiter": memory_limiter(), "resourcedetection": resource_detection(),
         "redaction/content": redaction(), "batch": batch(1024, "1s")},
        {"loadbalancing": loadbalancing("traceID"), "loadbalancing/metrics": loadbalancing("resource")},
        {"traces": _pipeline(edge(), ["loadbalancing"]),
         "metrics": _pipeline(["memory_limiter", "resourcedetection", "batch"], ["loadbalancing/metrics"]),
         "logs": _pipeline(edge(), ["loadbalancing"])},
        debug_host="localhost",
    )


def _logs_pipeline(es: dict[str, Any], before: list[str]) -> tuple[str, dict[str, Any]]:
    pipeline = es["service"]["pipelines"][elastic.COLLECTOR_PIPELINE]
    return elastic.COLLECTOR_PIPELINE, _pipeline([*before, *pipeline["processors"], "batch"], pipeline["exporters"])


def gateway_config(table: Thresholds, remote_write: bool = False) -> dict[str, Any]:
    metrics_exporter = "prometheusremotewrite" if remote_write else "prometheus"
    es = elasticsearch_logs()
    logs_name, logs = _logs_pipeline(es, ["memory_limiter"])
    return _config(
        {"otlp": otlp_receiver()},
        {"memory_limiter": memory_limiter(), "tail_sampling": tail_sampling(table), **es["processors"],
         "batch": batch(8192, "5s")},
        {metrics_exporter: remote_write_exporter() if remote_write else prometheus_exporter(),
         "otlp/traces": traces_exporter(), **es["exporters"]},
        {"traces": _pipeline(["memory_limiter", "tail_sampling", "batch"], ["otlp/traces"]),
         "metrics": _pipeline(["memory_limiter", "batch"], [metrics_exporter]),
         logs_name: logs},
        debug_host="localhost",
    )


def standalone_config(table: Thresholds) -> dict[str, Any]:
    es = elasticsearch_logs()
    logs_name, logs = _logs_pipeline(es, ["memory_limiter", "resourcedetection", "redaction/content"])
    return _config(
        {"otlp": otlp_receiver()},
        {"memory_limiter": memory_limiter(), "resourcedetection": resource_detection(),
         "redaction/content": redaction(), "tail_sampling": tail_sampling(table), **es["processors"],
         "batch": batch(8192, "5s")},
        {"prometheus": prometheus_exporter(), "otlp/traces": traces_exporter(), **es["exporters"]},
        {"traces": _pipeline(["memory_limiter", "resourcedetection", "redaction/content", "tail_sampling", "batch"],
                             ["otlp/traces"]),
         "metrics": _pipeline(["memory_limiter", "resourcedetection", "batch"], ["prometheus"]),
         logs_name: logs},
        debug_host="0.0.0.0",
    )


_HEADER = """\
Generated by `agentwatch generate` from the threshold table ({source}); do not edit by hand.
Image {image}.
{role}

Environment (all optional; defaults fit deploy/compose):
{env}"""

_ENV_DOCS = {
    ENV_GATEWAY_HOSTNAME: f"DNS name listing every gateway pod (headless Service) [{GATEWAY_HEADLESS_SERVICE}]",
    ENV_ALLOWED_CONTENT_KEYS: "content attributes let through unmasked, a YAML list like "
                              f"'[{sc.GEN_AI_INPUT_MESSAGES}]' [[]]",
    ENV_SAMPLING_PERCENTAGE: "percent of the traces no policy keeps that are kept anyway "
                             f"[{DEFAULT_SAMPLING_PERCENTAGE}]",
    ENV_TRACES_ENDPOINT: f"OTLP/gRPC traces backend, Jaeger or Tempo [{DEFAULT_TRACES_ENDPOINT}]",
    ENV_TRACES_INSECURE: "plaintext gRPC to the traces backend [true]",
    ENV_ES_URL: f"Elasticsearch [{DEFAULT_ES_URL}]",
    ENV_ES_USERNAME: "Elasticsearch basic auth user (or use the API key) []",
    ENV_ES_PASSWORD: "Elasticsearch basic auth password (inject from a secret) []",
    ENV_ES_API_KEY: "Elasticsearch API key, encoded form (inject from a secret) []",
    ENV_ES_CA_CERTS: "CA bundle file for an https Elasticsearch []",
    ENV_REMOTE_WRITE_URL: f"Prometheus remote-write endpoint (Mimir, Thanos receive) [{DEFAULT_REMOTE_WRITE_URL}]",
    ENV_REMOTE_WRITE_TENANT: "X-Scope-OrgID tenant header [anonymous]",
    ENV_CLUSTER: "value of the `cluster` external label [default]",
}

_ROLES = {
    AGENT_FILE: ("Agent: next to the application (DaemonSet or sidecar). Masks content attributes and\n"
                 "credentials, then routes traces and logs by trace ID and metrics by resource to the gateways.",
                 (ENV_GATEWAY_HOSTNAME, ENV_ALLOWED_CONTENT_KEYS)),
    GATEWAY_FILE: ("Gateway: tail sampling, Prometheus pull endpoint (:{prom}), traces over OTLP, logs into\n"
                   "Elasticsearch. Run 2+ replicas behind the headless Service the agents resolve.",
                   (ENV_SAMPLING_PERCENTAGE, ENV_TRACES_ENDPOINT, ENV_TRACES_INSECURE, ENV_ES_URL,
                    ENV_ES_USERNAME, ENV_ES_PASSWORD, ENV_ES_API_KEY, ENV_ES_CA_CERTS)),
    GATEWAY_REMOTE_WRITE_FILE: ("Gateway, remote-write variant: as gateway.yaml, but metrics go to Mimir/Thanos/"
                                "Prometheus\nthrough remote write (cumulative temporality, the SDK default).",
                                (ENV_SAMPLING_PERCENTAGE, ENV_TRACES_ENDPOINT, ENV_TRACES_INSECURE,
                                 ENV_REMOTE_WRITE_URL, ENV_REMOTE_WRITE_TENANT, ENV_CLUSTER, ENV_ES_URL,
                                 ENV_ES_USERNAME, ENV_ES_PASSWORD, ENV_ES_API_KEY, ENV_ES_CA_CERTS)),
    STANDALONE_FILE: ("Standalone: one collector for one node (deploy/compose): agent and gateway in one process.",
                      (ENV_ALLOWED_CONTENT_KEYS, ENV_SAMPLING_PERCENTAGE, ENV_TRACES_ENDPOINT, ENV_TRACES_INSECURE,
                       ENV_ES_URL, ENV_ES_USERNAME, ENV_ES_PASSWORD, ENV_ES_API_KEY,
                       ENV_ES_CA_CERTS)),
}


def configs(table: Thresholds) -> dict[str, dict[str, Any]]:
    """The four configs as plain dicts, by path relative to the output directory."""
    return {
        AGENT_FILE: agent_config(table),
        GATEWAY_FILE: gateway_config(table),
        GATEWAY_REMOTE_WRITE_FILE: gateway_config(table, remote_write=True),
        STANDALONE_FILE: standalone_config(table),
    }


def artifacts(table: Thresholds) -> dict[str, str]:
    """Every file this generator owns, by path relative to the output directory."""
    source = " + ".join(Path(s).name for s in table.source.split(" + "))
    out = {}
    for rel, document in configs(table).items():
        role, names = _ROLES[rel]
        header = _HEADER.format(source=source, version=OTELCOL_VERSION, image=OTELCOL_IMAGE,
                                role=role.format(prom=PROMETHEUS_PORT),
                                env="\n".join(f"  {name}: {_ENV_DOCS[name]}" for name in names))
        out[rel] = _yaml.dump(document, header)
    return out
