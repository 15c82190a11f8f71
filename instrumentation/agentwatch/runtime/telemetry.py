"""Objects every agentwatch signal shares: the tracer, instruments, logger, price book and settings.

One `Telemetry` per set of OpenTelemetry providers serves all instrumentors and the span processor, so there
is one instrumentation scope, one set of log sinks (JSON lines, Elasticsearch) and one price memo per process.
`report_internal_error` is the fail-open reporter: agentwatch's own exceptions are counted and logged, never
raised into the agent.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry._logs import get_logger

from agentwatch import semconv as sc
from agentwatch.config import ElasticsearchSettings, Settings
from agentwatch.runtime.logs import LogSink, combine_sinks, open_json_writer
from agentwatch.pricing import PriceBook, PricingConfigError

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

    def prices(self) -> PriceBook:
        """The price book, built on first use; a malformed override file is reported once, and the
        bundled prices are used instead, so telemetry keeps flowing."""
        if self.price_book is None:
            path = os.environ.get(sc.ENV_PRICES_FILE) or None
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
