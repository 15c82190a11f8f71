"""ElasticsearchHandler: bulk bodies, retries of only the failed documents, error accounting, a full queue
that drops instead of blocking, flush at shutdown, auth and TLS, no credential in any output, and its wiring
into agentwatch's log records (AGENTWATCH_ES_URL, agentwatch.init(elasticsearch_url=...))."""

from __future__ import annotations

import base64
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from agentwatch.runtime import elasticsearch as elastic
from agentwatch.runtime import telemetry
from agentwatch import config
from agentwatch import semconv as sc
from agentwatch.tooling.cli import main
from agentwatch.config import ElasticsearchSettings
from support.fake_es import FakeElasticsearch

TEST_LAYER = "unit"  # every test here is unit unless marked otherwise (conftest.py)

API_KEY = "VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw=="
PASSWORD = "hunter2-Pa55word"
BASIC = base64.b64encode(f"elastic:{PASSWORD}".encode()).decode()


@pytest.fixture
def fake_es():
    with FakeElasticsearch() as server:
        yield server


def record(i: int, **extra) -> dict:
    return {"@timestamp": "2025-01-01T00:00:00.000Z", "log.level": "info", "message": f"record {i}",
            "event.action": sc.LOG_EVENT_LLM_CALL, "trace.id": "ab" * 16, "seq": i, **extra}


class Counter:
    def __init__(self):
        self.points: list[tuple[int, dict]] = []

    def add(self, n, attributes):
        self.points.append((n, dict(attributes)))

    def total(self, reason: str) -> int:
        return sum(n for n, a in self.points if a.get("error.type") == reason)


def make_handler(server: FakeElasticsearch, settings: ElasticsearchSettings | None = None, **options):
    settings = settings or ElasticsearchSettings.build(server.url)
    options = {"flush_interval": 0.02, "initial_backoff": 0.01, "max_backoff": 0.05, "register_atexit": False,
               "shutdown_timeout": 5.0, **options}
    counter = options.pop("dropped_counter", Counter())
    handler = elastic.ElasticsearchHandler(elastic.build_client(settings, quiet=True), settings.namespace,
                                           dropped_counter=counter, settings=settings, **options)
    handler.counter = counter
    return handler


@pytest.fixture
def handlers():
    made = []
    yield made
    for h in made:
        h.close(1.0)


def seqs(request) -> list[int]:
    return [line["seq"] for line in request.ndjson() if "seq" in line]


# --- bulk bodies -----------------------------------------------------------------------------------------
def test_bulk_body_is_ndjson_create_into_the_data_stream(fake_es, handlers):
    h = make_handler(fake_es)
    handlers.append(h)
    for i in range(3):
        h.write(record(i))
    assert h.flush(5)
    (bulk,) = fake_es.bulk_requests()
    assert bulk.path == "/_bulk"
    assert "ndjson" in bulk.headers["content-type"]
    assert bulk.body.endswith(b"\n")
    lines = bulk.ndjson()
    assert lines[0::2] == [{"create": {"_index": "logs-agentwatch-default"}}] * 3
    docs = lines[1::2]
    assert [d["seq"] for d in docs] == [0, 1, 2]
    assert docs[0] == {**record(0), "data_stream.type": "logs", "data_stream.dataset": "agentwatch",
                       "data_stream.namespace": "default"}
    assert h.stats() == {"queued": 0, "indexed": 3, "failed": 0, "dropped": 0, "retried": 0, "errors": {}}
    assert len(fake_es.documents()) == 3


def test_namespace_picks_the_data_stream(fake_es, handlers):
    h = make_handler(fake_es, ElasticsearchSettings.build(fake_es.url, namespace="prod"))
    handlers.append(h)
    h.write(record(0))
    h.flush(5)
    assert fake_es.bulk_requests()[0].ndjson()[0] == {"create": {"_index": "logs-agentwatch-prod"}}
    assert fake_es.documents("logs-agentwatch-prod")[0]["data_stream.namespace"] == "prod"


def test_batches_are_bounded(fake_es, handlers):
    h = make_handler(fake_es, batch_size=10)
    handlers.append(h)
    for i in range(35):
        h.write(record(i))
    assert h.flush(5)
    sizes = [len(seqs(r)) for r in fake_es.bulk_requests()]
    assert max(sizes) <= 10 and sum(sizes) == 35


# --- retries ---------------------------------------------------------------------------------------------
def test_429_resends_only_the_rejected_documents(fake_es, handlers):
    fake_es.reject(lambda d: d["seq"] in (1, 3), status=429, times=2)  # each of 1 and 3 once
    h = make_handler(fake_es)
    handlers.append(h)
    for i in range(5):
        h.write(record(i))
    assert h.flush(5)
    first, second = fake_es.bulk_requests()
    assert seqs(first) == [0, 1, 2, 3, 4]
    assert seqs(second) == [1, 3], "only the documents answered 429 are resent"
    assert sorted(d["seq"] for d in fake_es.documents()) == [0, 1, 2, 3, 4], "each document indexed once"
    assert h.stats()["indexed"] == 5 and h.stats()["retried"] == 2 and h.stats()["failed"] == 0


def test_5xx_item_and_whole_request_failures_are_retried_with_backoff(fake_es, handlers):
    fake_es.fail_requests(503, count=2)
    fake_es.reject(lambda d: d["seq"] == 2, status=500, times=1)
    h = make_handler(fake_es, initial_backoff=0.1, max_backoff=1.0)
    handlers.append(h)
    for i in range(3):
        h.write(record(i))
    started = time.monotonic()
    assert h.flush(10)
    elapsed = time.monotonic() - started
    requests = fake_es.bulk_requests()
    assert [seqs(r) for r in requests] == [[0, 1, 2], [0, 1, 2], [0, 1, 2], [2]]
    # jittered exponential backoff: >= 0.05 + 0.1 + 0.2 seconds between the four requests
    assert elapsed >= 0.35
    assert h.stats()["indexed"] == 3 and h.stats()["retried"] == 7


def test_rejected_documents_are_counted_not_retried(fake_es, handlers):
    fake_es.reject(lambda d: d["seq"] in (0, 2), status=400, times=2)
    h = make_handler(fake_es)
    handlers.append(h)
    for i in range(4):
        h.write(record(i))
    assert h.flush(5)
    assert len(fake_es.bulk_requests()) == 1
    stats = h.stats()
    assert stats["indexed"] == 2 and stats["failed"] == 2
    assert stats["errors"] == {"mapper_parsing_exception": 2}
    assert h.counter.total("rejected") == 2


def test_retries_give_up_after_max_retries(fake_es, handlers):
    fake_es.reject(lambda d: d["seq"] == 1, status=429, times=100)
    h = make_handler(fake_es, max_retries=2)
    handlers.append(h)
    for i in range(3):
        h.write(record(i))
    assert h.flush(5)
    assert [seqs(r) for r in fake_es.bulk_requests()] == [[0, 1, 2], [1], [1]]
    assert h.stats()["failed"] == 1 and h.stats()["errors"] == {"retries_exhausted": 1}
    assert h.counter.total("retries_exhausted") == 1


def test_unreachable_cluster_never_troubles_the_agent(handlers):
    settings = ElasticsearchSettings.build("http://127.0.0.1:9")  # nothing listens on the discard port
    h = make_handler(FakeElasticsearch(), settings, max_retries=1)
    handlers.append(h)
    for i in range(3):
        h.write(record(i))
    assert h.flush(5)
    assert h.stats()["failed"] == 3 and h.counter.total("retries_exhausted") == 3


# --- never blocks, bounded --------------------------------------------------------------------------------
def test_full_queue_drops_and_counts_without_blocking(fake_es, handlers):
    fake_es.set_bulk_delay(0.5)  # a slow cluster
    h = make_handler(fake_es, queue_size=20, batch_size=10)
    handlers.append(h)
    slowest = 0.0
    started = time.perf_counter()
    for i in range(2000):
        t = time.perf_counter()
        h.write(record(i))
        slowest = max(slowest, time.perf_counter() - t)
    total = time.perf_counter() - started
    assert total < 0.5, f"2000 writes took {total:.3f}s"
    assert slowest < 0.05, f"one write took {slowest:.3f}s"
    stats = h.stats()
    assert stats["dropped"] >= 2000 - 20 - 10
    assert h.counter.total("queue_full") == stats["dropped"]
    fake_es.set_bulk_delay(0)
    assert h.flush(10)
    stats = h.stats()
    assert stats["indexed"] + stats["dropped"] == 2000
    assert len(fake_es.documents()) == stats["indexed"]


def test_dropped_records_metric(fake_es, handlers):
    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("test")
    fake_es.set_bulk_delay(0.3)
    h = elastic.open_handler(ElasticsearchSettings.build(fake_es.url, queue_size=2), meter=meter,
                             flush_interval=0.01, register_atexit=False)
    handlers.append(h)
    for i in range(50):
        h.write(record(i))
    dropped = h.stats()["dropped"]
    assert dropped >= 45
    points = [(m.name, m.unit, p.attributes, p.value)
              for rm in reader.get_metrics_data().resource_metrics for sm in rm.scope_metrics
              for m in sm.metrics for p in m.data.data_points]
    assert points == [(sc.METRIC_ES_DROPPED_RECORDS, "{record}", {"error.type": "queue_full"}, dropped)]


def test_a_record_that_cannot_be_serialized_is_counted(fake_es, handlers):
    h = make_handler(fake_es)
    handlers.append(h)
    loop: dict = {}
    loop["self"] = loop
    h.write(record(0, bad=loop))
    h.write(record(1, when=object()))  # unknown types become strings, like the JSON-lines writer
    assert h.flush(5)
    assert h.stats()["failed"] == 1 and h.stats()["errors"] == {"serialization": 1}
    assert [d["seq"] for d in fake_es.documents()] == [1]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is not available on this platform")
def test_a_forked_child_sends_its_own_records(fake_es, handlers):
    h = make_handler(fake_es)
    handlers.append(h)
    h.write(record(0))
    assert h.flush(5)
    pid = os.fork()
    if pid == 0:  # the child: a fresh worker thread, its own queue and connections
        ok = False
        try:
            h.write(record(1))
            ok = h.flush(5) and h.stats()["indexed"] == 2 and h.stats()["queued"] == 0
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    h.write(record(2))
    assert h.flush(5)
    assert sorted(d["seq"] for d in fake_es.documents()) == [0, 1, 2]


# --- flush and shutdown -----------------------------------------------------------------------------------
def test_close_flushes_what_is_queued(fake_es):
    h = make_handler(fake_es, flush_interval=30.0)  # would otherwise wait 30 s for more records
    for i in range(5):
        h.write(record(i))
    started = time.monotonic()
    h.close()
    assert time.monotonic() - started < 2.0
    assert sorted(d["seq"] for d in fake_es.documents()) == [0, 1, 2, 3, 4]
    h.write(record(99))  # after close: dropped and counted, never raised
    assert h.stats()["dropped"] == 1 and h.counter.total("shutdown") == 1


def test_close_gives_up_at_its_deadline(fake_es):
    fake_es.reject(lambda d: True, status=429, times=10_000)
    h = make_handler(fake_es, max_retries=50, initial_backoff=0.2, max_backoff=0.2)
    for i in range(3):
        h.write(record(i))
    time.sleep(0.05)
    started = time.monotonic()
    h.close(timeout=0.5)
    assert time.monotonic() - started < 1.5
    assert h.stats()["dropped"] == 3 and h.counter.total("shutdown") == 3


@pytest.mark.e2e
def test_records_are_flushed_at_interpreter_exit(fake_es, tmp_path):
    script = tmp_path / "exit_agent.py"
    script.write_text(f"""
from agentwatch.runtime import elasticsearch as elastic
from agentwatch.config import ElasticsearchSettings
handler = elastic.open_handler(ElasticsearchSettings.build({fake_es.url!r}), flush_interval=60.0)
for i in range(7):
    handler.write({{"message": "at exit", "seq": i}})
print("exiting without close()")
""")
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert sorted(d["seq"] for d in fake_es.documents()) == list(range(7))


# --- auth, TLS and secrets ------------------------------------------------------------------------------
def test_api_key_and_basic_auth_headers(fake_es, handlers):
    fake_es.require_auth(f"ApiKey {API_KEY}", f"Basic {BASIC}")
    for settings in (ElasticsearchSettings.build(fake_es.url, api_key=API_KEY),
                     ElasticsearchSettings.build(fake_es.url, username="elastic", password=PASSWORD)):
        h = elastic.open_handler(settings, flush_interval=0.02, register_atexit=False)
        handlers.append(h)
        h.write(record(0))
        assert h.flush(5)
        assert h.stats()["indexed"] == 1
    assert [r.headers["authorization"] for r in fake_es.bulk_requests()] == [f"ApiKey {API_KEY}", f"Basic {BASIC}"]


def test_no_credential_in_logs_errors_or_reprs(fake_es, caplog, capfd):
    caplog.set_level(logging.DEBUG)  # every logger: agentwatch, elastic_transport, urllib3
    fake_es.require_auth("ApiKey something-else")
    settings = ElasticsearchSettings.build(f"http://elastic:{PASSWORD}@127.0.0.1:{fake_es.url.rsplit(':', 1)[1]}",
                                           api_key=API_KEY)
    h = elastic.open_handler(settings, flush_interval=0.02, register_atexit=False, max_retries=1,
                             initial_backoff=0.01)
    h.write(record(0))
    assert h.flush(5)
    assert h.stats()["errors"] == {"security_exception": 1}
    h.close()
    dead = ElasticsearchSettings.build(f"https://elastic:{PASSWORD}@127.0.0.1:9", api_key=API_KEY)
    h = elastic.open_handler(dead, flush_interval=0.02, register_atexit=False, max_retries=1, initial_backoff=0.01)
    h.write(record(1))
    h.flush(5)
    h.close()
    from elasticsearch import ApiError, TransportError

    messages = []
    for s in (settings, dead):
        try:
            elastic.build_client(s).info()
        except (ApiError, TransportError) as exc:
            messages.append(elastic.describe_error(exc, s))
    result = CliRunner().invoke(main, ["es", "setup", "--url", f"http://elastic:{PASSWORD}@{fake_es.url[7:]}"],
                                env={config.ENV_ES_API_KEY: API_KEY})
    captured = capfd.readouterr()
    everything = "\n".join([caplog.text, *messages, repr(settings), repr(dead), repr(h), result.output,
                            captured.out, captured.err])
    assert "rejected the credentials (401)" in everything and "cannot connect to https://127.0.0.1:9" in everything
    assert "agentwatch: Elasticsearch rejected 1 log records (401 security_exception" in caplog.text
    for secret in (API_KEY, PASSWORD, BASIC):
        assert secret not in everything


def test_scrub_masks_credentials_in_any_text():
    settings = ElasticsearchSettings.build("https://es:9200", username="elastic", password=PASSWORD)
    text = f"failed: Authorization: Basic {BASIC} at https://elastic:{PASSWORD}@es:9200 api_key={API_KEY}"
    cleaned = elastic.scrub(text, settings)
    assert PASSWORD not in cleaned and BASIC not in cleaned and API_KEY not in cleaned


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl not installed: cannot make a test certificate for the TLS tests")
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=localhost", "-addext",
                    "subjectAltName=IP:127.0.0.1,DNS:localhost"], check=True, capture_output=True)
    return str(cert), str(key)


@pytest.mark.e2e
def test_tls_verification_is_on_by_default_with_a_ca_option(tls_files, handlers):
    cert, key = tls_files
    with FakeElasticsearch(tls=(cert, key)) as server:
        assert server.url.startswith("https://")
        # default: verified against the system CAs, which do not know this self-signed certificate
        result = CliRunner().invoke(main, ["es", "setup", "--url", server.url])
        assert result.exit_code == 1
        assert "TLS verification of" in result.output and "--ca-certs" in result.output
        assert server.state.templates == {}

        result = CliRunner().invoke(main, ["es", "setup", "--url", server.url, "--ca-certs", cert])
        assert result.exit_code == 0, result.output
        assert "logs-agentwatch-default" in server.state.templates

        result = CliRunner().invoke(main, ["es", "setup", "--url", server.url, "--insecure"])
        assert result.exit_code == 0, result.output

        unverified = make_handler(server, ElasticsearchSettings.build(server.url), max_retries=0)
        verified = make_handler(server, ElasticsearchSettings.build(server.url, ca_certs=cert))
        handlers.extend([unverified, verified])
        unverified.write(record(0))
        verified.write(record(1))
        assert unverified.flush(5) and verified.flush(5)
        assert unverified.stats()["failed"] == 1
        assert verified.stats()["indexed"] == 1
        assert [d["seq"] for d in server.documents()] == [1]


def test_insecure_mode_is_announced(caplog):
    caplog.set_level(logging.WARNING, logger="agentwatch")
    elastic.warn_insecure(ElasticsearchSettings.build("https://es:9200", verify_certs=False))
    elastic.warn_insecure(ElasticsearchSettings.build("http://es:9200", api_key=API_KEY))
    assert "TLS certificate verification" in caplog.text and "OFF" in caplog.text
    assert "plain http" in caplog.text and API_KEY not in caplog.text


# --- wiring into agentwatch's log records ------------------------------------------------------------------
def test_handler_requests_are_not_traced(fake_es, agent_otel, handlers):
    """The client's built-in OpenTelemetry spans stay out of the agent's traces for the handler's requests."""
    h = elastic.open_handler(ElasticsearchSettings.build(fake_es.url), flush_interval=0.02, register_atexit=False)
    handlers.append(h)
    h.write(record(0))
    assert h.flush(5) and h.stats()["indexed"] == 1
    assert agent_otel.finished() == []
    elastic.build_client(ElasticsearchSettings.build(fake_es.url)).info()  # an ordinary client is traced
    assert [s.name for s in agent_otel.finished()] == ["info"]


def test_agentwatch_es_url_sends_llm_call_records(fake_es, otel_factory, openai_client, tmp_path):
    json_log = tmp_path / "calls.jsonl"
    otel_factory(AGENTWATCH_ES_URL=fake_es.url, AGENTWATCH_ES_NAMESPACE="unit",
                 AGENTWATCH_JSON_LOGS=str(json_log))
    openai_client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    (tel,) = telemetry._telemetry_cache.values()  # the instrumentors' (providers of the fixture)
    assert tel.elasticsearch_handler is not None and tel.json_writer is not None
    telemetry.flush_log_sinks()
    (doc,) = fake_es.documents("logs-agentwatch-unit")
    assert doc["event.action"] == "gen_ai.client.inference"
    assert doc["gen_ai.request.model"] == "gpt-4o-mini" and doc["gen_ai.usage.input_tokens"] > 0
    assert doc["data_stream.namespace"] == "unit"
    import json

    (line,) = [json.loads(x) for x in json_log.read_text().splitlines()]
    assert {k: v for k, v in doc.items() if not k.startswith("data_stream.")} == line, "same record, both sinks"


def test_bad_es_settings_leave_the_agent_and_other_logs_alone(otel_factory, openai_client, caplog, tmp_path):
    json_log = tmp_path / "calls.jsonl"
    otel_factory(AGENTWATCH_ES_URL="ftp://nope", AGENTWATCH_JSON_LOGS=str(json_log))
    openai_client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    (tel,) = telemetry._telemetry_cache.values()
    assert tel.elasticsearch_handler is None and tel.json_writer is not None
    assert "Elasticsearch logging is off" in caplog.text
    assert len(json_log.read_text().splitlines()) == 1


def test_enable_elasticsearch_reaches_existing_telemetry(fake_es, monkeypatch):
    monkeypatch.setattr(telemetry, "_elasticsearch_override", None)
    telemetry.reset_telemetry()
    try:
        from opentelemetry.sdk._logs import LoggerProvider
        from opentelemetry.sdk.trace import TracerProvider

        def providers():
            return TracerProvider(), MeterProvider(), LoggerProvider()

        first = providers()
        tel = telemetry.get_telemetry(*first)  # created before init(), e.g. by opentelemetry-instrument
        assert tel.elasticsearch_handler is None
        telemetry.enable_elasticsearch(ElasticsearchSettings.build(fake_es.url))
        assert tel.elasticsearch_handler is not None and tel.log_sink is tel.elasticsearch_handler
        second = providers()
        later = telemetry.get_telemetry(*second)
        assert later.elasticsearch_handler is not None
    finally:
        telemetry.reset_telemetry()


@pytest.mark.e2e
def test_init_elasticsearch_url(fake_es, stub, tmp_path):
    script = tmp_path / "init_es_agent.py"
    script.write_text(f"""
import openai, agentwatch
agentwatch.init(service_name="init-es", elasticsearch_url={fake_es.url!r},
                elasticsearch_options={{"namespace": "initns", "api_key": {API_KEY!r}}})
client = openai.OpenAI(base_url={stub.openai_base_url!r}, api_key="sk-test-SECRETKEY0123456789", max_retries=0)
with agentwatch.agent_run("init-es"):
    client.chat.completions.create(model="gpt-4o-mini", messages=[{{"role": "user", "content": "hi"}}])
agentwatch.shutdown()
print("done")
""")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTWATCH_"))}
    fake_es.require_auth(f"ApiKey {API_KEY}")
    proc = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-3000:]
    docs = fake_es.documents("logs-agentwatch-initns")
    assert sorted(d["event.action"] for d in docs) == ["gen_ai.client.inference", "gen_ai.invoke_agent"]
    assert {d["service.name"] for d in docs} == {"init-es"}
    assert API_KEY not in proc.stdout + proc.stderr


@pytest.mark.e2e
def test_package_layering_keeps_the_client_optional_at_import():
    """Importing agentwatch (and its CLI) does not import the Elasticsearch client."""
    code = ("import sys, agentwatch, agentwatch.tooling.cli, agentwatch.tooling.elastic; "
            "print('elasticsearch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         cwd=Path(__file__).parent)
    assert out.stdout.strip() == "False", out.stderr
