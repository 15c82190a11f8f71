"""Provider construction for `agentwatch.init()`: only what the application has not set up itself."""

from __future__ import annotations

import logging
from typing import Any, Mapping

from opentelemetry import _logs, metrics, trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource

from agentwatch import config
from agentwatch import semconv as sc

_log = logging.getLogger("agentwatch")


def _is_sdk(provider: Any) -> bool:
    """True when a real (SDK) provider is registered, not the API's no-op or proxy default."""
    return type(provider).__module__.startswith("opentelemetry.sdk")


class Installed:
    """The providers `init()` created, and the export guard that shuts them down within the exit budget."""

    def __init__(self, providers: list, guard: Any = None):
        self.providers = providers
        self.guard = guard

    def shutdown(self) -> None:
        """Flush and shut down (once; within the exit budget when exporting over OTLP), then report drops."""
        if self.guard is not None:
            self.guard.shutdown()
            return
        for provider in self.providers:
            try:
                provider.shutdown()
            except Exception:  # noqa: BLE001
                _log.debug("agentwatch: provider shutdown failed", exc_info=True)


def install_providers(service_name: str | None, endpoint: str | None, console: bool,
                      prometheus_port: int | None) -> Installed:
    """The missing providers: OTLP/HTTP export to `endpoint` (fail-fast sessions, bounded exit), console
    export, a Prometheus endpoint. Their resource says whether metrics are exported from this process."""
    attributes: dict[str, Any] = {SERVICE_NAME: service_name} if service_name else {}
    if _is_sdk(metrics.get_meter_provider()) or endpoint or console or prometheus_port:
        attributes[sc.AGENTWATCH_RESOURCE_METRICS_IN_PROCESS] = True
    res = Resource.create(attributes)
    guard = None
    if endpoint:
        from agentwatch.runtime.export_guard import ExportGuard

        guard = ExportGuard()
    owned: list = []
    if not _is_sdk(trace.get_tracer_provider()):
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

        provider = TracerProvider(resource=res)
        if guard is not None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(
                endpoint=_signal_url(endpoint, "traces"), session=guard.session())))
        if console:
            provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
        trace.set_tracer_provider(provider)
        owned.append(provider)
    from agentwatch.runtime.processor import ensure_processor

    ensure_processor()

    if not _is_sdk(metrics.get_meter_provider()):
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, PeriodicExportingMetricReader

        readers = []
        if guard is not None:
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

            readers.append(PeriodicExportingMetricReader(OTLPMetricExporter(
                endpoint=_signal_url(endpoint, "metrics"), session=guard.session())))
        if console:
            readers.append(PeriodicExportingMetricReader(ConsoleMetricExporter()))
        if prometheus_port:
            from opentelemetry.exporter.prometheus import PrometheusMetricReader
            from prometheus_client import start_http_server

            start_http_server(prometheus_port, addr=config.prometheus_host())
            readers.append(PrometheusMetricReader())
        provider = MeterProvider(resource=res, metric_readers=readers)
        metrics.set_meter_provider(provider)
        owned.append(provider)

    if not _is_sdk(_logs.get_logger_provider()):
        from opentelemetry.sdk._logs import LoggerProvider
        from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, ConsoleLogRecordExporter

        provider = LoggerProvider(resource=res)
        if guard is not None:
            from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

            provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter(
                endpoint=_signal_url(endpoint, "logs"), session=guard.session())))
        if console:
            provider.add_log_record_processor(BatchLogRecordProcessor(ConsoleLogRecordExporter()))
        _logs.set_logger_provider(provider)
        owned.append(provider)
    if guard is not None:
        guard.own_shutdown(owned)  # traces, metrics, logs: the order the data flows
    return Installed(owned, guard)


def _signal_url(endpoint: str, signal: str) -> str:
    return endpoint.rstrip("/") + f"/v1/{signal}"


def enable_elasticsearch(url: str | None, options: Mapping[str, Any]) -> None:
    """Log records to Elasticsearch from now on; a bad setting is logged (without secrets), never raised,
    except an unknown option name (a TypeError, like any unknown keyword argument)."""
    from agentwatch.config import ConfigError, elasticsearch_settings
    from agentwatch.runtime.telemetry import enable_elasticsearch as enable

    try:
        settings = elasticsearch_settings(url, **options)
    except ConfigError as exc:
        _log.error("agentwatch: Elasticsearch logging is off: %s", exc)
        return
    if settings is None:
        _log.error("agentwatch: Elasticsearch logging is off: elasticsearch_options without a URL "
                   "(give elasticsearch_url= or set AGENTWATCH_ES_URL)")
        return
    enable(settings)


def instrument_clients() -> list:
    """Instrument each supported client library that is installed; skip the others quietly."""
    from agentwatch.runtime.instrumentors.anthropic import AnthropicInstrumentor
    from agentwatch.runtime.instrumentors.openai import OpenAIInstrumentor

    done = []
    for cls in (OpenAIInstrumentor, AnthropicInstrumentor):
        instrumentor = cls()
        try:
            instrumentor.instrument()
        except ModuleNotFoundError:
            continue
        done.append(instrumentor)
    return done
