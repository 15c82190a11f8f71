"""Tests for the in-process OTLP/HTTP receiver used by the integration tests.

Everything goes through the real OTLP/HTTP exporters of the OpenTelemetry SDK
(own providers, never the global ones), so a change in the wire format of a
new SDK release shows up here first.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request

import pytest

from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

TEST_LAYER = "unit"  # every test here is unit unless marked otherwise (conftest.py)

try:  # tests/ is a rootdir-relative path entry unless it becomes a package
    from support.otlp_receiver import OtlpReceiver
except ImportError:  # pragma: no cover
    from tests.otlp_receiver import OtlpReceiver

RESOURCE = Resource.create({"service.name": "receiver-test", "deployment.environment": "test"})
EXPORT_TIMEOUT = 5


@pytest.fixture
def receiver():
    with OtlpReceiver() as rx:
        yield rx


def _tracer_provider(rx: OtlpReceiver, compression: Compression | None = None) -> TracerProvider:
    tp = TracerProvider(resource=RESOURCE)
    exporter = OTLPSpanExporter(
        endpoint=f"{rx.endpoint}/v1/traces", timeout=EXPORT_TIMEOUT, compression=compression
    )
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    return tp


def _meter_provider(
    rx: OtlpReceiver, compression: Compression | None = None, temporality: dict | None = None
) -> MeterProvider:
    exporter = OTLPMetricExporter(
        endpoint=f"{rx.endpoint}/v1/metrics",
        timeout=EXPORT_TIMEOUT,
        compression=compression,
        preferred_temporality=temporality,
    )
    # A huge interval: exports happen only on force_flush()/shutdown().
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    return MeterProvider(resource=RESOURCE, metric_readers=[reader])


def _logger_provider(rx: OtlpReceiver, compression: Compression | None = None) -> LoggerProvider:
    lp = LoggerProvider(resource=RESOURCE)
    exporter = OTLPLogExporter(endpoint=f"{rx.endpoint}/v1/logs", timeout=EXPORT_TIMEOUT, compression=compression)
    lp.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    return lp


# --------------------------------------------------------------------------
# spans
# --------------------------------------------------------------------------


@pytest.mark.parametrize("compression", [None, Compression.Gzip])
def test_spans_roundtrip(receiver: OtlpReceiver, compression):
    tp = _tracer_provider(receiver, compression)
    tracer = tp.get_tracer("agentwatch.test", "1.2.3")
    with tracer.start_as_current_span("invoke_agent demo", kind=SpanKind.INTERNAL) as parent:
        with tracer.start_as_current_span("chat gpt-4o", kind=SpanKind.CLIENT) as child:
            child.set_attribute("gen_ai.request.model", "gpt-4o")
            child.set_attribute("gen_ai.usage.input_tokens", 12)
            child.set_attribute("gen_ai.request.temperature", 0.5)
            child.set_attribute("gen_ai.request.stream", True)
            child.set_attribute("gen_ai.response.finish_reasons", ["stop", "length"])
            child.add_event("gen_ai.choice", {"index": 0, "finish_reason": "stop"})
            child.set_status(Status(StatusCode.ERROR, "rate limited"))
        parent.set_status(Status(StatusCode.OK))
    tp.shutdown()

    assert receiver.wait_for(lambda r: len(r.spans()) == 2, timeout=5)
    assert receiver.errors == []
    if compression is Compression.Gzip:
        assert {ri.content_encoding for ri in receiver.requests} == {"gzip"}
    # raw_bodies hold the *decompressed* protobuf: plain strings are greppable.
    assert b"gpt-4o" in receiver.raw_bytes()
    assert any(b"rate limited" in body for body in receiver.raw_bodies)

    (chat,) = receiver.spans_named("chat ")
    (agent,) = receiver.spans_named("invoke_agent")
    assert chat.kind == "CLIENT" and agent.kind == "INTERNAL"
    assert chat.trace_id == agent.trace_id
    assert chat.trace_id == format(child.get_span_context().trace_id, "032x")
    assert chat.span_id == format(child.get_span_context().span_id, "016x")
    assert chat.parent_span_id == agent.span_id
    assert agent.parent_span_id == "" and agent.is_root
    assert receiver.children_of(agent) == [chat]
    assert receiver.span_by_id(agent.span_id) == agent
    assert chat.attributes == {
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.usage.input_tokens": 12,
        "gen_ai.request.temperature": 0.5,
        "gen_ai.request.stream": True,
        "gen_ai.response.finish_reasons": ["stop", "length"],
    }
    assert chat.status_code == "ERROR" and chat.status_message == "rate limited"
    assert agent.status_code == "OK"
    assert chat.events == [("gen_ai.choice", {"index": 0, "finish_reason": "stop"})]
    name, attrs = chat.events[0]
    assert name == "gen_ai.choice" and attrs["index"] == 0
    assert chat.event_names() == ["gen_ai.choice"]
    assert 0 < chat.start_time_unix_nano <= chat.end_time_unix_nano
    assert chat.duration_ns >= 0
    assert chat.resource_attributes["service.name"] == "receiver-test"
    assert chat.resource_attributes["deployment.environment"] == "test"
    assert chat.scope_name == "agentwatch.test" and chat.scope_version == "1.2.3"


def test_unset_status_and_default_kind(receiver: OtlpReceiver):
    tp = _tracer_provider(receiver)
    with tp.get_tracer("t").start_as_current_span("plain"):
        pass
    tp.shutdown()
    assert receiver.wait_for(lambda r: r.spans_named("plain"), timeout=5)
    span = receiver.spans_named("plain")[0]
    assert span.status_code == "UNSET" and span.status_message == ""
    assert span.kind == "INTERNAL"
    assert span.events == [] and span.attributes == {}


# --------------------------------------------------------------------------
# metrics
# --------------------------------------------------------------------------


@pytest.mark.parametrize("compression", [None, Compression.Gzip])
def test_metrics_histogram_and_counter(receiver: OtlpReceiver, compression):
    tp = TracerProvider(resource=RESOURCE)  # local, no exporter: only for exemplar context
    mp = _meter_provider(receiver, compression)
    meter = mp.get_meter("agentwatch.metrics", "0.1")
    hist = meter.create_histogram("gen_ai.client.token.usage", unit="{token}", description="tokens")
    counter = meter.create_counter("agentwatch.llm.calls", unit="{call}", description="calls")

    with tp.get_tracer("t").start_as_current_span("chat") as span:
        hist.record(12, {"gen_ai.token.type": "input", "gen_ai.request.model": "m"})
        hist.record(30, {"gen_ai.token.type": "output", "gen_ai.request.model": "m"})
        counter.add(1, {"gen_ai.request.model": "m"})
    assert mp.force_flush(timeout_millis=5000)

    assert receiver.wait_for(lambda r: r.metric("agentwatch.llm.calls") is not None, timeout=5)
    counter_metric = receiver.metric("agentwatch.llm.calls")
    assert counter_metric.kind == "sum" and counter_metric.is_monotonic
    assert counter_metric.temporality == "cumulative"
    assert counter_metric.unit == "{call}" and counter_metric.description == "calls"
    assert counter_metric.scope_name == "agentwatch.metrics"
    assert counter_metric.resource_attributes["service.name"] == "receiver-test"
    assert [(p.attributes, p.value) for p in counter_metric.points] == [({"gen_ai.request.model": "m"}, 1)]

    h = receiver.metric("gen_ai.client.token.usage")
    assert h.kind == "histogram" and not h.is_monotonic
    assert h.unit == "{token}"
    inp = h.point(**{"gen_ai.token.type": "input"})
    out = h.point(**{"gen_ai.token.type": "output"})
    assert inp.count == 1 and inp.sum == 12 and inp.min == 12 and inp.max == 12
    assert out.count == 1 and out.sum == 30
    assert len(inp.bucket_counts) == len(inp.explicit_bounds) + 1
    assert sum(inp.bucket_counts) == 1
    assert inp.explicit_bounds[:3] == [0.0, 5.0, 10.0]  # SDK default boundaries
    # the default exemplar filter samples measurements taken inside a sampled span
    assert inp.exemplar_count == 1
    assert inp.exemplars[0].trace_id == format(span.get_span_context().trace_id, "032x")
    assert inp.exemplars[0].span_id == format(span.get_span_context().span_id, "016x")

    # Second cumulative export re-sends the series: merge keeps the latest point.
    counter.add(2, {"gen_ai.request.model": "m"})
    counter.add(5, {"gen_ai.request.model": "other"})
    hist.record(8, {"gen_ai.token.type": "input", "gen_ai.request.model": "m"})
    assert mp.force_flush(timeout_millis=5000)
    mp.shutdown()
    assert receiver.wait_for(
        lambda r: len([m for m in r.metrics() if m.name == "agentwatch.llm.calls"]) >= 2, timeout=5
    )
    values = {p.attributes["gen_ai.request.model"]: p.value for p in receiver.metric("agentwatch.llm.calls").points}
    assert values == {"m": 3, "other": 5}
    hp = receiver.histogram_points("gen_ai.client.token.usage")
    assert len(hp) == 2
    inp = next(p for p in hp if p.attributes["gen_ai.token.type"] == "input")
    assert inp.count == 2 and inp.sum == 20 and inp.min == 8
    assert receiver.histogram_points("agentwatch.llm.calls") == []
    assert receiver.histogram_points("missing") == [] and receiver.metric("missing") is None
    assert {"agentwatch.llm.calls", "gen_ai.client.token.usage"} <= receiver.metric_names()
    assert receiver.errors == []
    if compression is Compression.Gzip:
        assert all(ri.content_encoding == "gzip" for ri in receiver.requests)


def test_metrics_delta_temporality_accumulates(receiver: OtlpReceiver):
    delta = {Counter: AggregationTemporality.DELTA, Histogram: AggregationTemporality.DELTA}
    mp = _meter_provider(receiver, temporality=delta)
    meter = mp.get_meter("m")
    counter = meter.create_counter("calls")
    hist = meter.create_histogram("latency", unit="s")
    counter.add(2, {"k": "v"})
    hist.record(0.5)
    assert mp.force_flush(timeout_millis=5000)
    counter.add(3, {"k": "v"})
    hist.record(1.5)
    assert mp.force_flush(timeout_millis=5000)
    mp.shutdown()

    assert receiver.wait_for(lambda r: len([m for m in r.metrics() if m.name == "calls"]) == 2, timeout=5)
    calls = receiver.metric("calls")
    assert calls.temporality == "delta"
    assert [p.value for p in calls.points] == [5]
    (lat,) = receiver.histogram_points("latency")
    assert lat.count == 2 and lat.sum == 2.0 and lat.min == 0.5 and lat.max == 1.5
    assert sum(lat.bucket_counts) == 2


def test_gauge(receiver: OtlpReceiver):
    mp = _meter_provider(receiver)
    gauge = mp.get_meter("m").create_gauge("agentwatch.budget.remaining", unit="USD")
    gauge.set(4.25, {"agent": "a"})
    assert mp.force_flush(timeout_millis=5000)
    mp.shutdown()
    assert receiver.wait_for(lambda r: r.metric("agentwatch.budget.remaining"), timeout=5)
    g = receiver.metric("agentwatch.budget.remaining")
    assert g.kind == "gauge" and g.temporality == "" and not g.is_monotonic
    assert [(p.attributes, p.value) for p in g.points] == [({"agent": "a"}, 4.25)]


# --------------------------------------------------------------------------
# logs
# --------------------------------------------------------------------------


@pytest.mark.parametrize("compression", [None, Compression.Gzip])
def test_logs_with_trace_correlation(receiver: OtlpReceiver, compression):
    tp = TracerProvider(resource=RESOURCE)
    lp = _logger_provider(receiver, compression)
    logger = lp.get_logger("agentwatch.runtime.logs", "0.2")
    with tp.get_tracer("t").start_as_current_span("chat") as span:
        logger.emit(
            body={"role": "user", "content": "hello", "parts": [1, 2]},
            attributes={"gen_ai.system": "openai", "n": 3},
            severity_number=SeverityNumber.INFO,
            severity_text="INFO",
            event_name="gen_ai.user.message",
        )
    logger.emit(body="outside any span", severity_number=SeverityNumber.WARN, severity_text="WARN")
    lp.shutdown()

    assert receiver.wait_for(lambda r: len(r.logs()) == 2, timeout=5)
    assert receiver.errors == []
    inside, outside = receiver.logs()
    assert inside.body == {"role": "user", "content": "hello", "parts": [1, 2]}
    assert inside.attributes == {"gen_ai.system": "openai", "n": 3}
    assert inside.severity_text == "INFO" and inside.severity_number == SeverityNumber.INFO.value
    assert inside.event_name == "gen_ai.user.message"
    assert receiver.logs_with_event("gen_ai.user.message") == [inside]
    ctx = span.get_span_context()
    assert inside.trace_id == format(ctx.trace_id, "032x")
    assert inside.span_id == format(ctx.span_id, "016x")
    assert inside.time_unix_nano > 0 or inside.observed_time_unix_nano > 0
    assert inside.resource_attributes["service.name"] == "receiver-test"
    assert inside.scope_name == "agentwatch.runtime.logs"

    assert outside.body == "outside any span"
    assert outside.trace_id == "" and outside.span_id == ""
    assert outside.event_name == "" and outside.severity_number == SeverityNumber.WARN.value
    assert b"hello" in receiver.raw_bytes()
    if compression is Compression.Gzip:
        assert {ri.content_encoding for ri in receiver.requests} == {"gzip"}


# --------------------------------------------------------------------------
# raw HTTP: JSON, error handling, lifecycle
# --------------------------------------------------------------------------


def _post(url: str, body: bytes, content_type: str, encoding: str | None = None):
    headers = {"Content-Type": content_type}
    if encoding:
        headers["Content-Encoding"] = encoding
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.headers.get("Content-Type"), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type"), exc.read()


def test_otlp_json_traces_and_logs(receiver: OtlpReceiver):
    trace_id = "5b8efff798038103d269b633813fc60c"
    payload = {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "json-svc"}}]},
                "scopeSpans": [
                    {
                        "scope": {"name": "json-scope"},
                        "spans": [
                            {
                                "traceId": trace_id,
                                "spanId": "eee19b7ec3c1b174",
                                "parentSpanId": "eee19b7ec3c1b173",
                                "name": "json span",
                                "kind": 3,
                                "startTimeUnixNano": "1544712660000000000",
                                "endTimeUnixNano": "1544712661000000000",
                                "attributes": [
                                    {"key": "n", "value": {"intValue": "42"}},
                                    {"key": "ok", "value": {"boolValue": True}},
                                    {
                                        "key": "arr",
                                        "value": {"arrayValue": {"values": [{"stringValue": "a"}, {"doubleValue": 1.5}]}},
                                    },
                                ],
                                "status": {"code": 2, "message": "boom"},
                                "someFutureField": {"ignored": True},
                            }
                        ],
                    }
                ],
            }
        ]
    }
    status, ctype, body = _post(f"{receiver.endpoint}/v1/traces", json.dumps(payload).encode(), "application/json")
    assert status == 200 and ctype == "application/json" and json.loads(body) == {}
    (span,) = receiver.spans()
    assert span.trace_id == trace_id and span.span_id == "eee19b7ec3c1b174"
    assert span.parent_span_id == "eee19b7ec3c1b173"
    assert span.kind == "CLIENT" and span.status_code == "ERROR" and span.status_message == "boom"
    assert span.attributes == {"n": 42, "ok": True, "arr": ["a", 1.5]}
    assert span.start_time_unix_nano == 1544712660000000000
    assert span.resource_attributes == {"service.name": "json-svc"} and span.scope_name == "json-scope"

    logs = {
        "resourceLogs": [
            {
                "scopeLogs": [
                    {
                        "logRecords": [
                            {
                                "body": {"kvlistValue": {"values": [{"key": "k", "value": {"stringValue": "v"}}]}},
                                "severityNumber": 17,
                                "traceId": trace_id,
                                "spanId": "eee19b7ec3c1b174",
                                "eventName": "evt",
                            }
                        ]
                    }
                ]
            }
        ]
    }
    gz = gzip.compress(json.dumps(logs).encode())
    status, _, _ = _post(f"{receiver.endpoint}/v1/logs", gz, "application/json; charset=utf-8", "gzip")
    assert status == 200
    (log,) = receiver.logs()
    assert log.body == {"k": "v"} and log.severity_number == 17 and log.event_name == "evt"
    assert log.trace_id == trace_id and log.span_id == "eee19b7ec3c1b174"
    assert json.dumps(logs).encode() in receiver.raw_bodies  # stored decompressed


def test_protobuf_response_and_errors(receiver: OtlpReceiver):
    status, ctype, body = _post(f"{receiver.endpoint}/v1/metrics", b"", "application/x-protobuf")
    assert (status, ctype, body) == (200, "application/x-protobuf", b"")
    assert receiver.metrics() == []

    assert _post(f"{receiver.endpoint}/v1/traces", b"\xff\xff\xff", "application/x-protobuf")[0] == 400
    assert _post(f"{receiver.endpoint}/v1/traces", b"not gzip", "application/x-protobuf", "gzip")[0] == 400
    assert _post(f"{receiver.endpoint}/v1/nope", b"", "application/x-protobuf")[0] == 404
    assert [r.status for r in receiver.requests] == [200, 400, 400, 404]
    assert len(receiver.errors) == 3
    assert len(receiver.raw_bodies) == 4

    receiver.clear()
    assert receiver.raw_bodies == [] and receiver.requests == [] and receiver.errors == []
    assert receiver.spans() == [] and receiver.metrics() == [] and receiver.logs() == []


def test_wait_for_timeout_and_predicate_errors(receiver: OtlpReceiver):
    assert receiver.wait_for(lambda r: r.spans()[0].name == "x", timeout=0.2) is False
    assert receiver.wait_for(lambda r: True, timeout=0) is True


def test_lifecycle():
    rx = OtlpReceiver()
    with pytest.raises(RuntimeError):
        rx.endpoint  # noqa: B018
    rx.start()
    try:
        assert rx.endpoint.startswith("http://127.0.0.1:") and rx.port > 0
        assert rx.start() is rx  # idempotent
        assert rx.otel_env() == {
            "OTEL_EXPORTER_OTLP_ENDPOINT": rx.endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        }
    finally:
        rx.stop()
    rx.stop()  # idempotent


# --------------------------------------------------------------------------
# cross-process reception
# --------------------------------------------------------------------------

_CHILD = textwrap.dedent(
    """
    import os
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    assert os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"].startswith("http://127.0.0.1:")
    tp = TracerProvider(resource=Resource.create({"service.name": "child-proc"}))
    tp.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))  # endpoint from env
    with tp.get_tracer("child").start_as_current_span("child work") as span:
        span.set_attribute("pid", os.getpid())
    tp.shutdown()
    """
)


@pytest.mark.e2e
def test_cross_process(receiver: OtlpReceiver):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(receiver.otel_env())
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 0, proc.stderr
    assert receiver.wait_for(lambda r: r.spans_named("child work"), timeout=5)
    (span,) = receiver.spans_named("child work")
    assert span.resource_attributes["service.name"] == "child-proc"
    assert span.attributes["pid"] != os.getpid()
    assert span.scope_name == "child"
