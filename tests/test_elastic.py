"""Elasticsearch: the index template and ILM policy, idempotent setup, the collector settings, connection
settings, and the `agentwatch es` / `agentwatch logs` commands, against the in-suite fake Elasticsearch."""

from __future__ import annotations

import base64
import json

import pytest
import yaml
from click.testing import CliRunner

from agentwatch.tooling import elastic
from agentwatch import config
from agentwatch import semconv as sc
from agentwatch.tooling.cli import main
from agentwatch.config import ConfigError, ElasticsearchSettings, elasticsearch_settings
from support.fake_es import FakeElasticsearch

TEST_LAYER = "unit"  # every test here is unit unless marked otherwise (conftest.py)

API_KEY = "VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw=="
PASSWORD = "hunter2-Pa55word"


@pytest.fixture
def fake_es():
    with FakeElasticsearch() as server:
        yield server


def _props(mapping: dict, dotted: str) -> dict:
    node = {"properties": mapping["template"]["mappings"]["properties"]}
    for part in dotted.split("."):
        node = node["properties"][part]
    return node


def _cli(*args: str, env: dict | None = None):
    return CliRunner().invoke(main, list(args), env={"COLUMNS": "200", **(env or {})}, catch_exceptions=False)


def _clean_env(monkeypatch):
    for name in list(__import__("os").environ):
        if name.startswith("AGENTWATCH_ES_"):
            monkeypatch.delenv(name)


# --- template and policy ---------------------------------------------------------------------------------
def test_index_template_body():
    t = elastic.index_template("default")
    assert t["index_patterns"] == ["logs-agentwatch-default"]
    assert t["data_stream"] == {}
    assert t["priority"] > 100, "must win over the built-in logs-*-* template (priority 100)"
    assert t["template"]["settings"]["index"]["lifecycle"]["name"] == "logs-agentwatch-default"
    assert t["template"]["settings"]["index"]["mapping"]["ignore_malformed"] is True
    assert t["composed_of"] == t["ignore_missing_component_templates"] == ["logs-agentwatch-default@custom"]
    assert t["_meta"]["managed_by"] == "agentwatch" and t["_meta"]["digest"]
    types = {name: _props(t, name).get("type") for name in (
        "@timestamp", "message", "log.level", "trace.id", "span.id", "service.name", "event.action",
        "event.outcome", "event.duration", "error.type", "error.message", "gen_ai.request.model",
        "gen_ai.provider.name", "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens",
        "gen_ai.usage.cache_read.input_tokens", "gen_ai.agent.name", "gen_ai.tool.name",
        "gen_ai.invoke_agent.inference_calls", "agentwatch.usage.cost_usd", "agentwatch.usage.cost_unknown",
        "gen_ai.response.finish_reasons", "server.port")}
    assert types == {
        "@timestamp": "date", "message": "match_only_text", "log.level": "keyword", "trace.id": "keyword",
        "span.id": "keyword", "service.name": "keyword", "event.action": "keyword", "event.outcome": "keyword",
        "event.duration": "long", "error.type": "keyword", "error.message": "match_only_text",
        "gen_ai.request.model": "keyword", "gen_ai.provider.name": "keyword", "gen_ai.usage.input_tokens": "long",
        "gen_ai.usage.output_tokens": "long", "gen_ai.usage.cache_read.input_tokens": "long",
        "gen_ai.agent.name": "keyword", "gen_ai.tool.name": "keyword",
        "gen_ai.invoke_agent.inference_calls": "long", "agentwatch.usage.cost_usd": "double",
        "agentwatch.usage.cost_unknown": "boolean", "gen_ai.response.finish_reasons": "keyword",
        "server.port": "long"}
    # content: kept in _source, never parsed or indexed
    for name in ("gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions",
                 "gen_ai.tool.call.arguments", "gen_ai.tool.call.result"):
        assert _props(t, name) == {"type": "object", "enabled": False}, name
    assert _props(t, "data_stream.namespace") == {"type": "constant_keyword", "value": "default"}
    assert _props(t, "data_stream.dataset") == {"type": "constant_keyword", "value": "agentwatch"}
    dyn = t["template"]["mappings"]["dynamic_templates"]
    assert {"strings_as_keyword": {"match_mapping_type": "string",
                                   "mapping": {"type": "keyword", "ignore_above": 1024}}} in dyn
    assert t["template"]["mappings"]["date_detection"] is False
    json.dumps(t)  # serializable as is


def test_template_per_namespace_and_namespace_rules():
    prod = elastic.index_template("prod")
    assert prod["index_patterns"] == ["logs-agentwatch-prod"]
    assert prod["template"]["settings"]["index"]["lifecycle"]["name"] == "logs-agentwatch-prod"
    assert prod["_meta"]["digest"] != elastic.index_template("default")["_meta"]["digest"]
    for bad in ("Prod", "a-b", "", "with space", "x*", "_x"):
        with pytest.raises(ConfigError):
            elastic.data_stream_name(bad)


def test_ilm_policy_rolls_over_and_deletes():
    p = elastic.ilm_policy()["policy"]
    assert p["phases"]["hot"]["actions"]["rollover"] == {"max_age": "1d", "max_primary_shard_size": "50gb"}
    assert p["phases"]["delete"] == {"min_age": "30d", "actions": {"delete": {}}}
    assert p["_meta"]["managed_by"] == "agentwatch"
    assert elastic.ilm_policy(7)["policy"]["phases"]["delete"]["min_age"] == "7d"
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ConfigError):
            elastic.ilm_policy(bad)


def test_setup_is_idempotent_and_reports(fake_es):
    client = elastic.build_client(ElasticsearchSettings.build(fake_es.url))
    first = elastic.setup(client, "default", 30)
    assert [(c.kind, c.name, c.action) for c in first] == [
        ("ILM policy", "logs-agentwatch-default", "created"),
        ("index template", "logs-agentwatch-default", "created")]
    puts = [r for r in fake_es.requests if r.method == "PUT"]
    assert [r.path for r in puts] == ["/_ilm/policy/logs-agentwatch-default",
                                      "/_index_template/logs-agentwatch-default"]
    assert puts[0].json() == elastic.ilm_policy(30)
    assert puts[1].json() == elastic.index_template("default")

    n = len(fake_es.requests)
    again = elastic.setup(client, "default", 30)
    assert [c.action for c in again] == ["unchanged", "unchanged"]
    assert all(r.method == "GET" for r in fake_es.requests[n:]), "nothing rewritten when up to date"

    changed = elastic.setup(client, "default", 90)
    assert [c.action for c in changed] == ["updated", "unchanged"]
    assert fake_es.state.policies["logs-agentwatch-default"]["policy"]["phases"]["delete"]["min_age"] == "90d"

    fake_es.state.templates["logs-agentwatch-default"]["priority"] = 50  # drifted by hand, digest kept...
    fake_es.state.templates["logs-agentwatch-default"]["_meta"]["digest"] = "stale"  # ...or an older version
    assert [c.action for c in elastic.setup(client, "default", 90)] == ["unchanged", "updated"]
    assert fake_es.state.templates["logs-agentwatch-default"]["priority"] == elastic.TEMPLATE_PRIORITY


# --- the collector path ----------------------------------------------------------------------------------
def test_collector_exporter_config_writes_the_same_data_stream():
    cfg = elastic.collector_exporter_config("prod")
    exporter = cfg["exporters"]["elasticsearch/agentwatch"]
    assert exporter["mapping"] == {"mode": "ecs"}
    assert exporter["logs_index"] == "logs-agentwatch-prod"
    assert exporter["endpoint"] == "${env:AGENTWATCH_ES_URL}"
    assert exporter["api_key"] == "${env:AGENTWATCH_ES_API_KEY}"
    pipeline = cfg["service"]["pipelines"]["logs/agentwatch_elasticsearch"]
    assert pipeline["exporters"] == ["elasticsearch/agentwatch"]
    assert set(pipeline["processors"]) == set(cfg["processors"])
    statements = cfg["processors"]["transform/agentwatch_ecs"]["log_statements"][0]["statements"]
    text = "\n".join(statements)
    for needle in ('attributes["event.action"], event_name', '"event.dataset"], "agentwatch"',
                   '"data_stream.namespace"], "prod"', '"data_stream.dataset"], "agentwatch"',
                   'ConvertCase(severity_text, "lower")'):
        assert needle in text
    assert cfg["processors"]["filter/agentwatch_only"]["logs"]["log_record"] == [
        'instrumentation_scope.name != "agentwatch"']
    with_ca = elastic.collector_exporter_config(ca_file="/etc/ssl/es-ca.pem", api_key=None)
    assert with_ca["exporters"]["elasticsearch/agentwatch"]["tls"] == {"ca_file": "/etc/ssl/es-ca.pem"}
    assert "api_key" not in with_ca["exporters"]["elasticsearch/agentwatch"]


def test_collector_config_command_prints_yaml():
    result = _cli("es", "collector-config", "--namespace", "prod")
    assert result.exit_code == 0
    assert yaml.safe_load(result.output) == elastic.collector_exporter_config("prod")


def test_collector_style_nested_documents_read_like_flat_ones():
    flat = {"gen_ai.usage.input_tokens": 5, "trace.id": "ab"}
    nested = {"gen_ai": {"usage": {"input_tokens": 5}}, "trace": {"id": "ab"}}
    mixed = {"gen_ai": {"usage.input_tokens": 5}, "trace.id": "ab"}
    for doc in (flat, nested, mixed):
        assert elastic.get_field(doc, "gen_ai.usage.input_tokens") == 5
        assert elastic.get_field(doc, "trace.id") == "ab"
        assert elastic.get_field(doc, "gen_ai.usage.output_tokens") is None


# --- connection settings ---------------------------------------------------------------------------------
def test_settings_from_environment_and_files(tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text(API_KEY + "\n")
    s = ElasticsearchSettings.from_environ({config.ENV_ES_URL: "https://es.example.com:9243/",
                                            config.ENV_ES_API_KEY_FILE: str(key_file),
                                            config.ENV_ES_NAMESPACE: "prod"})
    assert (s.url, s.api_key, s.namespace, s.verify_certs) == ("https://es.example.com:9243", API_KEY, "prod", True)
    assert API_KEY not in repr(s)

    s = ElasticsearchSettings.from_environ({config.ENV_ES_URL: f"https://elastic:{PASSWORD}@es.example.com"})
    assert (s.url, s.username, s.password) == ("https://es.example.com", "elastic", PASSWORD)
    assert PASSWORD not in repr(s)

    s = ElasticsearchSettings.from_environ({config.ENV_ES_URL: "https://es:9200", config.ENV_ES_VERIFY_CERTS: "false"})
    assert s.verify_certs is False
    assert ElasticsearchSettings.from_environ({}) is None

    for env, message in (
        ({config.ENV_ES_URL: "ftp://es"}, "http:// or https://"),
        ({config.ENV_ES_URL: "https://es", config.ENV_ES_API_KEY_FILE: str(tmp_path / "missing")}, "cannot read the API key"),
        ({config.ENV_ES_URL: "https://es", config.ENV_ES_USERNAME: "elastic"}, "without a password"),
        ({config.ENV_ES_URL: "https://es", config.ENV_ES_CA_CERTS: str(tmp_path / "ca.pem")}, "does not exist"),
        ({config.ENV_ES_URL: "https://es", config.ENV_ES_NAMESPACE: "Prod-1"}, "not a valid data stream namespace"),
        ({config.ENV_ES_URL: f"https://u:{PASSWORD}@es:99999"}, "cannot be parsed"),
    ):
        with pytest.raises(ConfigError, match=message) as info:
            ElasticsearchSettings.from_environ(env)
        assert PASSWORD not in str(info.value)


def test_explicit_options_win_over_the_environment(tmp_path):
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD)
    env = {config.ENV_ES_URL: "https://env:9200", config.ENV_ES_API_KEY: "env-key", config.ENV_ES_NAMESPACE: "envns"}
    s = elasticsearch_settings("https://code:9200", environ=env, namespace="codens")
    assert (s.url, s.namespace, s.api_key) == ("https://code:9200", "codens", "env-key")
    s = elasticsearch_settings(None, environ={**env, config.ENV_ES_API_KEY: ""}, username="u", password_file=str(pw))
    assert (s.url, s.username, s.password) == ("https://env:9200", "u", PASSWORD)
    s = elasticsearch_settings(None, environ=env, verify_certs=False, queue_size=10)
    assert (s.verify_certs, s.queue_size) == (False, 10)
    with pytest.raises(TypeError, match="unknown Elasticsearch option"):
        elasticsearch_settings("https://x", environ={}, apikey="typo")
    assert elasticsearch_settings(None, environ={}) is None


def test_client_auth_and_tls_options(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("not parsed until a request")
    key_client = elastic.build_client(ElasticsearchSettings.build("https://es:9200", api_key=API_KEY, ca_certs=str(ca)))
    assert key_client._headers["authorization"] == f"ApiKey {API_KEY}"
    node = key_client.transport.node_pool.get().config
    assert node.verify_certs is True and node.ca_certs == str(ca)
    basic = elastic.build_client(ElasticsearchSettings.build("https://es:9200", username="elastic", password=PASSWORD))
    token = base64.b64encode(f"elastic:{PASSWORD}".encode()).decode()
    assert basic._headers["authorization"] == f"Basic {token}"
    insecure = elastic.build_client(ElasticsearchSettings.build("https://es:9200", verify_certs=False))
    assert insecure.transport.node_pool.get().config.verify_certs is False
    assert "authorization" not in insecure._headers
    plain = elastic.build_client(ElasticsearchSettings.build("http://es:9200"))
    assert plain.transport.node_pool.get().config.scheme == "http"


# --- `agentwatch es setup` -------------------------------------------------------------------------------
def test_es_setup_command(fake_es, monkeypatch):
    _clean_env(monkeypatch)
    fake_es.require_auth(f"ApiKey {API_KEY}")
    env = {config.ENV_ES_API_KEY: API_KEY}
    result = _cli("es", "setup", "--url", fake_es.url, env=env)
    assert result.exit_code == 0, result.output
    assert "created   ILM policy logs-agentwatch-default  (delete after 30 d)" in result.output
    assert "created   index template logs-agentwatch-default" in result.output
    assert "2 of 2 objects changed" in result.output
    result = _cli("es", "setup", "--url", fake_es.url, "--retention-days", "30", env=env)
    assert result.output.count("unchanged") == 2 and "0 of 2 objects changed" in result.output
    assert {r.headers["authorization"] for r in fake_es.requests} == {f"ApiKey {API_KEY}"}
    assert API_KEY not in result.output

    result = _cli("es", "setup", "--url", fake_es.url, "--namespace", "prod", "--retention-days", "7", env=env)
    assert result.exit_code == 0
    assert fake_es.state.policies["logs-agentwatch-prod"]["policy"]["phases"]["delete"]["min_age"] == "7d"
    assert fake_es.state.templates["logs-agentwatch-prod"]["index_patterns"] == ["logs-agentwatch-prod"]


def test_es_setup_basic_auth_from_a_password_file(fake_es, monkeypatch, tmp_path):
    _clean_env(monkeypatch)
    token = base64.b64encode(f"elastic:{PASSWORD}".encode()).decode()
    fake_es.require_auth(f"Basic {token}")
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD + "\n")
    result = _cli("es", "setup", "--url", fake_es.url, "--username", "elastic", "--password-file", str(pw))
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output and token not in result.output


def test_es_setup_errors_name_the_problem_not_the_secret(fake_es, monkeypatch):
    _clean_env(monkeypatch)
    fake_es.require_auth("ApiKey the-right-one")
    result = CliRunner().invoke(main, ["es", "setup", "--url", fake_es.url], env={config.ENV_ES_API_KEY: API_KEY})
    assert result.exit_code == 1
    assert "rejected the credentials (401)" in result.output
    assert API_KEY not in result.output

    dead = f"http://elastic:{PASSWORD}@127.0.0.1:9"  # port 9 (discard): nothing listens
    result = CliRunner().invoke(main, ["es", "setup", "--url", dead])
    assert result.exit_code == 1
    assert "cannot connect to http://127.0.0.1:9" in result.output
    assert PASSWORD not in result.output

    result = CliRunner().invoke(main, ["es", "setup", "--url", fake_es.url, "--namespace", "Bad-Name"])
    assert result.exit_code == 1 and "not a valid data stream namespace" in result.output
    result = CliRunner().invoke(main, ["es", "setup"], env={config.ENV_ES_URL: ""})
    assert result.exit_code == 2 and "--url" in result.output


# --- `agentwatch logs` -----------------------------------------------------------------------------------
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
OTHER = "00000000000000000000000000000abc"


def _rec(ts: str, action: str, duration_ms: float, trace: str = TRACE, **fields):
    return {"@timestamp": ts, "log.level": "error" if fields.get("event.outcome") == "failure" else "info",
            "message": action, "ecs.version": "8.11.0", "event.dataset": "agentwatch", "event.action": action,
            "event.duration": int(duration_ms * 1e6), "trace.id": trace, "span.id": "00f067aa0ba902b7",
            "service.name": "support", **fields}


def _index(fake_es, docs, data_stream="logs-agentwatch-default"):
    with fake_es.lock:
        fake_es.state.docs.setdefault(data_stream, []).extend((f"d{i}", d) for i, d in enumerate(docs))


def _run_docs(now: str = "2099-01-01T00:00:0"):
    return [
        _rec(f"{now}1.000Z", sc.LOG_EVENT_LLM_CALL, 800, **{
            "event.outcome": "success", "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 1200, "gen_ai.usage.output_tokens": 300,
            "agentwatch.usage.cost_usd": 0.006}),
        _rec(f"{now}1.500Z", sc.LOG_EVENT_TOOL_CALL, 400, **{
            "event.outcome": "failure", "gen_ai.agent.name": "support", "gen_ai.tool.name": "lookup_order",
            "error.type": "TimeoutError"}),
        _rec(f"{now}3.000Z", sc.LOG_EVENT_LLM_CALL, 1000, **{
            "event.outcome": "failure", "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o", "agentwatch.usage.unavailable": True,
            "error.type": "RateLimitError", "error.message": "Rate limit [REDACTED] reached"}),
        _rec(f"{now}3.100Z", sc.LOG_EVENT_AGENT_RUN, 3100, **{
            "event.outcome": "failure", "gen_ai.agent.name": "support", "error.type": "RateLimitError",
            "gen_ai.invoke_agent.inference_calls": 2, "gen_ai.invoke_agent.tool_calls": 1,
            "gen_ai.usage.input_tokens": 1200, "gen_ai.usage.output_tokens": 300,
            "agentwatch.usage.cost_usd": 0.006}),
    ]


def test_logs_by_trace_prints_the_timeline(fake_es):
    _index(fake_es, _run_docs() + [_rec("2099-01-01T00:00:05.000Z", sc.LOG_EVENT_LLM_CALL, 5, trace=OTHER)])
    result = _cli("logs", "--url", fake_es.url, "--trace-id", TRACE)
    assert result.exit_code == 0, result.output
    (search,) = [r for r in fake_es.requests if r.path.endswith("/_search")]
    assert search.path == "/logs-agentwatch-default/_search"
    body = search.json()
    assert body["query"] == {"bool": {"filter": [{"term": {"trace.id": TRACE}}]}}
    assert body["sort"] == [{"@timestamp": {"order": "asc"}}]
    out = result.output
    assert f"trace {TRACE}  (support)" in out
    lines = [line for line in out.splitlines() if "│" in line]
    assert [line.split("│")[1].strip() for line in lines] == ["run", "llm", "tool", "llm"], out
    run, llm, tool, failed = lines
    assert "0.000" in run and "RateLimitError" in run and "3.100s" in run
    assert "chat gpt-4o" in llm and "1,200" in llm and "300" in llm and "$0.006 " in llm
    assert "lookup_order" in tool and "TimeoutError" in tool
    assert "Rate limit [REDACTED] reached" in failed, "record text is shown as text, not as markup"
    assert "2 LLM calls, 1 tool calls, 3 errors, 1,200 input + 300 output tokens, cost $0.006" in out


def test_logs_json(fake_es):
    _index(fake_es, _run_docs())
    result = _cli("logs", "--url", fake_es.url, "--trace-id", TRACE, "--json")
    data = json.loads(result.output)
    (trace,) = data["traces"]
    assert trace["trace_id"] == TRACE and data["data_stream"] == "logs-agentwatch-default"
    assert trace["totals"] == {"llm_calls": 2, "tool_calls": 1, "errors": 3, "input_tokens": 1200,
                               "output_tokens": 300, "cost_usd": 0.006, "cost_unknown": False, "agents": ["support"]}
    assert [e["kind"] for e in trace["events"]] == ["run", "llm", "tool", "llm"]
    assert [e["offset_s"] for e in trace["events"]] == [0.0, 0.2, 1.1, 2.0]
    assert trace["events"][3]["error"] == "Rate limit [REDACTED] reached"
    assert trace["events"][1]["record"]["gen_ai.request.model"] == "gpt-4o"


def test_logs_by_agent_searches_its_recent_runs(fake_es):
    old = [dict(d, **{"trace.id": OTHER, "@timestamp": "2000-01-01T00:00:00.000Z"}) for d in _run_docs()]
    _index(fake_es, _run_docs() + old)
    result = _cli("logs", "--url", fake_es.url, "--agent", "support", "--since", "2h")
    assert result.exit_code == 0, result.output
    first, second = [r.json() for r in fake_es.requests if r.path.endswith("/_search")]
    assert first["query"] == {"bool": {"filter": [
        {"term": {"gen_ai.agent.name": "support"}}, {"term": {"event.action": "gen_ai.invoke_agent"}},
        {"range": {"@timestamp": {"gte": "now-2h"}}}]}}
    assert first["sort"] == [{"@timestamp": {"order": "desc"}}] and first["size"] == 20
    assert second["query"] == {"bool": {"filter": [{"terms": {"trace.id": [TRACE]}}]}}
    assert TRACE in result.output and OTHER not in result.output


def test_logs_reads_collector_written_documents(fake_es):
    """The collector's ECS mode writes nested objects and an upper-case level unless transformed."""
    def nest(doc):
        out: dict = {}
        for key, value in doc.items():
            node = out
            *parents, leaf = key.split(".") if key != "@timestamp" else ["@timestamp"]
            for p in parents:
                node = node.setdefault(p, {})
            node[leaf] = value
        return out
    _index(fake_es, [nest(d) for d in _run_docs()])
    data = json.loads(_cli("logs", "--url", fake_es.url, "--trace-id", TRACE, "--json").output)
    assert data["traces"][0]["totals"]["llm_calls"] == 2
    assert data["traces"][0]["totals"]["input_tokens"] == 1200


def test_logs_usage_errors_and_nothing_found(fake_es):
    result = CliRunner().invoke(main, ["logs", "--url", fake_es.url])
    assert result.exit_code == 2 and "exactly one of --trace-id and --agent" in result.output
    result = CliRunner().invoke(main, ["logs", "--url", fake_es.url, "--trace-id", "x", "--agent", "a"])
    assert result.exit_code == 2
    result = CliRunner().invoke(main, ["logs", "--url", fake_es.url, "--trace-id", "not-hex!"])
    assert result.exit_code == 2 and "not a hex trace id" in result.output
    result = CliRunner().invoke(main, ["logs", "--url", fake_es.url, "--agent", "a", "--since", "yesterday"])
    assert result.exit_code == 1 and "not a duration" in result.output
    assert not [r for r in fake_es.requests if r.path.endswith("/_search")], "no request for a bad command"
    result = CliRunner().invoke(main, ["logs", "--url", fake_es.url, "--trace-id", TRACE])
    assert result.exit_code == 1 and "no log records for trace" in result.output
    result = CliRunner().invoke(main, ["logs", "--url", fake_es.url, "--agent", "nobody", "--json"])
    assert result.exit_code == 1 and json.loads(result.stdout)["traces"] == []


def test_timeline_marks_unknown_cost_but_not_for_failed_calls():
    docs = _run_docs()
    (tl,) = elastic.build_timelines(docs)
    assert tl.cost_unknown is False, "a failed call without usage costs nothing"
    unpriced = dict(docs[0], **{"agentwatch.usage.cost_unknown": True})
    del unpriced["agentwatch.usage.cost_usd"]
    (tl,) = elastic.build_timelines([unpriced])
    assert tl.cost_unknown is True and tl.cost_usd == 0.0


def test_timeline_orders_by_the_exact_start_when_records_carry_it():
    """A run's record is written after its end (its metrics come first), so @timestamp - duration can put the
    run after its first LLM call; `event.start` is exact."""
    from agentwatch.tooling.elastic import build_timelines

    run = {"trace.id": "t", "event.action": "gen_ai.invoke_agent", "gen_ai.agent.name": "billing",
           "@timestamp": "2026-11-24T05:00:00.000900Z", "event.duration": 500_000,
           "event.start": "2026-11-24T05:00:00.000100Z"}
    llm = {"trace.id": "t", "event.action": "gen_ai.client.inference", "gen_ai.operation.name": "chat",
           "gen_ai.request.model": "gpt-4o-mini", "@timestamp": "2026-11-24T05:00:00.000450Z",
           "event.duration": 200_000, "event.start": "2026-11-24T05:00:00.000250Z"}
    (timeline,) = build_timelines([llm, run])
    assert [e.kind for e in timeline.events] == ["run", "llm"]
