"""A small in-process Elasticsearch: the part of the REST API agentwatch calls, recording every request.

Implements `GET /`, `PUT|GET /_index_template/<name>`, `PUT|GET /_ilm/policy/<name>`, `POST [/<index>]/_bulk`
(NDJSON, per-item results, data streams accept only `create`), and `GET|POST /<index>/_search` with the
query clauses the CLI sends (bool filter/must/should/must_not, term, terms, range with `now-<n><unit>`,
exists, match_all), sort, size and `_source` includes. Every answer carries `X-Elastic-Product:
Elasticsearch`, which the official client checks.

Failures are programmable: `fail_requests(status, count)` answers the next bulk requests as a whole with an
error; `reject(match, status, times)` answers single documents with an error item. `require_auth(...)` makes
it answer 401 to requests without one of the given Authorization headers; `tls=(cert, key)` serves HTTPS.
"""

from __future__ import annotations

import fnmatch
import json
import re
import ssl
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, unquote, urlsplit

VERSION = "9.1.0"


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def ndjson(self) -> list[Any]:
        return [json.loads(line) for line in self.body.decode().splitlines() if line.strip()]


@dataclass
class Rule:
    match: Callable[[dict], bool]
    status: int
    times: int
    error_type: str


@dataclass
class State:
    templates: dict[str, dict] = field(default_factory=dict)
    policies: dict[str, dict] = field(default_factory=dict)
    docs: dict[str, list[tuple[str, dict]]] = field(default_factory=dict)  # data stream -> [(id, source)]
    requests: list[Request] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    request_failures: list[tuple[int, str]] = field(default_factory=list)
    accepted_auth: set[str] | None = None
    bulk_delay: float = 0.0
    next_id: int = 0


def get_field(doc: Any, name: str) -> Any:
    if not isinstance(doc, dict):
        return None
    if name in doc:
        return doc[name]
    parts = name.split(".")
    for i in range(len(parts) - 1, 0, -1):
        sub = doc.get(".".join(parts[:i]))
        if isinstance(sub, dict):
            value = get_field(sub, ".".join(parts[i:]))
            if value is not None:
                return value
    return None


_NOW_MATH = re.compile(r"^now(?:-(\d+)([smhdw]))?$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def _as_time(value: Any) -> datetime | None:
    if isinstance(value, str):
        m = _NOW_MATH.match(value)
        if m:
            now = datetime.now(timezone.utc)
            return now - timedelta(**{_UNITS[m.group(2)]: int(m.group(1))}) if m.group(1) else now
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


def _compare(value: Any, bound: Any) -> float | None:
    """value - bound as a number (times or numbers); None when not comparable."""
    tb, tv = _as_time(bound), _as_time(value)
    if tb is not None and tv is not None:
        return (tv - tb).total_seconds()
    try:
        return float(value) - float(bound)
    except (TypeError, ValueError):
        return None


class QueryError(ValueError):
    pass


def matches(doc: dict, query: dict) -> bool:
    if not query:
        return True
    (kind, spec), = query.items()
    if kind == "match_all":
        return True
    if kind == "bool":
        def clauses(key):
            value = spec.get(key, [])
            return value if isinstance(value, list) else [value]
        if not all(matches(doc, q) for q in clauses("filter") + clauses("must")):
            return False
        if any(matches(doc, q) for q in clauses("must_not")):
            return False
        should = clauses("should")
        return not should or any(matches(doc, q) for q in should)
    if kind == "term":
        (name, wanted), = spec.items()
        wanted = wanted["value"] if isinstance(wanted, dict) else wanted
        value = get_field(doc, name)
        values = value if isinstance(value, list) else [value]
        return wanted in values
    if kind == "terms":
        (name, wanted), = spec.items()
        value = get_field(doc, name)
        values = value if isinstance(value, list) else [value]
        return any(v in wanted for v in values)
    if kind == "exists":
        return get_field(doc, spec["field"]) is not None
    if kind == "range":
        (name, bounds), = spec.items()
        value = get_field(doc, name)
        for op, bound in bounds.items():
            if op in ("format", "time_zone"):
                continue
            diff = _compare(value, bound)
            if diff is None:
                return False
            if (op == "gte" and diff < 0) or (op == "gt" and diff <= 0) or (op == "lte" and diff > 0) \
                    or (op == "lt" and diff >= 0):
                return False
        return True
    raise QueryError(f"unsupported query clause {kind}")


def _sort_key(doc: dict, name: str):
    value = get_field(doc, name)
    t = _as_time(value) if isinstance(value, str) else None
    if t is not None:
        return (0, t.timestamp())
    if isinstance(value, (int, float)):
        return (0, float(value))
    return (1, str(value))


class FakeElasticsearch:
    def __init__(self, tls: tuple[str, str] | None = None):
        self.state = State()
        self.lock = threading.Lock()
        self._tls = tls

    # --- programming failures and auth
    def fail_requests(self, status: int, count: int = 1, error_type: str = "") -> None:
        with self.lock:
            self.state.request_failures.extend([(status, error_type)] * count)

    def reject(self, match: Callable[[dict], bool], status: int = 429, times: int = 1,
               error_type: str | None = None) -> None:
        error_type = error_type or ("es_rejected_execution_exception" if status == 429 else
                                    "mapper_parsing_exception" if status == 400 else "internal_server_error")
        with self.lock:
            self.state.rules.append(Rule(match, status, times, error_type))

    def require_auth(self, *authorization_headers: str) -> None:
        self.state.accepted_auth = set(authorization_headers)

    def set_bulk_delay(self, seconds: float) -> None:
        self.state.bulk_delay = seconds

    # --- inspection
    @property
    def requests(self) -> list[Request]:
        with self.lock:
            return list(self.state.requests)

    def bulk_requests(self) -> list[Request]:
        return [r for r in self.requests if r.path.endswith("/_bulk")]

    def documents(self, data_stream: str = "logs-agentwatch-default") -> list[dict]:
        with self.lock:
            return [source for _, source in self.state.docs.get(data_stream, [])]

    def wait_for_documents(self, count: int, data_stream: str = "logs-agentwatch-default",
                           timeout: float = 10.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            docs = self.documents(data_stream)
            if len(docs) >= count:
                return docs
            time.sleep(0.01)
        return self.documents(data_stream)

    # --- server
    def start(self) -> "FakeElasticsearch":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out as separate writes

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                request = Request(self.command, unquote(parts.path), parse_qs(parts.query),
                                  {k.lower(): v for k, v in self.headers.items()}, body)
                with fake.lock:
                    fake.state.requests.append(request)
                try:
                    status, payload = fake.route(request)
                except QueryError as exc:
                    status, payload = 400, _error(400, "parsing_exception", str(exc))
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("X-Elastic-Product", "Elasticsearch")
                self.send_header("Content-Length", str(len(data)))
                if status == 401:
                    self.send_header("WWW-Authenticate", 'Basic realm="security", ApiKey')
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if self._tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*self._tls)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        return self

    @property
    def url(self) -> str:
        scheme = "https" if self._tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> "FakeElasticsearch":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # --- the API
    def route(self, r: Request) -> tuple[int, Any]:
        accepted = self.state.accepted_auth
        if accepted is not None and r.headers.get("authorization") not in accepted:
            return 401, _error(401, "security_exception", "missing authentication credentials for REST request")
        path, method = r.path.rstrip("/") or "/", r.method
        if path == "/" and method in ("GET", "HEAD"):
            return 200, {"name": "fake-node", "cluster_name": "fake", "cluster_uuid": "fake-uuid",
                         "version": {"number": VERSION, "build_flavor": "default",
                                     "lucene_version": "10.2.2", "minimum_wire_compatibility_version": "8.19.0",
                                     "minimum_index_compatibility_version": "8.0.0"},
                         "tagline": "You Know, for Search"}
        m = re.fullmatch(r"/_index_template/_simulate_index/([^/]+)", path)
        if m:
            body = self._matching_template(m.group(1))
            if body is None:
                return 404, _error(404, "resource_not_found_exception", "no matching template")
            return 200, {"template": body.get("template", {}), "overlapping": []}
        m = re.fullmatch(r"/_data_stream/([^/]+)", path)
        if m:
            return self._data_stream(method, m.group(1))
        m = re.fullmatch(r"/_index_template/([^/]+)", path)
        if m:
            return self._template(method, m.group(1), r)
        m = re.fullmatch(r"/_ilm/policy/([^/]+)", path)
        if m:
            return self._policy(method, m.group(1), r)
        m = re.fullmatch(r"(?:/([^/_][^/]*))?/_bulk", path)
        if m and method in ("POST", "PUT"):
            return self._bulk(m.group(1), r)
        m = re.fullmatch(r"/([^/]+)/_search", path)
        if m and method in ("GET", "POST"):
            return self._search(m.group(1), r)
        m = re.fullmatch(r"/([^/]+)/_refresh", path)
        if m:
            return 200, {"_shards": {"total": 1, "successful": 1, "failed": 0}}
        return 404, _error(404, "no_handler_found_exception", f"no handler found for uri [{path}]")

    def _template(self, method: str, name: str, r: Request) -> tuple[int, Any]:
        with self.lock:
            if method == "PUT":
                body = r.json()
                for key in ("index_patterns",):
                    if key not in body:
                        return 400, _error(400, "action_request_validation_exception", f"{key} is missing")
                self.state.templates[name] = body
                return 200, {"acknowledged": True}
            if method == "GET":
                if name not in self.state.templates:
                    return 404, _error(404, "resource_not_found_exception",
                                       f"index template matching [{name}] not found")
                return 200, {"index_templates": [{"name": name, "index_template": self.state.templates[name]}]}
            if method == "DELETE":
                self.state.templates.pop(name, None)
                return 200, {"acknowledged": True}
        return 405, _error(405, "method_not_allowed", method)

    def _policy(self, method: str, name: str, r: Request) -> tuple[int, Any]:
        with self.lock:
            if method == "PUT":
                body = r.json()
                if "policy" not in body or "phases" not in body["policy"]:
                    return 400, _error(400, "x_content_parse_exception", "policy.phases is missing")
                old = self.state.policies.get(name)
                self.state.policies[name] = {"version": (old["version"] + 1) if old else 1,
                                             "modified_date": datetime.now(timezone.utc).isoformat(),
                                             "policy": body["policy"], "in_use_by": {"indices": [],
                                                                                     "data_streams": []}}
                return 200, {"acknowledged": True}
            if method == "GET":
                if name not in self.state.policies:
                    return 404, _error(404, "resource_not_found_exception", f"Lifecycle policy not found: {name}")
                return 200, {name: self.state.policies[name]}
            if method == "DELETE":
                self.state.policies.pop(name, None)
                return 200, {"acknowledged": True}
        return 405, _error(405, "method_not_allowed", method)

    def _matching_template(self, index: str) -> dict | None:
        best = None
        for body in self.state.templates.values():
            if any(fnmatch.fnmatchcase(index, p) for p in body["index_patterns"]):
                if best is None or body.get("priority", 0) > best.get("priority", 0):
                    best = body
        return best

    def _data_stream(self, method: str, name: str) -> tuple[int, Any]:
        with self.lock:
            if name not in self.state.docs:
                return 404, _error(404, "index_not_found_exception", f"no such index [{name}]")
            if method == "DELETE":
                del self.state.docs[name]
                return 200, {"acknowledged": True}
            template = self._matching_template(name) or {}
            policy = (template.get("template", {}).get("settings", {}).get("index", {})
                      .get("lifecycle", {}).get("name"))
            return 200, {"data_streams": [{"name": name, "timestamp_field": {"name": "@timestamp"},
                                           "indices": [{"index_name": f".ds-{name}-2025.01.01-000001"}],
                                           "generation": 1, "status": "GREEN", "template": "?",
                                           **({"ilm_policy": policy} if policy else {})}]}

    def _is_data_stream(self, index: str) -> bool:
        for body in self.state.templates.values():
            if "data_stream" in body and any(fnmatch.fnmatchcase(index, p) for p in body["index_patterns"]):
                return True
        return index.startswith(("logs-", "metrics-", "traces-"))  # the built-in templates

    def _bulk(self, default_index: str | None, r: Request) -> tuple[int, Any]:
        if self.state.bulk_delay:
            time.sleep(self.state.bulk_delay)
        with self.lock:
            if self.state.request_failures:
                status, kind = self.state.request_failures.pop(0)
                kind = kind or ("es_rejected_execution_exception" if status == 429 else "internal_server_error")
                return status, _error(status, kind, "request failed (programmed)")
        lines = r.ndjson()
        items = []
        i = 0
        with self.lock:
            while i < len(lines):
                (op, meta), = lines[i].items()
                source = lines[i + 1] if op != "delete" else None
                i += 2 if op != "delete" else 1
                index = meta.get("_index") or default_index
                backing = f".ds-{index}-2025.01.01-000001"
                item: dict[str, Any] = {"_index": backing}
                rule = next((x for x in self.state.rules if x.times > 0 and x.match(source)), None)
                if op != "create" and self._is_data_stream(index):
                    item.update(status=400, error={
                        "type": "illegal_argument_exception",
                        "reason": "only write ops with an op_type of create are allowed in data streams"})
                elif rule is not None:
                    rule.times -= 1
                    item.update(status=rule.status, error={"type": rule.error_type,
                                                           "reason": f"rejected (programmed {rule.status})"})
                else:
                    self.state.next_id += 1
                    doc_id = meta.get("_id") or f"id{self.state.next_id}"
                    self.state.docs.setdefault(index, []).append((doc_id, source))
                    item.update(_id=doc_id, _version=1, result="created", status=201,
                                _shards={"total": 1, "successful": 1, "failed": 0}, _seq_no=self.state.next_id,
                                _primary_term=1)
                items.append({op: item})
        return 200, {"took": 1, "errors": any("error" in next(iter(x.values())) for x in items), "items": items}

    def _search(self, target: str, r: Request) -> tuple[int, Any]:
        body = r.json() if r.body else {}
        ignore_unavailable = r.query.get("ignore_unavailable", ["false"])[0] == "true"
        patterns = target.split(",")
        with self.lock:
            indices = [name for name in self.state.docs if any(fnmatch.fnmatchcase(name, p) for p in patterns)]
            if not indices and not ignore_unavailable and not any("*" in p for p in patterns):
                return 404, _error(404, "index_not_found_exception", f"no such index [{target}]")
            candidates = [(name, doc_id, src) for name in indices for doc_id, src in self.state.docs[name]]
        query = body.get("query") or {"match_all": {}}
        hits = [(name, doc_id, src) for name, doc_id, src in candidates if matches(src, query)]
        for spec in reversed(body.get("sort") or []):
            if isinstance(spec, str):
                name, order = spec, "asc"
            else:
                (name, order), = spec.items()
                order = order.get("order", "asc") if isinstance(order, dict) else order
            hits.sort(key=lambda h: _sort_key(h[2], name), reverse=order == "desc")
        size = int(body.get("size", r.query.get("size", [10])[0]))
        includes = body.get("_source")
        out = []
        for name, doc_id, src in hits[:size]:
            if isinstance(includes, list):
                src = {k: get_field(src, k) for k in includes if get_field(src, k) is not None}
            out.append({"_index": f".ds-{name}-2025.01.01-000001", "_id": doc_id, "_score": None, "_source": src})
        return 200, {"took": 1, "timed_out": False, "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
                     "hits": {"total": {"value": len(hits), "relation": "eq"}, "max_score": None, "hits": out}}


def _error(status: int, kind: str, reason: str) -> dict:
    return {"error": {"root_cause": [{"type": kind, "reason": reason}], "type": kind, "reason": reason},
            "status": status}

