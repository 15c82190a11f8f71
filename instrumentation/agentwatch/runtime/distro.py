"""Wiring for `opentelemetry-instrument`: a distro that sets sensible defaults and a configurator that builds
the SDK, so `pip install agentwatch` alone is enough (no opentelemetry-distro needed).

Defaults (each only when the variable is unset): traces, metrics and logs exported over OTLP, protocol
`http/protobuf` (the OTLP spec's default; gRPC needs `pip install agentwatch[grpc]`). When
opentelemetry-distro is installed too, both configure the same SDK the same way; set
`OTEL_PYTHON_DISTRO=agentwatch` and `OTEL_PYTHON_CONFIGURATOR=agentwatch` to choose ours explicitly.
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
    span processor that counts steps, tool calls, tokens and cost per run."""

    def _configure(self, **kwargs: Any) -> None:
        super()._configure(**kwargs)
        from agentwatch.runtime.processor import ensure_processor

        ensure_processor()
