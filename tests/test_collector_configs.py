"""The bundled OpenTelemetry Collector configs (collector/*.yaml), checked statically: no collector runs here.

Pipelines name only defined components and use every one; every key exists in the pinned otelcol-contrib
version; the tail sampler's numbers come from the threshold table; the prometheus exporter produces the
contract's series names; content and credentials are masked at the edge; logs go to the data stream
`agentwatch es setup` creates; nothing secret is written into a file.
"""

from __future__ import annotations

import re

import pytest
import yaml

from agentwatch.tooling import elastic
from agentwatch import semconv as sc
from agentwatch.tooling.generate import collector as col
from agentwatch.thresholds import load
from support.deploy_helpers import COLLECTOR, ENV_REF, REPO, component_type, generated, load_yaml, pipeline_problems, walk

TEST_LAYER = "unit"  # every test here is unit unless marked otherwise (conftest.py)

FILES = (col.AGENT_FILE, col.GATEWAY_FILE, col.GATEWAY_REMOTE_WRITE_FILE, col.STANDALONE_FILE)

# Keys each component type accepts in otelcol-contrib OTELCOL_VERSION (from the component READMEs and
# config.go of that release line): a misspelt or removed key fails the collector at start-up.
KNOWN_KEYS = {
    "otlp_receiver": {"protocols"},
    "memory_limiter": {"check_interval", "limit_mib", "spike_limit_mib", "limit_percentage", "spike_limit_percentage"},
    "batch": {"send_batch_size", "send_batch_max_size", "timeout", "metadata_keys", "metadata_cardinality_limit"},
    "resourcedetection": {"detectors", "timeout", "override", "system", "env", "ec2", "gcp", "k8snode"},
    "redaction": {"allow_all_keys", "allowed_keys", "ignored_keys", "blocked_key_patterns", "blocked_values",
                  "allowed_values", "hash_function", "summary", "redact_all_types", "url_sanitizer"},
    "tail_sampling": {"decision_wait", "num_traces", "expected_new_traces_per_sec", "decision_cache", "policies",
                      "sample_on_first_match"},
    "filter": {"error_mode", "logs", "traces", "metrics"},
    "transform": {"error_mode", "log_statements", "trace_statements", "metric_statements"},
    "loadbalancing": {"routing_key", "protocol", "resolver", "timeout", "sending_queue", "retry_on_failure"},
    "prometheus": {"endpoint", "tls", "namespace", "const_labels", "send_timestamps", "metric_expiration",
                   "resource_to_telemetry_conversion", "enable_open_metrics", "add_metric_suffixes",
                   "translation_strategy", "sending_queue"},
    "prometheusremotewrite": {"endpoint", "tls", "headers", "timeout", "namespace", "external_labels",
                              "add_metric_suffixes", "resource_to_telemetry_conversion", "target_info",
                              "remote_write_queue", "retry_on_failure", "send_metadata", "max_batch_size_bytes",
                              "wal", "auth", "compression"},
    "otlp": {"endpoint", "tls", "headers", "compression", "timeout", "sending_queue", "retry_on_failure",
             "balancer_name", "keepalive", "auth", "write_buffer_size"},
    "elasticsearch": {"endpoint", "endpoints", "cloudid", "logs_index", "traces_index", "metrics_index", "mapping",
                      "user", "password", "api_key", "tls", "timeout", "headers", "auth", "retry", "num_workers",
                      "pipeline", "sending_queue", "discover"},
    "health_check": {"endpoint", "path", "tls", "response_body", "check_collector_pipeline"},
    "pprof": {"endpoint", "block_profile_fraction", "mutex_profile_fraction", "save_to_file"},
    "zpages": {"endpoint", "expvar"},
}
POLICY_TYPES = {"always_sample", "latency", "numeric_attribute", "probabilistic", "status_code", "string_attribute",
                "rate_limiting", "span_count", "trace_state", "boolean_attribute", "ottl_condition", "and", "composite"}


@pytest.fixture(scope="module")
def configs() -> dict[str, dict]:
    return {rel: yaml.safe_load(generated()[rel]) for rel in FILES}


def test_committed_configs_match_the_generator():
    for rel in FILES:
        path = REPO / rel
        assert path.is_file(), f"{rel} missing: run `agentwatch generate`"
        assert path.read_text(encoding="utf-8") == generated()[rel], f"{rel} differs: run `agentwatch generate`"
    assert sorted(p.name for p in COLLECTOR.glob("*.yaml")) == sorted(rel.split("/")[-1] for rel in FILES)


@pytest.mark.parametrize("rel", FILES)
def test_every_pipeline_names_defined_components_and_every_component_is_used(rel, configs):
    assert pipeline_problems(configs[rel]) == []


@pytest.mark.parametrize("rel", FILES)
def test_memory_limiter_first_and_batch_last(rel, configs):
    for name, pipeline in configs[rel]["service"]["pipelines"].items():
        assert pipeline["processors"][0] == "memory_limiter", name
        assert pipeline["processors"][-1] == "batch", name
        if "tail_sampling" in pipeline["processors"]:  # it regroups spans by trace: after what needs context
            assert pipeline["processors"].index("tail_sampling") == len(pipeline["processors"]) - 2


@pytest.mark.parametrize("rel", FILES)
def test_every_key_exists_in_the_pinned_collector(rel, configs):
    config = configs[rel]
    for kind in ("receivers", "processors", "exporters", "extensions"):
        for cid, settings in config[kind].items():
            ctype = component_type(cid)
            known = KNOWN_KEYS["otlp_receiver" if kind == "receivers" else ctype]
            assert set(settings or {}) <= known, f"{rel}: {cid} has unknown keys {set(settings) - known}"
    for name in ("tail_sampling",):
        for policy in config["processors"].get(name, {}).get("policies", []):
            assert policy["type"] in POLICY_TYPES
            assert set(policy) == {"name", "type", policy["type"]}, policy
    telemetry = config["service"]["telemetry"]["metrics"]
    assert "address" not in telemetry  # removed from the collector; readers replace it
    assert telemetry["readers"][0]["pull"]["exporter"]["prometheus"]["port"] == col.TELEMETRY_PORT


def test_pinned_version_and_component_names():
    assert re.fullmatch(r"0\.1\d\d\.\d+", col.OTELCOL_VERSION)
    assert col.OTELCOL_IMAGE == f"otel/opentelemetry-collector-contrib:{col.OTELCOL_VERSION}"
    for rel in FILES:
        assert f"# Image {col.OTELCOL_IMAGE}." in (REPO / rel).read_text().splitlines()[:3]


def test_agent_masks_content_and_credentials_then_load_balances(configs):
    agent = configs[col.AGENT_FILE]
    redaction = agent["processors"]["redaction/content"]
    assert redaction["allow_all_keys"] is True  # everything else passes untouched
    for attribute in (sc.GEN_AI_INPUT_MESSAGES, sc.GEN_AI_OUTPUT_MESSAGES, sc.GEN_AI_SYSTEM_INSTRUCTIONS,
                      sc.GEN_AI_TOOL_CALL_ARGUMENTS, sc.GEN_AI_TOOL_CALL_RESULT):
        assert any(re.fullmatch(p, attribute) for p in redaction["blocked_key_patterns"]), attribute
    for harmless in (sc.GEN_AI_REQUEST_MODEL, sc.GEN_AI_TOOL_NAME, sc.AGENTWATCH_COST_USD, "gen_ai_input_messages"):
        assert not any(re.fullmatch(p, harmless) for p in redaction["blocked_key_patterns"]), harmless
    # Explicitly allowed content passes: a YAML list from the environment, empty by default.
    assert redaction["ignored_keys"] == "${env:AGENTWATCH_ALLOWED_CONTENT_KEYS:-[]}"
    assert yaml.safe_load("[]") == []
    for key in ("sk-proj-" + "a" * 30, "Bearer " + "b" * 40, "AKIA" + "C" * 16):
        assert any(re.search(p, key) for p in redaction["blocked_values"]), key
    for pipeline in ("traces", "logs"):
        assert "redaction/content" in agent["service"]["pipelines"][pipeline]["processors"]
    lb, lb_metrics = agent["exporters"]["loadbalancing"], agent["exporters"]["loadbalancing/metrics"]
    assert lb["routing_key"] == "traceID" and lb_metrics["routing_key"] == "resource"
    for exporter in (lb, lb_metrics):
        hostname = f"${{env:{col.ENV_GATEWAY_HOSTNAME}:-{col.GATEWAY_HEADLESS_SERVICE}}}"
        assert exporter["resolver"]["dns"]["hostname"] == hostname
        assert exporter["resolver"]["dns"]["port"] == str(col.OTLP_GRPC_PORT)
        assert "endpoint" not in exporter["protocol"]["otlp"]
    pipelines = agent["service"]["pipelines"]
    assert pipelines["traces"]["exporters"] == pipelines["logs"]["exporters"] == ["loadbalancing"]
    assert pipelines["metrics"]["exporters"] == ["loadbalancing/metrics"]


def test_standalone_masks_content_like_the_agent(configs):
    standalone, agent = configs[col.STANDALONE_FILE], configs[col.AGENT_FILE]
    assert standalone["processors"]["redaction/content"] == agent["processors"]["redaction/content"]


@pytest.mark.parametrize("rel", (col.GATEWAY_FILE, col.GATEWAY_REMOTE_WRITE_FILE, col.STANDALONE_FILE))
def test_tail_sampling_keeps_errors_slow_and_costly_runs_from_the_threshold_table(rel, configs):
    table = load()
    latency, cost = table["p99_latency"], table["cost_per_run"]
    sampling = configs[rel]["processors"]["tail_sampling"]
    policies = {p["type"]: p for p in sampling["policies"]}
    assert policies["status_code"]["status_code"]["status_codes"] == ["ERROR"]
    assert policies["latency"]["latency"]["threshold_ms"] == latency.value * 1000
    # A double attribute: numeric_attribute would read Value.Int() == 0 and never match $1.50.
    assert "numeric_attribute" not in policies
    (condition,) = policies["ottl_condition"]["ottl_condition"]["span"]
    assert condition == f'attributes["{sc.AGENTWATCH_COST_USD}"] > {float(cost.value)!r}'
    assert policies["probabilistic"]["probabilistic"]["sampling_percentage"] == \
        f"${{env:{col.ENV_SAMPLING_PERCENTAGE}:-{col.DEFAULT_SAMPLING_PERCENTAGE}}}"
    # The decision waits for runs as long as the latency threshold (their root span ends last).
    wait = int(sampling["decision_wait"].rstrip("s"))
    assert wait > latency.value
    assert sampling["num_traces"] >= sampling["expected_new_traces_per_sec"] * wait
    cache = sampling["decision_cache"]
    assert min(cache["sampled_cache_size"], cache["non_sampled_cache_size"]) > sampling["num_traces"]


def test_a_changed_threshold_moves_the_sampling_policies(tmp_path):
    override = tmp_path / "t.yaml"
    override.write_text("signals:\n  p99_latency: {value: 45}\n  cost_per_run: {value: 2.5}\n")
    files = col.artifacts(load(override))
    for rel in (col.GATEWAY_FILE, col.GATEWAY_REMOTE_WRITE_FILE, col.STANDALONE_FILE):
        sampling = yaml.safe_load(files[rel])["processors"]["tail_sampling"]
        policies = {p["type"]: p for p in sampling["policies"]}
        assert policies["latency"]["latency"]["threshold_ms"] == 45000
        assert policies["ottl_condition"]["ottl_condition"]["span"] == [f'attributes["{sc.AGENTWATCH_COST_USD}"] > 2.5']
        assert sampling["decision_wait"] == "75s"
        assert "t.yaml" in files[rel].splitlines()[0]


# --- Prometheus names ----------------------------------------------------------------------------------
# What the prometheus and prometheusremotewrite exporters do with UnderscoreEscapingWithSuffixes (the
# otlptranslator rules): invalid characters -> "_", annotations in braces dropped from the unit, the unit
# appended (mapped for UCUM time/byte units, kept as it is otherwise, e.g. USD), "_total" for counters.
_UNIT_WORDS = {"d": "days", "h": "hours", "min": "minutes", "s": "seconds", "ms": "milliseconds",
               "us": "microseconds", "ns": "nanoseconds", "By": "bytes", "KiBy": "kibibytes", "%": "percent"}


def prometheus_name(name: str, unit: str, counter: bool) -> str:
    out = re.sub(r"[^a-zA-Z0-9_:]", "_", name)
    main = re.sub(r"\{[^}]*\}", "", unit.split("/")[0]).strip()
    word = _UNIT_WORDS.get(main, main)
    if word and not out.endswith(f"_{word}"):
        out += f"_{word}"
    if counter and not out.endswith("_total"):
        out += "_total"
    return re.sub(r"__+", "_", out)


CONTRACT = [  # (instrument, unit, counter?, Prometheus name the dashboards and alerts query)
    (sc.METRIC_CLIENT_TOKEN_USAGE, sc.UNIT_TOKEN, False, sc.PROM_CLIENT_TOKEN_USAGE),
    (sc.METRIC_CLIENT_OPERATION_DURATION, sc.UNIT_SECONDS, False, sc.PROM_CLIENT_OPERATION_DURATION),
    (sc.METRIC_CLIENT_TIME_TO_FIRST_CHUNK, sc.UNIT_SECONDS, False, sc.PROM_CLIENT_TIME_TO_FIRST_CHUNK),
    (sc.METRIC_INVOKE_AGENT_DURATION, sc.UNIT_SECONDS, False, sc.PROM_INVOKE_AGENT_DURATION),
    (sc.METRIC_INVOKE_AGENT_INFERENCE_CALLS, sc.UNIT_INFERENCE_CALL, False, sc.PROM_INVOKE_AGENT_INFERENCE_CALLS),
    (sc.METRIC_INVOKE_AGENT_TOOL_CALLS, sc.UNIT_TOOL_CALL, False, sc.PROM_INVOKE_AGENT_TOOL_CALLS),
    (sc.METRIC_EXECUTE_TOOL_DURATION, sc.UNIT_SECONDS, False, sc.PROM_EXECUTE_TOOL_DURATION),
    (sc.METRIC_LLM_COST, sc.UNIT_USD, True, sc.PROM_LLM_COST),
    (sc.METRIC_AGENT_COST, sc.UNIT_USD, False, sc.PROM_AGENT_COST),
    (sc.METRIC_AGENT_TOKEN_USAGE, sc.UNIT_TOKEN, False, sc.PROM_AGENT_TOKEN_USAGE),
    (sc.METRIC_PRICING_UNPRICED_CALLS, sc.UNIT_CALL, True, sc.PROM_PRICING_UNPRICED_CALLS),
]


@pytest.mark.parametrize("instrument,unit,counter,expected", CONTRACT, ids=[c[0] for c in CONTRACT])
def test_the_exporters_naming_gives_the_contracts_series(instrument, unit, counter, expected):
    assert prometheus_name(instrument, unit, counter) == expected


def test_prometheus_exporters_keep_suffixes_and_no_resource_labels(configs):
    for rel in (col.GATEWAY_FILE, col.STANDALONE_FILE):
        prom = configs[rel]["exporters"]["prometheus"]
        assert prom["translation_strategy"] == "UnderscoreEscapingWithSuffixes"
        assert "add_metric_suffixes" not in prom  # deprecated, and ignored once translation_strategy is set
        assert prom["resource_to_telemetry_conversion"] == {"enabled": False}
        assert "namespace" not in prom and "const_labels" not in prom  # both would rename or relabel the series
        assert prom["endpoint"] == f"0.0.0.0:{col.PROMETHEUS_PORT}"
    rw = configs[col.GATEWAY_REMOTE_WRITE_FILE]["exporters"]["prometheusremotewrite"]
    assert rw["add_metric_suffixes"] is True and rw["resource_to_telemetry_conversion"] == {"enabled": False}
    assert "namespace" not in rw
    assert "prometheus" not in configs[col.GATEWAY_REMOTE_WRITE_FILE]["exporters"]


def test_logs_go_to_the_data_stream_of_es_setup(configs):
    for rel in (col.GATEWAY_FILE, col.GATEWAY_REMOTE_WRITE_FILE, col.STANDALONE_FILE):
        config = configs[rel]
        es = config["exporters"][elastic.COLLECTOR_EXPORTER]
        assert es["logs_index"] == elastic.data_stream_name() == "logs-agentwatch-default"
        assert es["mapping"] == {"mode": "ecs"}
        pipeline = config["service"]["pipelines"][elastic.COLLECTOR_PIPELINE]
        helper = elastic.collector_exporter_config()
        for processor in helper["service"]["pipelines"][elastic.COLLECTOR_PIPELINE]["processors"]:
            assert processor in pipeline["processors"]
            assert config["processors"][processor] == helper["processors"][processor]
        assert pipeline["exporters"] == [elastic.COLLECTOR_EXPORTER]


def test_gateway_exports_traces_over_otlp_with_a_queue(configs):
    for rel in (col.GATEWAY_FILE, col.GATEWAY_REMOTE_WRITE_FILE, col.STANDALONE_FILE):
        otlp = configs[rel]["exporters"]["otlp/traces"]
        assert otlp["endpoint"] == f"${{env:{col.ENV_TRACES_ENDPOINT}:-{col.DEFAULT_TRACES_ENDPOINT}}}"
        assert otlp["sending_queue"]["enabled"] is True


@pytest.mark.parametrize("rel", FILES)
def test_ports_and_extensions(rel, configs):
    config = configs[rel]
    grpc = config["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"]
    http = config["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
    assert (grpc, http) == (f"0.0.0.0:{col.OTLP_GRPC_PORT}", f"0.0.0.0:{col.OTLP_HTTP_PORT}")
    ext = config["extensions"]
    assert ext["health_check"]["endpoint"] == f"0.0.0.0:{col.HEALTH_PORT}"
    assert ext["pprof"]["endpoint"].endswith(f":{col.PPROF_PORT}")
    assert ext["zpages"]["endpoint"].endswith(f":{col.ZPAGES_PORT}")
    # Debug endpoints stay on localhost where a Service could reach them (kubectl port-forward still can).
    if rel != col.STANDALONE_FILE:
        assert ext["pprof"]["endpoint"].startswith("localhost:") and ext["zpages"]["endpoint"].startswith("localhost:")


@pytest.mark.parametrize("rel", FILES)
def test_environment_references_are_documented_and_secrets_only_come_from_it(rel, configs):
    text = (REPO / rel).read_text()
    header = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    for name, _default in ENV_REF.findall(text):
        assert f"  {name}: " in header, f"{rel}: ${{env:{name}}} is not documented in the header"
    for path, value in walk(configs[rel]):
        leaf = path.rsplit(".", 1)[-1]
        if leaf in ("password", "api_key", "user") or "X-Scope-OrgID" in path:
            assert isinstance(value, str) and ENV_REF.fullmatch(value), f"{rel}: {path} must come from the environment"


def test_generated_yaml_has_no_anchors_and_loads_the_same_from_disk():
    for rel in FILES:
        text = (REPO / rel).read_text()
        assert "&id" not in text and "*id" not in text
        assert load_yaml(REPO / rel) == yaml.safe_load(generated()[rel])


def test_a_threshold_in_other_units_is_a_clear_error(tmp_path):
    from agentwatch.thresholds import ThresholdsError

    override = tmp_path / "t.yaml"
    override.write_text("signals:\n  p99_latency: {unit: ms}\n")
    with pytest.raises(ThresholdsError, match="tail sampler needs p99_latency in s"):
        col.artifacts(load(override))
