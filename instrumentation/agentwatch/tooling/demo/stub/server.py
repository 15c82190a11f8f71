"""The stub's HTTP server: `StubServer` (lifecycle, recorded requests, ids, random failures), the request
handler (HTTP/1.1 plumbing, dispatch through `routes`, the fault controls applied to every answer) and `main`,
the command line."""

from __future__ import annotations

import argparse
import collections
import json
import random
import signal
import socket
import sys
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Sequence
from urllib.parse import parse_qsl

from agentwatch.tooling.demo.stub import routes as route_table
from agentwatch.tooling.demo.stub.api import Call, ErrorFormat, Json, Route, Stream
from agentwatch.tooling.demo.stub.content import DEFAULT_OUTPUT_WORDS
from agentwatch.tooling.demo.stub.controls import Controls, DropConnection, StubError

#: Requested model -> model name reported back, like the real APIs resolve aliases.
DEFAULT_MODEL_ALIASES: dict[str, str] = {
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "gpt-4o": "gpt-4o-2024-08-06",
    "gpt-4.1": "gpt-4.1-2025-04-14",
    "gpt-4.1-mini": "gpt-4.1-mini-2025-04-14",
    "o3-mini": "o3-mini-2025-01-31",
    "claude-3-5-haiku-latest": "claude-3-5-haiku-20241022",
    "claude-3-7-sonnet-latest": "claude-3-7-sonnet-20250219",
    "claude-sonnet-4-0": "claude-sonnet-4-20250514",
    "claude-sonnet-4-5": "claude-sonnet-4-5-20250929",
    "claude-haiku-4-5": "claude-haiku-4-5-20251001",
    "claude-opus-4-5": "claude-opus-4-5-20251101",
}

MAX_RECORDED_REQUESTS = 1000

_REDACTED_HEADERS = frozenset({"authorization", "x-api-key", "api-key"})


# ---------------------------------------------------------------------------
# HTTP plumbing
# ---------------------------------------------------------------------------


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    stub: "StubServer"

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up (timeouts, aborted streams) are normal here; stay quiet.
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, socket.timeout, OSError)):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    """Routes requests to the stub; HTTP/1.1 with keep-alive like the real APIs."""

    protocol_version = "HTTP/1.1"
    server_version = "agentwatch-stub/1.0"
    sys_version = ""
    server: _HTTPServer

    # -- connection bookkeeping so stop() can hang up on idle keep-alive clients
    def setup(self) -> None:
        super().setup()
        # Without this, Nagle + delayed ACK hold back small writes (the body after
        # the headers, each SSE chunk) by ~40 ms, which would distort latency and
        # time-to-first-token measurements made against the stub.
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        self.server.stub._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.stub._track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    # -- body / response helpers
    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("transfer-encoding") or "").lower():
            data = bytearray()
            while True:
                size_line = self.rfile.readline(1024)
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(data)
                data += self.rfile.read(size)
                self.rfile.readline(8)
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send_json(self, status: int, payload: Any, extra_headers: Any = None) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (extra_headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def _send_error(self, errors: ErrorFormat, status: int, message: str, request_id: str,
                    retry_after: float | None = None) -> None:
        headers = {"x-request-id": request_id, "request-id": request_id}
        if retry_after is not None:
            headers["retry-after"] = f"{retry_after:g}"
        elif status == 429:
            # Note: both SDKs treat 0 as "unspecified" and fall back to their own
            # exponential backoff (~0.5-1 s); use x-stub-retry-after for fast retries.
            headers["retry-after"] = "0"
        self._send_json(status, errors.body(status, message, request_id), headers)

    def _send_stream(self, stream: Stream, ctl: Controls, request_id: str) -> None:
        """Send the frames with chunked encoding, paced by x-stub-chunk-delay, cut by x-stub-break-after.

        Chunked framing (rather than close-delimited) matters twice: the
        connection can be kept alive afterwards, and cutting the body short
        (``x-stub-break-after``) is detectable by the client as an incomplete
        message instead of looking like a normal end of stream.
        """
        self.send_response(200)
        self.send_header("Content-Type", stream.content_type)
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("x-request-id", request_id)
        self.send_header("request-id", request_id)
        self.end_headers()
        self.wfile.flush()
        stub = self.server.stub
        for index, frame in enumerate(stream.frames):
            if ctl.break_after is not None and index >= ctl.break_after:
                raise DropConnection()
            if index and ctl.chunk_delay and stub._sleep(ctl.chunk_delay):
                raise DropConnection()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(frame), frame))
            self.wfile.flush()
        if ctl.break_after is not None:
            raise DropConnection()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # -- dispatch
    def _dispatch(self, method: str) -> None:
        stub = self.server.stub
        path, _, query = self.path.partition("?")
        if len(path) > 1:
            path = path.rstrip("/")
        route, path_params = route_table.find(method, path, stub.routes)
        errors = route.errors if route is not None else route_table.errors_for(path, stub.routes)
        request_id = stub.next_id("req_")
        try:
            try:
                raw = self._read_body()
            except (ValueError, OSError):
                self.close_connection = True
                raise StubError(400, "could not read the request body") from None

            if path == "/healthz":
                self._send_json(200, {"status": "ok"})
                return
            if path == "/_stub/requests":
                if method == "GET":
                    self._send_json(200, stub.requests)
                elif method == "DELETE":
                    self._send_json(200, {"cleared": stub.clear_requests()})
                else:
                    raise StubError(405, f"{method} not allowed on {path}")
                return

            body: Any = None
            malformed = False
            if raw:
                try:
                    body = json.loads(raw)
                except (ValueError, UnicodeDecodeError):
                    malformed = True
            stub._record(method, path, self.headers, body if not malformed else raw.decode("utf-8", "replace"))
            if route is None:
                raise StubError(404, f"stub has no route {method} {path}")
            fail = stub._draw_failure()
            if malformed:
                raise StubError(400, "We could not parse the JSON body of your request.")
            if not isinstance(body, dict):
                raise StubError(400, "The request body must be a JSON object.")
            ctl = Controls(self.headers, stub)
            if stub._sleep(stub.latency + ctl.delay):
                raise DropConnection()
            if ctl.status is not None:
                raise StubError(ctl.status, f"stub: forced HTTP {ctl.status} via x-stub-status", ctl.retry_after)
            if fail:
                raise StubError(500, "stub: random failure (failure_rate)", ctl.retry_after)
            answer = route.handler(Call(stub, body, ctl, request_id, path_params, dict(parse_qsl(query))))
            if isinstance(answer, Stream):
                self._send_stream(answer, ctl, request_id)
            elif ctl.break_after is not None:
                raise DropConnection()  # a whole answer can only break before it starts
            else:
                assert isinstance(answer, Json), answer
                self._send_json(200, answer.payload, answer.headers)
        except StubError as err:
            try:
                self._send_error(errors, err.status, err.message, request_id, err.retry_after)
            except OSError:
                self.close_connection = True
        except DropConnection:
            self._drop()
        except OSError:
            # The client went away (timeout, closed stream); nothing to answer.
            self.close_connection = True
        except Exception as exc:  # a stub bug must surface as a response, not a hung-up socket
            traceback.print_exc()
            self.close_connection = True
            try:
                self._send_error(errors, 500, f"stub internal error: {exc!r}", request_id)
            except OSError:
                pass

# ---------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------


class StubServer:
    """The stub LLM server; serve it in a background thread with ``start()`` or ``with``.

    Server-wide defaults here are overridden per request by ``x-stub-*`` headers. ``routes`` are the endpoints
    served (default: every wire format of ``routes.ROUTES``; a test can serve one more).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        latency: float = 0.0,
        chunk_delay: float = 0.0,
        failure_rate: float = 0.0,
        seed: int = 0,
        cached_tokens: int = 0,
        model_aliases: dict[str, str] | None = None,
        cache_write_tokens: int = 0,
        reasoning_tokens: int = 0,
        output_words: int = DEFAULT_OUTPUT_WORDS,
        routes: Sequence[Route] = route_table.ROUTES,
    ) -> None:
        if not 0.0 <= failure_rate <= 1.0:
            raise ValueError("failure_rate must be within 0..1")
        if latency < 0 or chunk_delay < 0:
            raise ValueError("latency and chunk_delay must be >= 0")
        self.host = host
        self.port = port
        self.latency = float(latency)
        self.chunk_delay = float(chunk_delay)
        self.failure_rate = float(failure_rate)
        self.seed = seed
        self.cached_tokens = int(cached_tokens)
        self.cache_write_tokens = int(cache_write_tokens)
        self.reasoning_tokens = int(reasoning_tokens)
        self.output_words = int(output_words)
        self.model_aliases = dict(DEFAULT_MODEL_ALIASES if model_aliases is None else model_aliases)
        self.routes = tuple(routes)
        self._failure_rng = random.Random(seed)
        self._lock = threading.Lock()
        self._requests: collections.deque[dict[str, Any]] = collections.deque(maxlen=MAX_RECORDED_REQUESTS)
        self._counter = 0
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle
    def start(self) -> "StubServer":
        """Bind (port 0 picks a free port) and serve from a daemon thread."""
        if self._httpd is not None:
            return self
        self._stopping.clear()
        httpd = _HTTPServer((self.host, self.port), _Handler)
        httpd.stub = self
        self._httpd = httpd
        self.port = httpd.server_address[1]
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name=f"stub-llm:{self.port}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake sleeping handlers and hang up open connections."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        httpd.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> "StubServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- addresses
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        """Pass as ``OpenAI(base_url=...)``; the SDK appends ``/chat/completions`` etc."""
        return self.url + "/v1"

    @property
    def anthropic_base_url(self) -> str:
        """Pass as ``Anthropic(base_url=...)``; the SDK itself requests ``/v1/messages``."""
        return self.url

    # -- recorded traffic
    @property
    def requests(self) -> list[dict[str, Any]]:
        """The last requests (oldest first) as ``{"method","path","headers","body"}``."""
        with self._lock:
            return [dict(r) for r in self._requests]

    def clear_requests(self) -> int:
        """Forget the recorded requests; returns how many there were."""
        with self._lock:
            count = len(self._requests)
            self._requests.clear()
            return count

    # -- internals used by the handler
    def _record(self, method: str, path: str, headers: Any, body: Any) -> None:
        flat: dict[str, str] = {}
        for name, value in headers.items():
            name = name.lower()
            value = "[redacted]" if name in _REDACTED_HEADERS else value
            flat[name] = f"{flat[name]}, {value}" if name in flat else value
        with self._lock:
            self._requests.append({"method": method, "path": path, "headers": flat, "body": body})

    def _draw_failure(self) -> bool:
        # One draw per API request, so a seed gives the same failure pattern each run.
        with self._lock:
            return self._failure_rng.random() < self.failure_rate

    def next_id(self, prefix: str) -> str:
        """A unique id: `prefix`, the seed and a counter (`req_stub0x00000001`)."""
        with self._lock:
            self._counter += 1
            return f"{prefix}stub{self.seed:x}x{self._counter:08d}"

    def _sleep(self, seconds: float) -> bool:
        """Sleep unless the server is stopping; True means 'stopping, give up'."""
        if seconds <= 0:
            return self._stopping.is_set()
        return self._stopping.wait(seconds)

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)


def main(argv: list[str] | None = None) -> int:
    """Run the stub from the command line until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(
        prog="python -m agentwatch.tooling.demo.stub",
        description="Deterministic stub of the OpenAI and Anthropic APIs for tests and demos.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every request")
    parser.add_argument("--chunk-delay", type=float, default=0.0, help="seconds between stream chunks")
    parser.add_argument("--failure-rate", type=float, default=0.0, help="probability (0..1) of an HTTP 500")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cached-tokens", type=int, default=0, help="cached prompt tokens to report")
    args = parser.parse_args(argv)

    server = StubServer(
        args.host,
        args.port,
        latency=args.latency,
        chunk_delay=args.chunk_delay,
        failure_rate=args.failure_rate,
        seed=args.seed,
        cached_tokens=args.cached_tokens,
    ).start()
    done = threading.Event()

    def _stop(signum: int, frame: Any) -> None:
        done.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    print(f"stub LLM server listening on {server.url}", flush=True)
    print(f"  OPENAI_BASE_URL={server.openai_base_url}", flush=True)
    print(f"  ANTHROPIC_BASE_URL={server.anthropic_base_url}", flush=True)
    try:
        while not done.wait(0.5):
            pass
    finally:
        server.stop()
    return 0

