"""Wiring for `opentelemetry-instrument`: a distro that sets sensible defaults and a configurator that builds
the SDK, so `pip install agentwatch` alone is enough (no opentelemetry-distro needed).

Defaults (each only when the variable is unset): traces, metrics and logs exported over OTLP, protocol
`http/protobuf` (the OTLP spec's default; gRPC needs `pip install agentwatch[grpc]`). When
opentelemetry-distro is installed too, both configure the same SDK the same way; set
`OTEL_PYTHON_DISTRO=agentwatch` and `OTEL_PYTHON_CONFIGURATOR=agentwatch` to choose ours explicitly.

The configurator is the SDK's standard one plus: the agent span processor; a fail-fast session for each
OTLP/HTTP exporter and one bounded shutdown at exit (`export_guard`: a dead collector never holds the
agent); and the resource attribute `agentwatch.metrics.in_process=true` when metrics are exported from the
process, so the collector's connector knows not to derive them from the spans a second time.
"""

from __future__ import annotations

import os
from typing import Any

from opentelemetry.environment_variables import (
    OTEL_LOGS_EXPORTER,
    OTEL_METRICS_EXPORTER,
    OTEL_TRACES_EXPORTER,
)
from opentelemetry.instrumentation.distro import BaseDistro
from opentelemetry.sdk._configuration import _OTelSDKConfigurator
from opentelemetry.sdk.environment_variables import OTEL_EXPORTER_OTLP_PROTOCOL

from agentwatch import config
from agentwatch import semconv as sc

DEFAULTS = {
    OTEL_TRACES_EXPORTER: "otlp",
    OTEL_METRICS_EXPORTER: "otlp",
    OTEL_LOGS_EXPORTER: "otlp",
    OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf",
}


class AgentwatchDistro(BaseDistro):
    """Sets the exporter defaults before the configurator reads them."""

    def _configure(self, **kwargs: Any) -> None:
        for name, value in DEFAULTS.items():
            os.environ.setdefault(name, value)


class AgentwatchConfigurator(_OTelSDKConfigurator):
    """The SDK's standard configurator (providers and exporters from the OTEL_* variables), plus the agent
    span processor that counts steps, tool calls, tokens and cost per run, and the bounded export."""

    def _configure(self, **kwargs: Any) -> None:
        from agentwatch.runtime.processor import ensure_processor

        if config.sdk_config_file():  # declarative configuration: the SDK ignores configurator arguments
            super()._configure(**kwargs)
            ensure_processor()
            return
        if config.exporter_names("metrics") or kwargs.get("metric_exporter_names"):
            kwargs["resource_attributes"] = {**(kwargs.get("resource_attributes") or {}),
                                             sc.AGENTWATCH_RESOURCE_METRICS_IN_PROCESS: True}
        guard = None
        classes = otlp_http_exporter_classes()
        if classes:
            from agentwatch.runtime.export_guard import ExportGuard

            guard = ExportGuard()
            kwargs["exporter_args_map"] = _with_guarded_sessions(dict(kwargs.get("exporter_args_map") or {}),
                                                                 classes, guard)
        super()._configure(**kwargs)
        ensure_processor()
        if guard is not None:
            from opentelemetry import _logs, metrics, trace

            guard.own_shutdown([trace.get_tracer_provider(), metrics.get_meter_provider(),
                                _logs.get_logger_provider()])


def otlp_http_exporter_classes() -> dict[str, type]:
    """signal -> the OTLP/HTTP exporter class the SDK's configurator will build for it (only those; nothing
    is imported for a signal exported otherwise)."""
    classes: dict[str, type] = {}
    if config.uses_otlp_http("traces"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        classes["traces"] = OTLPSpanExporter
    if config.uses_otlp_http("metrics"):
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        classes["metrics"] = OTLPMetricExporter
    if config.uses_otlp_http("logs"):
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

        classes["logs"] = OTLPLogExporter
    return classes


def _with_guarded_sessions(args_map: dict, classes: dict[str, type], guard: Any) -> dict:
    """The exporter arguments with a guarded session for every OTLP/HTTP exporter, except where the user
    configured a credential provider (its own session) or passed a session."""
    for signal, cls in classes.items():
        if config.otlp_http_credential_provider(signal):
            continue
        args = dict(args_map.get(cls) or {})
        args.setdefault("session", guard.session())
        args_map[cls] = args
    return args_map
