"""Shared fixtures: the stub LLM server, and in-memory OpenTelemetry providers with both clients instrumented."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

sys.path.insert(0, str(Path(__file__).parent))

from agentwatch.tooling.demo.stub import StubServer  # noqa: E402
from agentwatch.semconv import INFERENCE_OPERATIONS  # noqa: E402
from agentwatch.runtime import telemetry  # noqa: E402
from agentwatch.runtime.instrumentors.anthropic import AnthropicInstrumentor  # noqa: E402
from agentwatch.runtime.instrumentors.openai import OpenAIInstrumentor  # noqa: E402

REPO = Path(__file__).resolve().parent.parent

# --- the two layers of the suite ---------------------------------------------------------------------------------
# unit: in this process only (the in-process stub, fake Elasticsearch, OTLP receiver and CliRunner included); no
#       child process, no external binary, no network: `pytest -m unit` runs them in seconds.
# e2e:  real programs (the agentwatch CLI, agents under opentelemetry-instrument, `python -c`, Prometheus,
#       Alertmanager, promtool, amtool, kubectl, openssl, pip) or waits on them.
# Each test module declares `TEST_LAYER = "unit"` or `"e2e"` for its tests; a test marked @pytest.mark.unit or
# @pytest.mark.e2e itself is that instead.
LAYERS = ("unit", "e2e")


@pytest.hookimpl(tryfirst=True)  # before -m deselects anything
def pytest_collection_modifyitems(config, items):
    wrong = []
    for item in items:
        own = {mark.name for mark in item.iter_markers() if mark.name in LAYERS}
        declared = getattr(item.module, "TEST_LAYER", None)
        if not own and declared in LAYERS:
            item.add_marker(declared)
        elif len(own) != 1:
            wrong.append(item.nodeid)
    if wrong:
        raise pytest.UsageError(f"every test is unit or e2e: declare TEST_LAYER = \"unit\" or \"e2e\" in its module, "
                                f"or mark it with exactly one of @pytest.mark.unit, @pytest.mark.e2e: {wrong[:5]}")


@pytest.fixture(scope="session")
def stub():
    with StubServer() as server:
        yield server


@dataclass
class Captured:
    spans: InMemorySpanExporter
    metric_reader: InMemoryMetricReader
    logs: InMemoryLogRecordExporter

    def finished(self):
        return list(self.spans.get_finished_spans())

    def inference_spans(self):
        return [s for s in self.finished() if s.attributes.get("gen_ai.operation.name") in INFERENCE_OPERATIONS
                and s.instrumentation_scope.name == "agentwatch"]

    def only_span(self):
        spans = self.inference_spans()
        assert len(spans) == 1, [s.name for s in spans]
        return spans[0]

    def metric_points(self, name):
        data = self.metric_reader.get_metrics_data()
        points = []
        for rm in data.resource_metrics if data else ():
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    if metric.name == name:
                        points.extend(metric.data.data_points)
        return points

    def log_records(self):
        return [r.log_record for r in self.logs.get_finished_logs()]


def _instrumented(monkeypatch, env: dict[str, str] | None = None):
    for key in ("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "AGENTWATCH_STREAM_USAGE",
                "AGENTWATCH_JSON_LOGS", "AGENTWATCH_PRICES_FILE"):
        monkeypatch.delenv(key, raising=False)
    for key, value in (env or {}).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("ANTHROPIC_OPEN_TELEMETRY", "false")
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    logs = InMemoryLogRecordExporter()
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
    telemetry.reset_telemetry()
    instrumentors = [OpenAIInstrumentor(), AnthropicInstrumentor()]
    for instrumentor in instrumentors:
        instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider,
                                logger_provider=logger_provider)
    return Captured(spans, reader, logs), instrumentors


@pytest.fixture
def otel(monkeypatch):
    captured, instrumentors = _instrumented(monkeypatch)
    yield captured
    for instrumentor in instrumentors:
        instrumentor.uninstrument()
    telemetry.reset_telemetry()


@pytest.fixture
def otel_factory(monkeypatch):
    """Instrument with extra environment variables (content capture, stream usage injection, ...)."""
    made = []

    def make(**env):
        captured, instrumentors = _instrumented(monkeypatch, env)
        made.extend(instrumentors)
        return captured

    yield make
    for instrumentor in made:
        instrumentor.uninstrument()
    telemetry.reset_telemetry()


@pytest.fixture
def openai_client(stub):
    import openai

    return openai.OpenAI(base_url=stub.openai_base_url, api_key="sk-test-SECRETKEY0123456789", max_retries=0)


@pytest.fixture
def async_openai_client(stub):
    import openai

    return openai.AsyncOpenAI(base_url=stub.openai_base_url, api_key="sk-test-SECRETKEY0123456789", max_retries=0)


@pytest.fixture
def anthropic_client(stub):
    import anthropic

    return anthropic.Anthropic(base_url=stub.anthropic_base_url, api_key="sk-ant-SECRETKEY0123456789",
                               max_retries=0)


@pytest.fixture
def async_anthropic_client(stub):
    import anthropic

    return anthropic.AsyncAnthropic(base_url=stub.anthropic_base_url, api_key="sk-ant-SECRETKEY0123456789",
                                    max_retries=0)


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


# --- global providers, for the agent API and the span processor (the OTel API lets a process set them once) ---
@dataclass
class GlobalCapture(Captured):
    processor: object = None

    def metric_points(self, name):
        self._collect()
        return [p for (metric, p) in self._points if metric == name]

    def metric(self, name):
        self._collect()
        for metric_name, metric in self._metrics:
            if metric_name == name:
                return metric
        return None

    def _collect(self):
        data = self.metric_reader.get_metrics_data()
        for rm in data.resource_metrics if data else ():
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    self._metrics.append((metric.name, metric))
                    self._points.extend((metric.name, p) for p in metric.data.data_points)

    def spans_named(self, prefix):
        return [s for s in self.finished() if s.name.startswith(prefix)]

    def run_spans(self, agent):
        return [s for s in self.finished() if s.name == f"invoke_agent {agent}"]

    def run_span(self, agent):
        (span,) = self.run_spans(agent)
        return span

    def descendants(self, root):
        """Every finished span below `root`, at any depth."""
        by_id = {s.context.span_id: s for s in self.finished()}

        def under(span):
            parent = span.parent
            while parent is not None:
                if parent.span_id == root.context.span_id:
                    return True
                parent = by_id[parent.span_id].parent if parent.span_id in by_id else None
            return False

        return [s for s in self.finished() if under(s)]

    def llm_calls_under(self, root):
        """agentwatch's LLM-call spans below `root`."""
        inference = {s.context.span_id for s in self.inference_spans()}
        return [s for s in self.descendants(root) if s.context.span_id in inference]


_GLOBAL: dict = {}


def _global_providers():
    if not _GLOBAL:
        from opentelemetry import _logs, metrics, trace
        from opentelemetry.sdk.metrics import Counter, Histogram, UpDownCounter
        from opentelemetry.sdk.metrics.export import AggregationTemporality

        from agentwatch.runtime.processor import ensure_processor

        spans = InMemorySpanExporter()
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
        trace.set_tracer_provider(tracer_provider)
        delta = {Counter: AggregationTemporality.DELTA, Histogram: AggregationTemporality.DELTA,
                 UpDownCounter: AggregationTemporality.DELTA}
        reader = InMemoryMetricReader(preferred_temporality=delta)
        metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
        logs = InMemoryLogRecordExporter()
        logger_provider = LoggerProvider()
        logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
        _logs.set_logger_provider(logger_provider)
        _GLOBAL.update(spans=spans, reader=reader, logs=logs, processor=ensure_processor(tracer_provider))
    return _GLOBAL


@pytest.fixture
def agent_otel(monkeypatch):
    """Global providers with the agent span processor; both clients instrumented against them."""
    for key in ("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "AGENTWATCH_STREAM_USAGE",
                "AGENTWATCH_JSON_LOGS", "AGENTWATCH_PRICES_FILE", "AGENTWATCH_RUN_MAX_COST_USD",
                "AGENTWATCH_RUN_MAX_TOKENS", "AGENTWATCH_RUN_MAX_INFERENCE_CALLS"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("ANTHROPIC_OPEN_TELEMETRY", "false")
    g = _global_providers()
    g["spans"].clear()
    g["reader"].get_metrics_data()  # drain: delta temporality, so later reads see this test's points only
    g["logs"].clear()
    telemetry.reset_telemetry()
    g["processor"]._telemetry = None
    g["processor"]._instruments = None
    instrumentors = [OpenAIInstrumentor(), AnthropicInstrumentor()]
    for instrumentor in instrumentors:
        instrumentor.instrument()
    capture = GlobalCapture(g["spans"], g["reader"], g["logs"], processor=g["processor"])
    capture._metrics, capture._points = [], []
    yield capture
    for instrumentor in instrumentors:
        instrumentor.uninstrument()
    telemetry.reset_telemetry()
