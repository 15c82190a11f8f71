"""Structured log records for LLM calls, runs and tool calls.

Every record goes through the OpenTelemetry logs pipeline (so `OTEL_LOGS_EXPORTER=otlp` ships it with its
trace and span id) and, as one ECS-named JSON record, to each configured sink: the JSON-lines writer
(`AGENTWATCH_JSON_LOGS` names `stdout`, `stderr` or a file) and the Elasticsearch handler (`AGENTWATCH_ES_URL`,
see agentwatch.tooling.elastic). Records never hold prompt text unless content capture is on, nor keys or headers.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import time
from datetime import datetime, timezone
from typing import IO, Any, Iterable, Mapping, Protocol

from opentelemetry._logs import SeverityNumber

_log = logging.getLogger("agentwatch")

ECS_VERSION = "8.11.0"

# Provider error messages sometimes echo a masked credential ("Incorrect API key provided: sk-ab***yz").
_SECRET_PATTERN = re.compile(
    r"(sk-[A-Za-z0-9_\-*]{4,}|sk-ant-[A-Za-z0-9_\-*]{4,}|Bearer\s+\S+|[Aa]pi[-_ ]?[Kk]ey[\"':= ]+\S+)"
)
MAX_ERROR_MESSAGE = 256


def redact(text: str, limit: int = MAX_ERROR_MESSAGE) -> str:
    """An error message safe to export: credentials masked, length bounded."""
    text = _SECRET_PATTERN.sub("[REDACTED]", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class LogSink(Protocol):
    """Receives every ECS JSON record; `write` must be quick and must not keep the agent waiting."""

    def write(self, record: Mapping[str, Any]) -> None: ...

    def close(self) -> None: ...


class FanOut:
    """Several sinks behind one `write`; one sink's failure never keeps a record from the others."""

    def __init__(self, sinks: Iterable[LogSink]):
        self.sinks = tuple(sinks)

    def write(self, record: Mapping[str, Any]) -> None:
        for sink in self.sinks:
            try:
                sink.write(record)
            except Exception:  # noqa: BLE001 - a broken sink must not take the others down
                _log.debug("agentwatch: log sink %s failed", type(sink).__name__, exc_info=True)

    def close(self) -> None:
        for sink in self.sinks:
            try:
                sink.close()
            except Exception:  # noqa: BLE001
                _log.debug("agentwatch: closing log sink %s failed", type(sink).__name__, exc_info=True)


def combine_sinks(sinks: Iterable[LogSink | None]) -> LogSink | None:
    """None for no sink, the sink itself for one, a FanOut for several."""
    present = [s for s in sinks if s is not None]
    if not present:
        return None
    return present[0] if len(present) == 1 else FanOut(present)


class JsonLineWriter:
    """Writes one JSON object per line to stdout, stderr or an append-mode file; thread-safe."""

    def __init__(self, target: str):
        self.target = target
        self._lock = threading.Lock()
        self._owned: IO[str] | None = None
        if target not in ("stdout", "stderr"):
            self._owned = open(target, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - closed in close()

    def _stream(self) -> IO[str]:
        if self._owned is not None:
            return self._owned
        return sys.stdout if self.target == "stdout" else sys.stderr

    def write(self, record: Mapping[str, Any]) -> None:
        line = json.dumps(record, separators=(",", ":"), default=str, ensure_ascii=False)
        with self._lock:
            stream = self._stream()
            stream.write(line + "\n")
            if self._owned is None:
                stream.flush()

    def close(self) -> None:
        with self._lock:
            if self._owned is not None:
                self._owned.close()
                self._owned = None


def open_json_writer(target: str | None) -> JsonLineWriter | None:
    """The JSON-lines sink for `AGENTWATCH_JSON_LOGS`, or None; a bad path is reported, never raised."""
    if not target:
        return None
    try:
        return JsonLineWriter(target)
    except OSError as exc:
        _log.error("agentwatch: cannot open JSON log file %r (%s); JSON lines are off", target, exc)
        return None


def ecs_timestamp(time_ns: int) -> str:
    """ISO 8601 in UTC with microseconds (Elasticsearch `date` fields keep milliseconds; the source keeps all)."""
    return datetime.fromtimestamp(time_ns / 1e9, tz=timezone.utc).isoformat(timespec="microseconds").replace(
        "+00:00", "Z"
    )


def emit(
    otel_logger: Any,
    sink: LogSink | None,
    *,
    event: str,
    message: str,
    fields: dict[str, Any],
    failed: bool,
    context: Any,
    trace_id: int,
    span_id: int,
    service_name: str | None,
    warning: bool = False,
    start_ns: int | None = None,
) -> None:
    """One record to the OTel logs pipeline and, if a sink is configured, one ECS JSON record to it."""
    now_ns = time.time_ns()
    if failed:
        severity, level = SeverityNumber.ERROR, "error"
    elif warning:
        severity, level = SeverityNumber.WARN, "warn"
    else:
        severity, level = SeverityNumber.INFO, "info"
    otel_logger.emit(
        timestamp=now_ns,
        context=context,
        severity_number=severity,
        severity_text=level.upper(),
        body=message,
        attributes=fields,
        event_name=event,
    )
    if sink is not None:
        record: dict[str, Any] = {
            "@timestamp": ecs_timestamp(now_ns),
            "log.level": level,
            "message": message,
            "ecs.version": ECS_VERSION,
            "event.dataset": "agentwatch",
            "event.action": event,
            "trace.id": format(trace_id, "032x") if trace_id else None,
            "span.id": format(span_id, "016x") if span_id else None,
            "service.name": service_name,
        }
        if start_ns is not None:
            # exact start of the call, run or tool (not @timestamp - duration): orders a trace's timeline
            record["event.start"] = ecs_timestamp(start_ns)
        record.update(fields)
        sink.write(record)
