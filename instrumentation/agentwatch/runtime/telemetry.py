"""Objects every agentwatch signal shares: the tracer, instruments, logger, price book and settings.

One `Telemetry` per set of OpenTelemetry providers serves all instrumentors and the span processor, so there
is one instrumentation scope, one set of log sinks (JSON lines, Elasticsearch) and one price memo per process.
`report_internal_error` is the fail-open reporter: agentwatch's own exceptions are counted and logged, never
raised into the agent.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry._logs import get_logger

from agentwatch import semconv as sc
from agentwatch import config
from agentwatch.config import ElasticsearchSettings, Settings
from agentwatch.runtime.logs import LogSink, combine_sinks, open_json_writer, redact
from agentwatch.runtime.logs import emit as emit_log
from agentwatch.pricing import PriceBook, PricingConfigError, TokenUsage

_log = logging.getLogger("agentwatch")

SCOPE = sc.SCOPE_NAME
SCOPE_VERSION = "0.1.0"
SCHEMA_URL = "https://opentelemetry.io/schemas/1.41.0"


# --- fail-open -----------------------------------------------------------------------------------------
_last_report: dict[str, float] = {}
_REPORT_INTERVAL_S = 60.0
_internal_error_counter: Any = None


def report_internal_error(where: str) -> None:
    """Counts and logs (at most once a minute per place) an exception raised inside agentwatch."""
    try:
        if _internal_error_counter is not None:
            _internal_error_counter.add(1, {"agentwatch.location": where})
        now = time.monotonic()
        if now - _last_report.get(where, -_REPORT_INTERVAL_S) >= _REPORT_INTERVAL_S:
            _last_report[where] = now
            _log.warning("agentwatch: internal error in %s (instrumentation continues)", where, exc_info=True)
    except Exception:  # noqa: BLE001 - the error reporter itself must never raise
        pass


class LabelLimiter:
    """Bounds the distinct values one metric attribute can take; the overflow becomes `_OTHER`."""

    def __init__(self, limit: int):
        self.limit = limit
        self._seen: set[str] = set()

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        if len(self._seen) >= self.limit:
            return sc.ERROR_OTHER
        self._seen.add(value)
        return value


_LABEL_CACHE_SIZE = 4096


class MetricLabels:
    """Attribute dicts for one kind of call: per call, per token type, and for cost."""

    __slots__ = ("call", "input_tokens", "output_tokens", "price")

    def __init__(self, operation: str, provider: str, request_model: str, response_model: str | None,
                 server_address: str | None, server_port: int | None, error_type: str | None):
        call: dict[str, Any] = {
            sc.GEN_AI_OPERATION_NAME: operation,
            sc.GEN_AI_PROVIDER_NAME: provider,
            sc.GEN_AI_REQUEST_MODEL: request_model,
        }
        if response_model:
            call[sc.GEN_AI_RESPONSE_MODEL] = response_model
        if server_address:
            call[sc.SERVER_ADDRESS] = server_address
            if server_port:
                call[sc.SERVER_PORT] = server_port
        tokens = dict(call)
        if error_type is not None:
            call[sc.ERROR_TYPE] = error_type
        self.call = call
        self.input_tokens = {**tokens, sc.GEN_AI_TOKEN_TYPE: sc.TOKEN_TYPE_INPUT}
        self.output_tokens = {**tokens, sc.GEN_AI_TOKEN_TYPE: sc.TOKEN_TYPE_OUTPUT}
        self.price = {
            sc.GEN_AI_PROVIDER_NAME: provider,
            sc.GEN_AI_REQUEST_MODEL: request_model,
            sc.GEN_AI_RESPONSE_MODEL: response_model or request_model,
        }


class CallFacts:
    """What identifies one LLM call in its metrics and log record (InferenceCall has the same fields; the
    span processor builds one from another instrumentation's span)."""

    __slots__ = ("operation", "provider", "request_model", "response_model", "server_address", "server_port",
                 "response_id", "finish_reasons", "start_ns")

    def __init__(self, operation: str, provider: str, request_model: str, response_model: str | None = None,
                 server_address: str | None = None, server_port: int | None = None, response_id: str | None = None,
                 finish_reasons: Any = (), start_ns: int | None = None):
        self.operation = operation
        self.provider = provider
        self.request_model = request_model
        self.response_model = response_model
        self.server_address = server_address
        self.server_port = server_port
        self.response_id = response_id
        self.finish_reasons = finish_reasons
        self.start_ns = start_ns


# --- shared telemetry objects --------------------------------------------------------------------------
class Telemetry:
    """The tracer, instruments, logger, price book and settings every instrumented call uses."""

    def __init__(
        self,
        tracer_provider: Any = None,
        meter_provider: Any = None,
        logger_provider: Any = None,
        settings: Settings | None = None,
        price_book: PriceBook | None = None,
    ):
        global _internal_error_counter
        self.settings = settings or Settings.from_env()
        self.tracer = trace.get_tracer(SCOPE, SCOPE_VERSION, tracer_provider, schema_url=SCHEMA_URL)
        meter = self.meter = metrics.get_meter(SCOPE, SCOPE_VERSION, meter_provider, schema_url=SCHEMA_URL)
        self.token_usage = meter.create_histogram(
            sc.METRIC_CLIENT_TOKEN_USAGE, unit=sc.UNIT_TOKEN,
            description="Number of input and output tokens used per LLM call.",
            explicit_bucket_boundaries_advisory=list(sc.TOKEN_USAGE_BUCKETS),
        )
        self.duration = meter.create_histogram(
            sc.METRIC_CLIENT_OPERATION_DURATION, unit=sc.UNIT_SECONDS,
            description="Duration of an LLM call, to the end of its stream when streamed.",
            explicit_bucket_boundaries_advisory=list(sc.DURATION_BUCKETS),
        )
        self.time_to_first_chunk = meter.create_histogram(
            sc.METRIC_CLIENT_TIME_TO_FIRST_CHUNK, unit=sc.UNIT_SECONDS,
            description="Time from the request to the first chunk of a streamed response.",
            explicit_bucket_boundaries_advisory=list(sc.TIME_TO_FIRST_CHUNK_BUCKETS),
        )
        self.cost = meter.create_counter(
            sc.METRIC_LLM_COST, unit=sc.UNIT_USD, description="Spend on LLM calls in USD, by provider and model.",
        )
        self.unpriced = meter.create_counter(
            sc.METRIC_PRICING_UNPRICED_CALLS, unit=sc.UNIT_CALL,
            description="LLM calls whose model has no known price (their cost is unknown, not zero).",
        )
        _internal_error_counter = meter.create_counter(
            sc.METRIC_INTERNAL_ERRORS, unit=sc.UNIT_ERROR,
            description="Exceptions raised and swallowed inside agentwatch.",
        )
        self.otel_logger = get_logger(SCOPE, SCOPE_VERSION, logger_provider, schema_url=SCHEMA_URL)
        self.json_writer = open_json_writer(self.settings.json_logs)
        self.elasticsearch_handler: Any = None
        es_settings = _elasticsearch_override or self.settings.elasticsearch
        if es_settings is not None:
            self.elasticsearch_handler = _open_elasticsearch(es_settings, meter)
        # every ECS JSON record goes to each sink: the JSON-lines writer and the Elasticsearch handler
        self.log_sink: LogSink | None = combine_sinks([self.json_writer, self.elasticsearch_handler])
        self.price_book = price_book
        self.model_label = LabelLimiter(self.settings.model_label_limit)
        self._labels: dict[tuple, MetricLabels] = {}
        self._tracer_provider = tracer_provider

    def metric_labels(self, operation: str, provider: str, request_model: str, response_model: str | None,
                      server_address: str | None, server_port: int | None, error_type: str | None) -> "MetricLabels":
        """The attribute sets of one call's metric points, built once per distinct combination."""
        key = (operation, provider, request_model, response_model, server_address, server_port, error_type)
        labels = self._labels.get(key)
        if labels is None:
            if len(self._labels) >= _LABEL_CACHE_SIZE:
                self._labels.clear()
            labels = self._labels[key] = MetricLabels(
                operation, provider, self.model_label(request_model),
                self.model_label(response_model) if response_model else None,
                server_address, server_port, error_type)
        return labels

    def price(self, provider: str, request_model: str, response_model: str | None,
              usage: TokenUsage) -> float | None:
        """The call's cost: by the response model, else by the request model; None when unpriced."""
        prices = self.prices()
        cost = prices.cost(provider, response_model or request_model, usage)
        if cost is None and response_model and response_model != request_model:
            cost = prices.cost(provider, request_model, usage)
        return cost

    def record_call(self, facts: "CallFacts", *, elapsed: float, time_to_first_chunk: float | None,
                    usage: TokenUsage | None, cost: float | None, cost_unknown: bool, error_type: str | None,
                    client_metrics: bool = True) -> None:
        """The metric points of one finished LLM call: gen_ai.client.* (unless the span's own
        instrumentation records them) and agentwatch's cost or unpriced counter."""
        labels = self.metric_labels(facts.operation, facts.provider, facts.request_model, facts.response_model,
                                    facts.server_address, facts.server_port, error_type)
        if client_metrics:
            self.duration.record(max(elapsed, 0.0), labels.call)
            if time_to_first_chunk is not None:
                self.time_to_first_chunk.record(max(time_to_first_chunk, 0.0), labels.call)
            if usage is not None:
                self.token_usage.record(usage.input_tokens, labels.input_tokens)
                if facts.operation != sc.OP_EMBEDDINGS:
                    self.token_usage.record(usage.output_tokens, labels.output_tokens)
        if cost is not None:
            self.cost.add(cost, labels.price)
        elif cost_unknown:
            self.unpriced.add(1, labels.price)

    def log_call(self, facts: "CallFacts", span: Any, *, elapsed: float, usage: TokenUsage | None,
                 cost: float | None, cost_unknown: bool, error: BaseException | None, error_type: str | None,
                 stream_outcome: str | None) -> None:
        """The `gen_ai.client.inference` log record of one finished LLM call, correlated with `span`."""
        fields: dict[str, Any] = {
            "event.outcome": "failure" if error_type else "success",
            "event.duration": int(elapsed * 1e9),
            sc.GEN_AI_OPERATION_NAME: facts.operation,
            sc.GEN_AI_PROVIDER_NAME: facts.provider,
            sc.GEN_AI_REQUEST_MODEL: facts.request_model,
        }
        if facts.response_model:
            fields[sc.GEN_AI_RESPONSE_MODEL] = facts.response_model
        if facts.response_id:
            fields[sc.GEN_AI_RESPONSE_ID] = facts.response_id
        if facts.finish_reasons:
            fields[sc.GEN_AI_RESPONSE_FINISH_REASONS] = list(facts.finish_reasons)
        if usage is not None:
            fields[sc.GEN_AI_USAGE_INPUT_TOKENS] = usage.input_tokens
            fields[sc.GEN_AI_USAGE_OUTPUT_TOKENS] = usage.output_tokens
        else:
            fields[sc.AGENTWATCH_USAGE_UNAVAILABLE] = True
        if cost is not None:
            fields[sc.AGENTWATCH_COST_USD] = cost
        elif cost_unknown:
            fields[sc.AGENTWATCH_COST_UNKNOWN] = True
        if stream_outcome is not None:
            fields[sc.AGENTWATCH_STREAM_OUTCOME] = stream_outcome
        if error_type is not None:
            fields[sc.ERROR_TYPE] = error_type
            if error is not None:
                fields["error.message"] = redact(str(error))
        message = f"{facts.operation} {facts.request_model} {error_type or 'ok'} in {elapsed * 1000:.0f} ms"
        ctx = span.get_span_context()
        emit_log(
            self.otel_logger, self.log_sink,
            event=sc.LOG_EVENT_LLM_CALL, message=message, fields=fields, failed=error_type is not None,
            context=trace.set_span_in_context(span), trace_id=ctx.trace_id, span_id=ctx.span_id,
            service_name=self.service_name() if self.log_sink is not None else None, start_ns=facts.start_ns,
        )

    def prices(self) -> PriceBook:
        """The price book, built on first use; a malformed override file is reported once, and the
        bundled prices are used instead, so telemetry keeps flowing."""
        if self.price_book is None:
            path = config.prices_file()
            try:
                self.price_book = PriceBook(path)
            except PricingConfigError as exc:
                _log.error("agentwatch: ignoring the price file: %s", exc)
                self.price_book = PriceBook()
        return self.price_book

    def service_name(self) -> str | None:
        provider = self._tracer_provider or trace.get_tracer_provider()
        resource = getattr(provider, "resource", None)
        return resource.attributes.get("service.name") if resource is not None else None

    def add_elasticsearch(self, es_settings: ElasticsearchSettings) -> None:
        """Start the Elasticsearch handler on a Telemetry created before `agentwatch.init(elasticsearch_url=)`."""
        if self.elasticsearch_handler is None:
            self.elasticsearch_handler = _open_elasticsearch(es_settings, self.meter)
            self.log_sink = combine_sinks([self.json_writer, self.elasticsearch_handler])

    def close(self) -> None:
        if self.log_sink is not None:
            self.log_sink.close()


def _open_elasticsearch(es_settings: ElasticsearchSettings, meter: Any) -> Any:
    """The background Elasticsearch handler, or None (a problem is logged without secrets, never raised)."""
    try:
        from agentwatch.runtime.elasticsearch import open_handler

        return open_handler(es_settings, meter=meter)
    except ImportError as exc:
        _log.error("agentwatch: Elasticsearch logging is off: %s (pip install 'elasticsearch>=8.13,<10')", exc)
        return None
    except Exception:  # noqa: BLE001 - logging to Elasticsearch is optional; the agent carries on without it
        report_internal_error("elasticsearch.open")
        return None


_elasticsearch_override: ElasticsearchSettings | None = None


def flush_log_sinks(timeout: float = 5.0) -> None:
    """Wait (up to `timeout` seconds each) until the Elasticsearch handlers have sent what they hold."""
    with _telemetry_lock:
        handlers = [tel.elasticsearch_handler for tel in _telemetry_cache.values() if tel.elasticsearch_handler]
    for handler in handlers:
        handler.flush(timeout)


def enable_elasticsearch(es_settings: ElasticsearchSettings) -> None:
    """Send log records to Elasticsearch from now on (`agentwatch.init(elasticsearch_url=...)`): for Telemetry
    objects created later, and for those that already exist (e.g. under opentelemetry-instrument)."""
    global _elasticsearch_override
    with _telemetry_lock:
        _elasticsearch_override = es_settings
        for tel in _telemetry_cache.values():
            tel.add_elasticsearch(es_settings)


_telemetry_lock = threading.Lock()
_telemetry_cache: dict[tuple[int, int, int], Telemetry] = {}


def get_telemetry(tracer_provider: Any = None, meter_provider: Any = None, logger_provider: Any = None) -> Telemetry:
    """One Telemetry per set of providers, shared by all instrumentors (one scope, one JSON sink)."""
    key = (id(tracer_provider), id(meter_provider), id(logger_provider))
    with _telemetry_lock:
        tel = _telemetry_cache.get(key)
        if tel is None:
            tel = _telemetry_cache[key] = Telemetry(tracer_provider, meter_provider, logger_provider)
        return tel


def telemetry_for(instrument_kwargs: dict) -> Telemetry:
    """The Telemetry for the providers an instrumentor's `instrument(**kwargs)` was given (or the globals)."""
    return get_telemetry(instrument_kwargs.get("tracer_provider"), instrument_kwargs.get("meter_provider"),
                         instrument_kwargs.get("logger_provider"))


def reset_telemetry() -> None:
    """Forget cached Telemetry objects (uninstrument, tests); closes their log sinks (flushing Elasticsearch)."""
    with _telemetry_lock:
        for tel in _telemetry_cache.values():
            tel.close()
        _telemetry_cache.clear()
