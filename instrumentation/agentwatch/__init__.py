"""agentwatch: OpenTelemetry spans, metrics, JSON logs and token cost for LLM agents.

Zero-code: `opentelemetry-instrument python agent.py`. In code: `agentwatch.init()` once at start-up.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Mapping

from agentwatch.runtime.api import AgentRun, ToolCall, agent, agent_run, tool, tool_call
from agentwatch.runtime.runs import Budget, BudgetExceeded

__version__ = "0.1.0"
__all__ = ["init", "shutdown", "agent_run", "agent", "tool", "tool_call", "AgentRun", "ToolCall", "Budget",
           "BudgetExceeded", "__version__"]

_log = logging.getLogger("agentwatch")
_lock = threading.Lock()
_state: dict[str, Any] = {"initialized": False, "installed": None, "instrumentors": []}


def init(
    service_name: str | None = None,
    *,
    otlp_endpoint: str | None = None,
    console: bool = False,
    prometheus_port: int | None = None,
    instrument: bool = True,
    elasticsearch_url: str | None = None,
    elasticsearch_options: Mapping[str, Any] | None = None,
) -> None:
    """Set up OpenTelemetry for an agent and instrument the installed LLM clients. Idempotent.

    Providers the application (or `opentelemetry-instrument`) already set are kept as they are; only the
    missing ones are created: OTLP/HTTP export when `otlp_endpoint` or `OTEL_EXPORTER_OTLP_ENDPOINT` is
    given, console export with `console=True`, a Prometheus endpoint with `prometheus_port`. A collector that
    is down never holds the agent: exports to it end at once, and at exit (or `shutdown()`) the providers
    created here flush within AGENTWATCH_EXIT_TIMEOUT_SECONDS, reporting dropped batches in one log line.

    `elasticsearch_url` (or `AGENTWATCH_ES_URL`) also sends every log record to the data stream
    `logs-agentwatch-<namespace>` from a background thread. `elasticsearch_options` may set `namespace`,
    `api_key`, `api_key_file`, `username`, `password`, `password_file`, `ca_certs`, `verify_certs` and
    `queue_size`; what they leave out comes from the AGENTWATCH_ES_* environment variables.
    """
    with _lock:
        if _state["initialized"]:
            return
        from agentwatch.runtime import setup as _setup

        from agentwatch import config

        endpoint = otlp_endpoint or config.otlp_endpoint()
        _state["installed"] = _setup.install_providers(service_name, endpoint, console, prometheus_port)
        if elasticsearch_url or elasticsearch_options:
            _setup.enable_elasticsearch(elasticsearch_url, elasticsearch_options or {})
        if instrument:
            _state["instrumentors"] = _setup.instrument_clients()
        _state["initialized"] = True


def shutdown() -> None:
    """Flush and shut down the providers `init()` created, and remove the client patches."""
    with _lock:
        from agentwatch.runtime.telemetry import flush_log_sinks

        flush_log_sinks()
        for instrumentor in _state["instrumentors"]:
            try:
                instrumentor.uninstrument()
            except Exception:  # noqa: BLE001
                _log.debug("agentwatch: uninstrument failed", exc_info=True)
        if _state["installed"] is not None:
            _state["installed"].shutdown()  # within the exit budget; dropped batches reported in one line
        _state.update(initialized=False, installed=None, instrumentors=[])
