"""In-process OTLP/HTTP receiver for the agentwatch test suite.

Integration tests point an exporter (in this process or in a subprocess run
under ``opentelemetry-instrument``) at :attr:`OtlpReceiver.endpoint` and then
assert on the decoded spans, metrics and log records::

    with OtlpReceiver() as rx:
        env = {**os.environ, **rx.otel_env()}
        subprocess.run([...], env=env, check=True)
        assert rx.wait_for(lambda r: r.spans_named("chat"))
        span = rx.spans_named("chat")[0]
        assert span.attributes["gen_ai.request.model"] == "gpt-4o"
        assert b"sk-secret" not in b"".join(rx.raw_bodies)

Accepted requests: ``POST /v1/traces``, ``/v1/metrics``, ``/v1/logs`` with
``Content-Type: application/x-protobuf`` (the default) or ``application/json``
(OTLP/JSON: hex trace/span ids, integer enums), optionally compressed with
``Content-Encoding: gzip`` or ``deflate``.  The reply is the empty
``Export*ServiceResponse`` in the request's encoding with status 200.
"""

from __future__ import annotations

import base64
import gzip
import json
import socket
import threading
import time
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, NamedTuple

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

__all__ = [
    "ExemplarRecord",
    "LogRecordRecord",
    "MetricRecord",
    "OtlpReceiver",
    "PointRecord",
    "RequestInfo",
    "SpanEvent",
    "SpanLink",
    "SpanRecord",
    "any_value_to_python",
    "attributes_to_dict",
]


# --------------------------------------------------------------------------
# Decoded records
# --------------------------------------------------------------------------


class SpanEvent(NamedTuple):
    """A span event; unpacks as ``(name, attributes)``."""

    name: str
    attributes: dict[str, Any]


class SpanLink(NamedTuple):
    trace_id: str
    span_id: str
    attributes: dict[str, Any]


@dataclass
class SpanRecord:
    name: str
    kind: str  # "INTERNAL" | "SERVER" | "CLIENT" | "PRODUCER" | "CONSUMER" | "UNSPECIFIED"
    trace_id: str  # lowercase hex, 32 chars
    span_id: str  # lowercase hex, 16 chars
    parent_span_id: str  # lowercase hex, "" for a root span
    attributes: dict[str, Any]
    status_code: str  # "UNSET" | "OK" | "ERROR"
    status_message: str
    events: list[SpanEvent]
    start_time_unix_nano: int
    end_time_unix_nano: int
    resource_attributes: dict[str, Any]
    scope_name: str
    scope_version: str = ""
    links: list[SpanLink] = field(default_factory=list)

    @property
    def is_root(self) -> bool:
        return self.parent_span_id == ""

    @property
    def duration_ns(self) -> int:
        return self.end_time_unix_nano - self.start_time_unix_nano

    def event_names(self) -> list[str]:
        return [e.name for e in self.events]


@dataclass
class ExemplarRecord:
    value: float | int | None
    time_unix_nano: int
    trace_id: str  # lowercase hex, "" when absent
    span_id: str
    filtered_attributes: dict[str, Any]


@dataclass
class PointRecord:
    """One data point.  Fields not relevant to the metric kind keep defaults.

    * sum / gauge: ``value``
    * histogram: ``count``, ``sum``, ``bucket_counts``, ``explicit_bounds``,
      ``min``, ``max``
    * exponential_histogram: ``count``, ``sum``, ``scale``, ``zero_count``,
      ``positive_offset``/``positive_bucket_counts``, ``negative_*``
    * summary: ``count``, ``sum``, ``quantile_values`` [(quantile, value)]
    """

    attributes: dict[str, Any]
    start_time_unix_nano: int = 0
    time_unix_nano: int = 0
    value: float | int | None = None
    count: int = 0
    sum: float | None = None
    bucket_counts: list[int] = field(default_factory=list)
    explicit_bounds: list[float] = field(default_factory=list)
    min: float | None = None
    max: float | None = None
    exemplar_count: int = 0
    exemplars: list[ExemplarRecord] = field(default_factory=list)
    scale: int = 0
    zero_count: int = 0
    positive_offset: int = 0
    positive_bucket_counts: list[int] = field(default_factory=list)
    negative_offset: int = 0
    negative_bucket_counts: list[int] = field(default_factory=list)
    quantile_values: list[tuple[float, float]] = field(default_factory=list)


@dataclass
class MetricRecord:
    name: str
    unit: str
    description: str
    kind: str  # "sum" | "gauge" | "histogram" | "exponential_histogram" | "summary"
    is_monotonic: bool  # meaningful for sums only (False otherwise)
    temporality: str  # "cumulative" | "delta" | "" (gauge/summary)
    points: list[PointRecord]
    resource_attributes: dict[str, Any]
    scope_name: str
    scope_version: str = ""

    @property
    def data_points(self) -> list[PointRecord]:
        return self.points

    def point(self, **attributes: Any) -> PointRecord | None:
        """First point whose attributes contain all of ``attributes``.

        Attribute keys contain dots, so pass them via ``**{"a.b": 1}``.
        """
        for p in self.points:
            if all(k in p.attributes and p.attributes[k] == v for k, v in attributes.items()):
                return p
        return None


@dataclass
class LogRecordRecord:
    body: Any  # str / int / float / bool / bytes / list / dict / None
    attributes: dict[str, Any]
    severity_text: str
    severity_number: int
    event_name: str
    trace_id: str  # lowercase hex, "" when not correlated
    span_id: str
    time_unix_nano: int
    observed_time_unix_nano: int
    resource_attributes: dict[str, Any]
    scope_name: str
    scope_version: str = ""
    flags: int = 0


@dataclass
class RequestInfo:
    """Metadata of one received request (bodies are in ``raw_bodies``)."""

    path: str
    content_type: str
    content_encoding: str
    size: int  # decoded body length
    status: int


# --------------------------------------------------------------------------
# Decoding helpers
# --------------------------------------------------------------------------


def any_value_to_python(value: Any) -> Any:
    """Convert an ``opentelemetry.proto.common.v1.AnyValue`` to a python value."""
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [any_value_to_python(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: any_value_to_python(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, which)


def attributes_to_dict(attributes: Any) -> dict[str, Any]:
    """Convert a repeated ``KeyValue`` field to a dict."""
    return {kv.key: any_value_to_python(kv.value) for kv in attributes}


def _hex(raw: bytes) -> str:
    return raw.hex() if raw and any(raw) else ""


def _enum_suffix(name: str, prefix: str) -> str:
    return name[len(prefix):] if name.startswith(prefix) else name


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


_TEMPORALITY = {
    metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE: "cumulative",
    metrics_pb2.AGGREGATION_TEMPORALITY_DELTA: "delta",
}


def _decode_spans(req: ExportTraceServiceRequest) -> list[SpanRecord]:
    out: list[SpanRecord] = []
    for rs in req.resource_spans:
        resource = attributes_to_dict(rs.resource.attributes)
        for ss in rs.scope_spans:
            for s in ss.spans:
                out.append(
                    SpanRecord(
                        name=s.name,
                        kind=_enum_suffix(trace_pb2.Span.SpanKind.Name(s.kind), "SPAN_KIND_"),
                        trace_id=_hex(s.trace_id),
                        span_id=_hex(s.span_id),
                        parent_span_id=_hex(s.parent_span_id),
                        attributes=attributes_to_dict(s.attributes),
                        status_code=_enum_suffix(
                            trace_pb2.Status.StatusCode.Name(s.status.code), "STATUS_CODE_"
                        ),
                        status_message=s.status.message,
                        events=[SpanEvent(e.name, attributes_to_dict(e.attributes)) for e in s.events],
                        start_time_unix_nano=s.start_time_unix_nano,
                        end_time_unix_nano=s.end_time_unix_nano,
                        resource_attributes=dict(resource),
                        scope_name=ss.scope.name,
                        scope_version=ss.scope.version,
                        links=[
                            SpanLink(_hex(l.trace_id), _hex(l.span_id), attributes_to_dict(l.attributes))
                            for l in s.links
                        ],
                    )
                )
    return out


def _decode_exemplars(exemplars: Any) -> list[ExemplarRecord]:
    out = []
    for ex in exemplars:
        which = ex.WhichOneof("value")
        out.append(
            ExemplarRecord(
                value=getattr(ex, which) if which else None,
                time_unix_nano=ex.time_unix_nano,
                trace_id=_hex(ex.trace_id),
                span_id=_hex(ex.span_id),
                filtered_attributes=attributes_to_dict(ex.filtered_attributes),
            )
        )
    return out


def _optional(msg: Any, name: str) -> Any:
    return getattr(msg, name) if msg.HasField(name) else None


def _decode_point(kind: str, dp: Any) -> PointRecord:
    exemplars = _decode_exemplars(dp.exemplars)
    p = PointRecord(
        attributes=attributes_to_dict(dp.attributes),
        start_time_unix_nano=dp.start_time_unix_nano,
        time_unix_nano=dp.time_unix_nano,
        exemplar_count=len(exemplars),
        exemplars=exemplars,
    )
    if kind in ("sum", "gauge"):
        which = dp.WhichOneof("value")
        p.value = getattr(dp, which) if which else None
    elif kind == "histogram":
        p.count = dp.count
        p.sum = _optional(dp, "sum")
        p.bucket_counts = list(dp.bucket_counts)
        p.explicit_bounds = list(dp.explicit_bounds)
        p.min = _optional(dp, "min")
        p.max = _optional(dp, "max")
    elif kind == "exponential_histogram":
        p.count = dp.count
        p.sum = _optional(dp, "sum")
        p.min = _optional(dp, "min")
        p.max = _optional(dp, "max")
        p.scale = dp.scale
        p.zero_count = dp.zero_count
        p.positive_offset = dp.positive.offset
        p.positive_bucket_counts = list(dp.positive.bucket_counts)
        p.negative_offset = dp.negative.offset
        p.negative_bucket_counts = list(dp.negative.bucket_counts)
    elif kind == "summary":
        p.count = dp.count
        p.sum = dp.sum
        p.quantile_values = [(q.quantile, q.value) for q in dp.quantile_values]
    return p


def _decode_metrics(req: ExportMetricsServiceRequest) -> list[MetricRecord]:
    out: list[MetricRecord] = []
    for rm in req.resource_metrics:
        resource = attributes_to_dict(rm.resource.attributes)
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                kind = m.WhichOneof("data")
                if kind is None:
                    continue
                data = getattr(m, kind)
                out.append(
                    MetricRecord(
                        name=m.name,
                        unit=m.unit,
                        description=m.description,
                        kind=kind,
                        is_monotonic=bool(getattr(data, "is_monotonic", False)),
                        temporality=_TEMPORALITY.get(getattr(data, "aggregation_temporality", 0), ""),
                        points=[_decode_point(kind, dp) for dp in data.data_points],
                        resource_attributes=dict(resource),
                        scope_name=sm.scope.name,
                        scope_version=sm.scope.version,
                    )
                )
    return out


def _decode_logs(req: ExportLogsServiceRequest) -> list[LogRecordRecord]:
    out: list[LogRecordRecord] = []
    for rl in req.resource_logs:
        resource = attributes_to_dict(rl.resource.attributes)
        for sl in rl.scope_logs:
            for lr in sl.log_records:
                out.append(
                    LogRecordRecord(
                        body=any_value_to_python(lr.body) if lr.HasField("body") else None,
                        attributes=attributes_to_dict(lr.attributes),
                        severity_text=lr.severity_text,
                        severity_number=int(lr.severity_number),
                        # `event_name` exists in opentelemetry-proto >= 1.32.
                        event_name=getattr(lr, "event_name", ""),
                        trace_id=_hex(lr.trace_id),
                        span_id=_hex(lr.span_id),
                        time_unix_nano=lr.time_unix_nano,
                        observed_time_unix_nano=lr.observed_time_unix_nano,
                        resource_attributes=dict(resource),
                        scope_name=sl.scope.name,
                        scope_version=sl.scope.version,
                        flags=lr.flags,
                    )
                )
    return out


_ID_KEYS = {"traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"}


def _otlp_json_ids_to_base64(obj: Any) -> Any:
    """OTLP/JSON encodes trace/span ids as hex; protobuf JSON expects base64."""
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if k in _ID_KEYS and isinstance(v, str):
                try:
                    v = base64.b64encode(bytes.fromhex(v)).decode("ascii")
                except ValueError:
                    pass  # already base64 (non-conforming client): let protobuf try
            else:
                v = _otlp_json_ids_to_base64(v)
            out[k] = v
        return out
    if isinstance(obj, list):
        return [_otlp_json_ids_to_base64(v) for v in obj]
    return obj


def _parse(body: bytes, is_json: bool, message: Message) -> Message:
    if is_json:
        doc = json.loads(body.decode("utf-8")) if body.strip() else {}
        json_format.ParseDict(_otlp_json_ids_to_base64(doc), message, ignore_unknown_fields=True)
    else:
        message.ParseFromString(body)
    return message


# path -> (request class, response class, decoder, storage attribute)
_ROUTES: dict[str, tuple[type, type, Callable[[Any], list], str]] = {
    "/v1/traces": (ExportTraceServiceRequest, ExportTraceServiceResponse, _decode_spans, "_spans"),
    "/v1/metrics": (ExportMetricsServiceRequest, ExportMetricsServiceResponse, _decode_metrics, "_metrics"),
    "/v1/logs": (ExportLogsServiceRequest, ExportLogsServiceResponse, _decode_logs, "_logs"),
}


# --------------------------------------------------------------------------
# HTTP server
# --------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as used by requests.Session
    timeout = 30  # drop idle keep-alive connections eventually
    server: "_Server"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence stderr
        pass

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    # consume optional trailers up to the blank line
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_POST(self) -> None:  # noqa: N802
        receiver = self.server.receiver
        path = self.path.split("?", 1)[0].rstrip("/")
        content_type = self.headers.get("Content-Type", "application/x-protobuf")
        encoding = self.headers.get("Content-Encoding", "").strip().lower()
        is_json = "json" in content_type.lower()
        reply_type = "application/json" if is_json else "application/x-protobuf"

        body = self._read_body()
        try:
            if encoding == "gzip":
                body = gzip.decompress(body)
            elif encoding == "deflate":
                try:
                    body = zlib.decompress(body)
                except zlib.error:
                    body = zlib.decompress(body, -zlib.MAX_WBITS)  # raw deflate
            elif encoding not in ("", "identity"):
                raise ValueError(f"unsupported Content-Encoding {encoding!r}")
        except (OSError, EOFError, zlib.error, ValueError) as exc:
            receiver._record(path, content_type, encoding, body, 400, error=f"{path}: bad body encoding: {exc}")
            self._reply(400, b"", "text/plain")
            return

        route = _ROUTES.get(path)
        if route is None:
            receiver._record(path, content_type, encoding, body, 404, error=f"unknown path {self.path}")
            self._reply(404, b"", "text/plain")
            return

        request_cls, response_cls, decoder, attr = route
        try:
            records = decoder(_parse(body, is_json, request_cls()))
        except (DecodeError, json_format.ParseError, ValueError, UnicodeDecodeError) as exc:
            receiver._record(path, content_type, encoding, body, 400, error=f"{path}: cannot decode: {exc}")
            self._reply(400, b"", "text/plain")
            return

        receiver._record(path, content_type, encoding, body, 200, attr=attr, records=records)
        response = response_cls()
        payload = json_format.MessageToJson(response).encode() if is_json else response.SerializeToString()
        self._reply(200, payload, reply_type)

    def _not_allowed(self) -> None:
        self._reply(405, b"", "text/plain")

    do_GET = do_PUT = do_DELETE = do_PATCH = _not_allowed  # noqa: N815


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], receiver: "OtlpReceiver") -> None:
        self.receiver = receiver
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(addr, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._conns_lock:
            self._conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._conns_lock:
            self._conns.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Cut open keep-alive connections so nothing is received after stop()."""
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


# --------------------------------------------------------------------------
# Receiver
# --------------------------------------------------------------------------


class OtlpReceiver:
    """In-process OTLP/HTTP (protobuf, also accept JSON content-type application/json) receiver on loopback."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self.raw_bodies: list[bytes] = []
        self.requests: list[RequestInfo] = []
        self.errors: list[str] = []
        self._spans: list[SpanRecord] = []
        self._metrics: list[MetricRecord] = []
        self._logs: list[LogRecordRecord] = []

    # ---- lifecycle -------------------------------------------------------

    def start(self) -> "OtlpReceiver":
        if self._server is not None:
            return self
        self._server = _Server((self.host, self.port), self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"otlp-receiver-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._server = self._thread = None
        server.shutdown()
        server.server_close()
        server.close_connections()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> "OtlpReceiver":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:4318`` (signals go to ``/v1/<signal>``)."""
        if self._server is None:
            raise RuntimeError("OtlpReceiver is not started")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def otel_env(self, protocol: str = "http/protobuf") -> dict[str, str]:
        """Environment variables pointing an OTel SDK (e.g. a subprocess) here."""
        return {
            "OTEL_EXPORTER_OTLP_ENDPOINT": self.endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        }

    # ---- ingestion (called from handler threads) -------------------------

    def _record(
        self,
        path: str,
        content_type: str,
        encoding: str,
        body: bytes,
        status: int,
        *,
        attr: str | None = None,
        records: list | None = None,
        error: str | None = None,
    ) -> None:
        with self._cond:
            self.raw_bodies.append(body)
            self.requests.append(RequestInfo(path, content_type, encoding, len(body), status))
            if error:
                self.errors.append(error)
            if attr is not None and records:
                getattr(self, attr).extend(records)
            self._cond.notify_all()

    # ---- access ----------------------------------------------------------

    def spans(self) -> list[SpanRecord]:
        with self._lock:
            return list(self._spans)

    def metrics(self) -> list[MetricRecord]:
        """Every metric as exported (one record per metric per export request)."""
        with self._lock:
            return list(self._metrics)

    def logs(self) -> list[LogRecordRecord]:
        with self._lock:
            return list(self._logs)

    def raw_bytes(self) -> bytes:
        """All received (decompressed) bodies concatenated, for secret grepping."""
        with self._lock:
            return b"".join(self.raw_bodies)

    def spans_named(self, prefix: str) -> list[SpanRecord]:
        """Spans whose name starts with ``prefix``, in arrival order."""
        return [s for s in self.spans() if s.name.startswith(prefix)]

    def span_by_id(self, span_id: str) -> SpanRecord | None:
        return next((s for s in self.spans() if s.span_id == span_id), None)

    def children_of(self, span: SpanRecord) -> list[SpanRecord]:
        return [s for s in self.spans() if s.trace_id == span.trace_id and s.parent_span_id == span.span_id]

    def logs_with_event(self, event_name: str) -> list[LogRecordRecord]:
        return [r for r in self.logs() if r.event_name == event_name]

    def metric_names(self) -> set[str]:
        return {m.name for m in self.metrics()}

    def metric(self, name: str) -> MetricRecord | None:
        """All exports of metric ``name`` merged into one record, or None.

        Points are keyed by (resource attributes, point attributes).  For
        cumulative temporality, gauges and summaries the latest received point
        per key wins (cumulative exports re-send the whole series).  Delta
        sums / histograms are accumulated across exports instead.
        Metadata (unit, description, kind, scope, resource) comes from the
        latest export.
        """
        exports = [m for m in self.metrics() if m.name == name]
        if not exports:
            return None
        latest = exports[-1]
        merged: dict[Any, PointRecord] = {}
        for m in exports:
            res_key = _freeze(m.resource_attributes)
            for p in m.points:
                key = (res_key, _freeze(p.attributes))
                prev = merged.get(key)
                if m.temporality == "delta" and prev is not None:
                    merged[key] = _accumulate_delta(m.kind, prev, p)
                else:
                    merged[key] = p
        return MetricRecord(
            name=latest.name,
            unit=latest.unit,
            description=latest.description,
            kind=latest.kind,
            is_monotonic=latest.is_monotonic,
            temporality=latest.temporality,
            points=list(merged.values()),
            resource_attributes=latest.resource_attributes,
            scope_name=latest.scope_name,
            scope_version=latest.scope_version,
        )

    def histogram_points(self, name: str) -> list[PointRecord]:
        """Merged points of histogram ``name`` ([] if absent or not a histogram)."""
        m = self.metric(name)
        if m is None or m.kind not in ("histogram", "exponential_histogram"):
            return []
        return m.points

    # ---- waiting / reset -------------------------------------------------

    def wait_for(self, predicate: Callable[["OtlpReceiver"], bool], timeout: float = 10.0) -> bool:
        """Block until ``predicate(self)`` is truthy; False on timeout.

        The predicate is re-evaluated after every received request (and at
        least every 100 ms).  Exceptions raised by the predicate (e.g. indexing
        a list that is still empty) count as "not yet".
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                try:
                    if predicate(self):
                        return True
                except Exception:  # noqa: BLE001 - "not yet"
                    pass
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, 0.1))

    def clear(self) -> None:
        with self._lock:
            self.raw_bodies.clear()
            self.requests.clear()
            self.errors.clear()
            self._spans.clear()
            self._metrics.clear()
            self._logs.clear()


def _accumulate_delta(kind: str, prev: PointRecord, cur: PointRecord) -> PointRecord:
    if kind == "sum":
        value = (prev.value or 0) + (cur.value or 0)
        return PointRecord(
            attributes=cur.attributes,
            start_time_unix_nano=prev.start_time_unix_nano,
            time_unix_nano=cur.time_unix_nano,
            value=value,
            exemplar_count=prev.exemplar_count + cur.exemplar_count,
            exemplars=prev.exemplars + cur.exemplars,
        )
    if kind == "histogram" and prev.explicit_bounds == cur.explicit_bounds:
        counts = [a + b for a, b in zip(prev.bucket_counts, cur.bucket_counts)] or cur.bucket_counts
        sums = [s for s in (prev.sum, cur.sum) if s is not None]
        mins = [v for v in (prev.min, cur.min) if v is not None]
        maxs = [v for v in (prev.max, cur.max) if v is not None]
        return PointRecord(
            attributes=cur.attributes,
            start_time_unix_nano=prev.start_time_unix_nano,
            time_unix_nano=cur.time_unix_nano,
            count=prev.count + cur.count,
            sum=sum(sums) if sums else None,
            bucket_counts=counts,
            explicit_bounds=list(cur.explicit_bounds),
            min=min(mins) if mins else None,
            max=max(maxs) if maxs else None,
            exemplar_count=prev.exemplar_count + cur.exemplar_count,
            exemplars=prev.exemplars + cur.exemplars,
        )
    # gauges, exponential histograms with rescaling, mismatched bounds: latest wins
    return cur
