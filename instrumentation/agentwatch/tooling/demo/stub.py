"""A deterministic stand-in for the OpenAI and Anthropic HTTP APIs.

Why it exists: the instrumentation has to be exercised through the *real*
``openai`` and ``anthropic`` SDKs (their response parsing, stream helpers and
error classes are exactly what our wrappers see), but tests and the demo must
not need network access, API keys or money.  This server speaks just enough of
both wire protocols for the SDKs to work unmodified, answers deterministically
for a given seed, and can be told per request (``x-stub-*`` headers) to
misbehave in the ways real providers do: errors, slowness, broken streams and
missing or garbage usage figures.

Only the standard library is used so that it can run anywhere the package is
installed.

Token accounting (chosen so that cost arithmetic is checkable by hand):

* input tokens = whitespace-separated words in all prompt text + ``PROMPT_OVERHEAD``;
* output tokens = words in the generated answer (``x-stub-output-words``,
  default ``DEFAULT_OUTPUT_WORDS``) or, for a tool call, ``TOOL_CALL_TOKENS``;
* cached / cache-write / reasoning tokens are added the way each provider
  reports them: OpenAI's ``prompt_tokens``/``input_tokens`` *include* cached
  and cache-write tokens and ``completion_tokens`` includes reasoning tokens;
  Anthropic's ``input_tokens`` *excludes* ``cache_read_input_tokens`` and
  ``cache_creation_input_tokens``, and ``output_tokens`` includes thinking.
"""

from __future__ import annotations

import argparse
import base64
import collections
import json
import random
import signal
import socket
import struct
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

__all__ = [
    "DEFAULT_MODEL_ALIASES",
    "DEFAULT_OUTPUT_WORDS",
    "EMBEDDING_DIMENSIONS",
    "PROMPT_OVERHEAD",
    "TOOL_CALL_TOKENS",
    "StubServer",
    "main",
]

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

PROMPT_OVERHEAD = 3  # fixed per-request input tokens, like chat-format framing tokens
DEFAULT_OUTPUT_WORDS = 12
TOOL_CALL_TOKENS = 10  # output tokens reported for a generated tool call
EMBEDDING_DIMENSIONS = 8
MAX_RECORDED_REQUESTS = 1000

_VOCABULARY = (
    "agent", "answer", "budget", "cache", "context", "cost", "data", "debug", "deploy",
    "error", "event", "fast", "graph", "helpful", "input", "latency", "metric", "model",
    "network", "output", "plan", "prompt", "query", "result", "retry", "sample", "signal",
    "span", "step", "stream", "system", "task", "token", "tool", "trace", "value", "window",
)

# Keys whose string values are identifiers or markup rather than prompt text.
_NON_TEXT_KEYS = frozenset({
    "role", "type", "id", "name", "status", "call_id", "tool_call_id", "tool_use_id",
    "cache_control", "signature", "media_type", "detail", "format", "url", "data",
    "image_url", "file_id", "file_data",
})

_REDACTED_HEADERS = frozenset({"authorization", "x-api-key", "api-key"})

_OPENAI_ERROR_KINDS = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", None),
    409: ("invalid_request_error", None),
    422: ("invalid_request_error", None),
    429: ("requests", "rate_limit_exceeded"),
}

_ANTHROPIC_ERROR_KINDS = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


class _StubError(Exception):
    """An HTTP error to answer with, in the calling provider's error format."""

    def __init__(self, status: int, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after


class _DropConnection(Exception):
    """Close the socket without (completing) a response."""


# ---------------------------------------------------------------------------
# Small deterministic helpers
# ---------------------------------------------------------------------------


def _strings(value: Any, key: str | None = None) -> Iterator[str]:
    """Yield every piece of prompt text nested in a request structure."""
    if key in _NON_TEXT_KEYS:
        return
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, k)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _count_words(*values: Any) -> int:
    total = 0
    for value in values:
        if isinstance(value, list) and value and all(isinstance(v, int) for v in value):
            total += len(value)  # pre-tokenised input (embeddings)
            continue
        for text in _strings(value):
            total += len(text.split())
    return total


def _generate_text(rng: random.Random, words: int) -> str:
    if words <= 0:
        return ""
    chosen = [rng.choice(_VOCABULARY) for _ in range(words)]
    chosen[0] = chosen[0].capitalize()
    chosen[-1] += "."
    return " ".join(chosen)


def _text_deltas(text: str) -> list[str]:
    """Split text into one delta per word; the deltas concatenate back to ``text``."""
    words = text.split(" ")
    return [words[0]] + [" " + w for w in words[1:]] if text else []


def _json_fragments(text: str, parts: int = 3) -> list[str]:
    """Split a JSON string into a few pieces, as providers stream tool arguments."""
    if len(text) <= 1:
        return [text]
    size = max(1, -(-len(text) // parts))
    return [text[i:i + size] for i in range(0, len(text), size)]


def _plausible_value(schema: Any, depth: int = 0) -> Any:
    """A value that satisfies a (simple) JSON schema, so tool arguments look real."""
    if not isinstance(schema, dict) or depth > 4:
        return "stub"
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind == "object" or "properties" in schema:
        return _plausible_arguments(schema, depth + 1)
    return {
        "integer": 1,
        "number": 1.5,
        "boolean": True,
        "array": [],
        "null": None,
    }.get(kind, "stub")


def _plausible_arguments(schema: Any, depth: int = 0) -> dict[str, Any]:
    if not isinstance(schema, dict):
        return {}
    props = schema.get("properties")
    if not isinstance(props, dict):
        return {}
    required = schema.get("required")
    names = [n for n in required if n in props] if isinstance(required, list) else list(props)
    return {name: _plausible_value(props[name], depth) for name in names}


def _header_int(headers: Any, name: str, default: int, minimum: int = 0) -> int:
    raw = headers.get(name)
    if raw is None:
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise _StubError(400, f"invalid {name} header: {raw!r}") from None
    if value < minimum:
        raise _StubError(400, f"invalid {name} header: {raw!r}")
    return value


def _header_float(headers: Any, name: str, default: float) -> float:
    raw = headers.get(name)
    if raw is None:
        return default
    try:
        value = float(raw.strip())
    except ValueError:
        raise _StubError(400, f"invalid {name} header: {raw!r}") from None
    if not value >= 0:  # also rejects NaN
        raise _StubError(400, f"invalid {name} header: {raw!r}")
    return value


class _Controls:
    """Per-request behaviour, read from ``x-stub-*`` headers over server defaults."""

    def __init__(self, headers: Any, stub: "StubServer") -> None:
        status = headers.get("x-stub-status")
        self.status = _header_int(headers, "x-stub-status", 0) if status is not None else None
        if self.status is not None and not 400 <= self.status <= 599:
            raise _StubError(400, f"x-stub-status must be 400..599, got {status!r}")
        self.delay = _header_float(headers, "x-stub-delay", 0.0)
        raw_retry = headers.get("x-stub-retry-after")
        self.retry_after = None if raw_retry is None else _header_float(headers, "x-stub-retry-after", 0.0)
        self.chunk_delay = _header_float(headers, "x-stub-chunk-delay", stub.chunk_delay)
        usage = headers.get("x-stub-usage")
        if usage is not None and usage.strip().lower() not in ("missing", "malformed", "normal"):
            raise _StubError(400, f"x-stub-usage must be missing|malformed, got {usage!r}")
        self.usage = None if usage is None or usage.strip().lower() == "normal" else usage.strip().lower()
        raw_break = headers.get("x-stub-break-after")
        self.break_after = _header_int(headers, "x-stub-break-after", 0) if raw_break is not None else None
        self.cached = _header_int(headers, "x-stub-cached-tokens", stub.cached_tokens)
        self.cache_write = _header_int(headers, "x-stub-cache-write-tokens", stub.cache_write_tokens)
        self.reasoning = _header_int(headers, "x-stub-reasoning-tokens", stub.reasoning_tokens)
        self.output_words = _header_int(headers, "x-stub-output-words", stub.output_words)


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

    def _send_json(self, status: int, payload: Any, extra_headers: dict[str, str] | None = None) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (extra_headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def _send_error(
        self, provider: str, status: int, message: str, request_id: str, retry_after: float | None = None
    ) -> None:
        headers = {"x-request-id": request_id, "request-id": request_id}
        if retry_after is not None:
            headers["retry-after"] = f"{retry_after:g}"
        elif status == 429:
            # Note: both SDKs treat 0 as "unspecified" and fall back to their own
            # exponential backoff (~0.5-1 s); use x-stub-retry-after for fast retries.
            headers["retry-after"] = "0"
        if provider == "anthropic":
            kind = _ANTHROPIC_ERROR_KINDS.get(status, "api_error" if status >= 500 else "invalid_request_error")
            payload: Any = {
                "type": "error",
                "error": {"type": kind, "message": message},
                "request_id": request_id,
            }
        else:
            kind, code = _OPENAI_ERROR_KINDS.get(
                status, ("server_error" if status >= 500 else "invalid_request_error", None)
            )
            payload = {"error": {"message": message, "type": kind, "param": None, "code": code}}
        self._send_json(status, payload, headers)

    def _send_sse(self, events: list[bytes], ctl: _Controls, request_id: str) -> None:
        """Stream pre-rendered SSE events with chunked encoding.

        Chunked framing (rather than close-delimited) matters twice: the
        connection can be kept alive afterwards, and cutting the body short
        (``x-stub-break-after``) is detectable by the client as an incomplete
        message instead of looking like a normal end of stream.
        """
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("x-request-id", request_id)
        self.send_header("request-id", request_id)
        self.end_headers()
        self.wfile.flush()
        stub = self.server.stub
        for index, event in enumerate(events):
            if ctl.break_after is not None and index >= ctl.break_after:
                raise _DropConnection()
            if index and ctl.chunk_delay and stub._sleep(ctl.chunk_delay):
                raise _DropConnection()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
            self.wfile.flush()
        if ctl.break_after is not None:
            raise _DropConnection()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # -- routing
    def _dispatch(self, method: str) -> None:
        stub = self.server.stub
        path = self.path.split("?", 1)[0]
        if len(path) > 1:
            path = path.rstrip("/")
        provider = "anthropic" if path.startswith("/v1/messages") else "openai"
        request_id = stub._next_id("req_")
        try:
            try:
                raw = self._read_body()
            except (ValueError, OSError):
                self.close_connection = True
                raise _StubError(400, "could not read the request body") from None

            if path == "/healthz":
                self._send_json(200, {"status": "ok"})
                return
            if path == "/_stub/requests":
                if method == "GET":
                    self._send_json(200, stub.requests)
                elif method == "DELETE":
                    self._send_json(200, {"cleared": stub.clear_requests()})
                else:
                    raise _StubError(405, f"{method} not allowed on {path}")
                return

            handler = _ROUTES.get((method, path))
            body: Any = None
            malformed = False
            if raw:
                try:
                    body = json.loads(raw)
                except (ValueError, UnicodeDecodeError):
                    malformed = True
            stub._record(method, path, self.headers, body if not malformed else raw.decode("utf-8", "replace"))
            if handler is None:
                raise _StubError(404, f"stub has no route {method} {path}")
            fail = stub._draw_failure()
            if malformed:
                raise _StubError(400, "We could not parse the JSON body of your request.")
            if not isinstance(body, dict):
                raise _StubError(400, "The request body must be a JSON object.")
            ctl = _Controls(self.headers, stub)
            if stub._sleep(stub.latency + ctl.delay):
                raise _DropConnection()
            if ctl.status is not None:
                raise _StubError(ctl.status, f"stub: forced HTTP {ctl.status} via x-stub-status", ctl.retry_after)
            if fail:
                raise _StubError(500, "stub: random failure (failure_rate)", ctl.retry_after)
            if ctl.break_after is not None and not body.get("stream"):
                raise _DropConnection()  # a non-streamed answer can only break before it starts
            handler(self, body, ctl, request_id)
        except _StubError as err:
            try:
                self._send_error(provider, err.status, err.message, request_id, err.retry_after)
            except OSError:
                self.close_connection = True
        except _DropConnection:
            self._drop()
        except OSError:
            # The client went away (timeout, closed stream); nothing to answer.
            self.close_connection = True
        except Exception as exc:  # a stub bug must surface as a response, not a hung-up socket
            traceback.print_exc()
            self.close_connection = True
            try:
                self._send_error(provider, 500, f"stub internal error: {exc!r}", request_id)
            except OSError:
                pass

    # -- plan shared by all generating endpoints
    def _rng(self, body: dict[str, Any], *keys: str) -> random.Random:
        # Seeded from the prompt only, so stream/non-stream calls of the same
        # prompt get the same words; str seeds hash stably across processes.
        material = json.dumps([body.get(k) for k in keys], sort_keys=True, default=str)
        return random.Random(f"{self.server.stub.seed}|{material}")

    def _model(self, body: dict[str, Any]) -> str:
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise _StubError(400, "you must provide a model parameter")
        return self.server.stub.model_aliases.get(model, model)

    # -- OpenAI chat completions
    def _chat_completions(self, body: dict[str, Any], ctl: _Controls, request_id: str) -> None:
        stub = self.server.stub
        model = self._model(body)
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise _StubError(400, "'messages' must be a non-empty array")
        tool = _openai_chat_tool(body)
        rng = self._rng(body, "model", "messages")
        prompt = _count_words(messages) + PROMPT_OVERHEAD + ctl.cached + ctl.cache_write
        if tool is not None:
            name, arguments = tool
            args_json = json.dumps(arguments)
            text = None
            visible = TOOL_CALL_TOKENS
            finish = "tool_calls"
            call_id = stub._next_id("call_")
        else:
            text = _generate_text(rng, ctl.output_words)
            visible = len(text.split())
            finish = "stop"
        completion = visible + ctl.reasoning
        usage: Any = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": ctl.cached, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": ctl.reasoning,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }
        if ctl.cache_write:
            usage["prompt_tokens_details"]["cache_write_tokens"] = ctl.cache_write
        if ctl.usage == "malformed":
            usage = {
                "prompt_tokens": "abc",
                "completion_tokens": -5,
                "total_tokens": None,
                "prompt_tokens_details": "unknown",
                "completion_tokens_details": {"reasoning_tokens": "many"},
            }
        completion_id = stub._next_id("chatcmpl-")
        created = int(time.time())

        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None, "annotations": []}
            if tool is not None:
                message["tool_calls"] = [
                    {"id": call_id, "type": "function", "function": {"name": name, "arguments": args_json}}
                ]
            payload: dict[str, Any] = {
                "id": completion_id,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
                "service_tier": "default",
                "system_fingerprint": "fp_stub",
            }
            if ctl.usage != "missing":
                payload["usage"] = usage
            self._send_json(200, payload, {"x-request-id": request_id})
            return

        stream_options = body.get("stream_options")
        include_usage = isinstance(stream_options, dict) and stream_options.get("include_usage") is True

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
            data: dict[str, Any] = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "service_tier": "default",
                "system_fingerprint": "fp_stub",
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
            }
            if include_usage and ctl.usage != "missing":
                data["usage"] = None
            return data

        chunks: list[dict[str, Any]] = []
        if tool is not None:
            chunks.append(chunk({
                "role": "assistant",
                "content": None,
                "tool_calls": [{
                    "index": 0, "id": call_id, "type": "function",
                    "function": {"name": name, "arguments": ""},
                }],
                "refusal": None,
            }))
            for fragment in _json_fragments(args_json):
                chunks.append(chunk({"tool_calls": [{"index": 0, "function": {"arguments": fragment}}]}))
        else:
            chunks.append(chunk({"role": "assistant", "content": "", "refusal": None}))
            chunks.extend(chunk({"content": piece}) for piece in _text_deltas(text or ""))
        chunks.append(chunk({}, finish))
        if include_usage and ctl.usage != "missing":
            final = chunk({})
            final["choices"] = []
            final["usage"] = usage
            chunks.append(final)
        events = [b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks]
        events.append(b"data: [DONE]\n\n")
        self._send_sse(events, ctl, request_id)

    # -- OpenAI Responses API
    def _responses(self, body: dict[str, Any], ctl: _Controls, request_id: str) -> None:
        stub = self.server.stub
        model = self._model(body)
        tool = _responses_tool(body)
        rng = self._rng(body, "model", "input", "instructions")
        prompt = _count_words(body.get("input"), body.get("instructions")) + PROMPT_OVERHEAD
        prompt += ctl.cached + ctl.cache_write
        response_id = stub._next_id("resp_")
        created = int(time.time())
        if tool is not None:
            name, arguments = tool
            args_json = json.dumps(arguments)
            item_id = stub._next_id("fc_")
            call_id = stub._next_id("call_")
            visible = TOOL_CALL_TOKENS
            text = ""

            def item(status: str, args: str) -> dict[str, Any]:
                return {"type": "function_call", "id": item_id, "call_id": call_id, "name": name,
                        "arguments": args, "status": status}
        else:
            item_id = stub._next_id("msg_")
            text = _generate_text(rng, ctl.output_words)
            visible = len(text.split())

            def item(status: str, content_text: str | None) -> dict[str, Any]:
                content = [] if content_text is None else [_output_text(content_text)]
                return {"type": "message", "id": item_id, "role": "assistant", "status": status,
                        "content": content}
        output_tokens = visible + ctl.reasoning
        usage: Any = {
            "input_tokens": prompt,
            "input_tokens_details": {"cached_tokens": ctl.cached, "cache_write_tokens": ctl.cache_write},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": ctl.reasoning},
            "total_tokens": prompt + output_tokens,
        }
        if ctl.usage == "malformed":
            usage = {
                "input_tokens": "abc",
                "input_tokens_details": "unknown",
                "output_tokens": -5,
                "output_tokens_details": {"reasoning_tokens": "many"},
                "total_tokens": None,
            }

        def response(status: str, output: list[Any], final: bool) -> dict[str, Any]:
            data: dict[str, Any] = {
                "id": response_id,
                "object": "response",
                "created_at": created,
                "status": status,
                "background": False,
                "completed_at": int(time.time()) if final else None,
                "error": None,
                "incomplete_details": None,
                "instructions": body.get("instructions"),
                "max_output_tokens": body.get("max_output_tokens"),
                "model": model,
                "output": output,
                "parallel_tool_calls": body.get("parallel_tool_calls", True),
                "previous_response_id": body.get("previous_response_id"),
                "reasoning": {"effort": None, "summary": None},
                "service_tier": "default",
                "store": body.get("store", True),
                "temperature": body.get("temperature", 1.0),
                "text": {"format": {"type": "text"}, "verbosity": "medium"},
                "tool_choice": body.get("tool_choice", "auto"),
                "tools": body.get("tools", []),
                "top_p": body.get("top_p", 1.0),
                "truncation": "disabled",
                "user": None,
                "metadata": body.get("metadata") or {},
            }
            if ctl.usage != "missing":
                data["usage"] = usage if final else None
            return data

        done_item = item("completed", args_json if tool is not None else text)
        if not body.get("stream"):
            self._send_json(200, response("completed", [done_item], True), {"x-request-id": request_id})
            return

        seq = 0
        events: list[bytes] = []

        def emit(kind: str, **fields: Any) -> None:
            nonlocal seq
            data = {"type": kind, "sequence_number": seq, **fields}
            seq += 1
            events.append(f"event: {kind}\ndata: {json.dumps(data)}\n\n".encode())

        emit("response.created", response=response("in_progress", [], False))
        emit("response.in_progress", response=response("in_progress", [], False))
        if tool is not None:
            emit("response.output_item.added", output_index=0, item=item("in_progress", ""))
            for fragment in _json_fragments(args_json):
                emit("response.function_call_arguments.delta", item_id=item_id, output_index=0, delta=fragment)
            emit("response.function_call_arguments.done", item_id=item_id, output_index=0,
                 name=name, arguments=args_json)
        else:
            emit("response.output_item.added", output_index=0, item=item("in_progress", None))
            emit("response.content_part.added", item_id=item_id, output_index=0, content_index=0,
                 part=_output_text(""))
            for piece in _text_deltas(text):
                emit("response.output_text.delta", item_id=item_id, output_index=0, content_index=0,
                     delta=piece, logprobs=[])
            emit("response.output_text.done", item_id=item_id, output_index=0, content_index=0,
                 text=text, logprobs=[])
            emit("response.content_part.done", item_id=item_id, output_index=0, content_index=0,
                 part=_output_text(text))
        emit("response.output_item.done", output_index=0, item=done_item)
        emit("response.completed", response=response("completed", [done_item], True))
        self._send_sse(events, ctl, request_id)

    # -- OpenAI embeddings
    def _embeddings(self, body: dict[str, Any], ctl: _Controls, request_id: str) -> None:
        model = self._model(body)
        raw_input = body.get("input")
        if isinstance(raw_input, str) or (
            isinstance(raw_input, list) and raw_input and all(isinstance(v, int) for v in raw_input)
        ):
            inputs: list[Any] = [raw_input]
        elif isinstance(raw_input, list) and raw_input:
            inputs = raw_input
        else:
            raise _StubError(400, "'input' must be a non-empty string or array")
        dims = body.get("dimensions")
        dims = dims if isinstance(dims, int) and 1 <= dims <= 4096 else EMBEDDING_DIMENSIONS
        as_base64 = body.get("encoding_format") == "base64"
        data = []
        for index, item in enumerate(inputs):
            rng = random.Random(f"{self.server.stub.seed}|{model}|{json.dumps(item)}")
            vector = [rng.uniform(-1.0, 1.0) for _ in range(dims)]
            norm = sum(v * v for v in vector) ** 0.5 or 1.0
            # Round-trip through float32 so float and base64 answers are identical.
            packed = struct.pack(f"<{dims}f", *(v / norm for v in vector))
            embedding: Any = (
                base64.b64encode(packed).decode() if as_base64 else list(struct.unpack(f"<{dims}f", packed))
            )
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        tokens = sum(max(1, _count_words(item)) for item in inputs)
        payload: dict[str, Any] = {"object": "list", "data": data, "model": model}
        if ctl.usage == "malformed":
            payload["usage"] = {"prompt_tokens": "abc", "total_tokens": -5}
        elif ctl.usage != "missing":
            payload["usage"] = {"prompt_tokens": tokens, "total_tokens": tokens}
        self._send_json(200, payload, {"x-request-id": request_id})

    # -- Anthropic messages
    def _anthropic_input_tokens(self, body: dict[str, Any]) -> int:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise _StubError(400, "messages: at least one message is required")
        return _count_words(messages, body.get("system")) + PROMPT_OVERHEAD

    def _messages(self, body: dict[str, Any], ctl: _Controls, request_id: str) -> None:
        stub = self.server.stub
        model = self._model(body)
        input_tokens = self._anthropic_input_tokens(body)
        if not isinstance(body.get("max_tokens"), int):
            raise _StubError(400, "max_tokens: Field required")
        tool = _anthropic_tool(body)
        rng = self._rng(body, "model", "messages", "system")
        message_id = stub._next_id("msg_")
        if tool is not None:
            name, arguments = tool
            args_json = json.dumps(arguments)
            tool_id = stub._next_id("toolu_")
            visible = TOOL_CALL_TOKENS
            stop_reason = "tool_use"
            block: dict[str, Any] = {"type": "tool_use", "id": tool_id, "name": name, "input": arguments}
        else:
            text = _generate_text(rng, ctl.output_words)
            visible = len(text.split())
            stop_reason = "end_turn"
            block = {"type": "text", "text": text}
        output_tokens = visible + ctl.reasoning

        def usage(output: int) -> Any:
            if ctl.usage == "malformed":
                return {"input_tokens": "abc", "output_tokens": -5, "cache_read_input_tokens": "many",
                        "cache_creation_input_tokens": None}
            data: dict[str, Any] = {
                "input_tokens": input_tokens,
                "cache_creation_input_tokens": ctl.cache_write,
                "cache_read_input_tokens": ctl.cached,
                "cache_creation": {"ephemeral_5m_input_tokens": ctl.cache_write, "ephemeral_1h_input_tokens": 0},
                "output_tokens": output,
                "service_tier": "standard",
            }
            if ctl.reasoning:
                data["output_tokens_details"] = {"thinking_tokens": ctl.reasoning}
            return data

        def message(content: list[Any], stop: str | None, output: int) -> dict[str, Any]:
            data: dict[str, Any] = {
                "id": message_id,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": content,
                "stop_reason": stop,
                "stop_sequence": None,
            }
            if ctl.usage != "missing":
                data["usage"] = usage(output)
            return data

        if not body.get("stream"):
            self._send_json(200, message([block], stop_reason, output_tokens), {"request-id": request_id})
            return

        events: list[bytes] = []

        def emit(kind: str, **fields: Any) -> None:
            events.append(f"event: {kind}\ndata: {json.dumps({'type': kind, **fields})}\n\n".encode())

        emit("message_start", message=message([], None, 1))
        emit("ping")
        if tool is not None:
            emit("content_block_start", index=0, content_block={**block, "input": {}})
            for fragment in [""] + _json_fragments(args_json):
                emit("content_block_delta", index=0, delta={"type": "input_json_delta", "partial_json": fragment})
        else:
            emit("content_block_start", index=0, content_block={"type": "text", "text": ""})
            for piece in _text_deltas(block["text"]):
                emit("content_block_delta", index=0, delta={"type": "text_delta", "text": piece})
        emit("content_block_stop", index=0)
        delta_fields: dict[str, Any] = {"delta": {"stop_reason": stop_reason, "stop_sequence": None}}
        if ctl.usage != "missing":
            # Like the live API: cumulative totals, input side repeated, not increments.
            full = usage(output_tokens)
            if isinstance(full, dict):
                full.pop("cache_creation", None)
                full.pop("service_tier", None)
            delta_fields["usage"] = full
        emit("message_delta", **delta_fields)
        emit("message_stop")
        self._send_sse(events, ctl, request_id)

    def _count_tokens(self, body: dict[str, Any], ctl: _Controls, request_id: str) -> None:
        self._model(body)
        self._send_json(200, {"input_tokens": self._anthropic_input_tokens(body)}, {"request-id": request_id})


def _output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _forced_tool_name(choice: Any) -> str | None:
    if isinstance(choice, dict):
        if isinstance(choice.get("function"), dict):
            return choice["function"].get("name")
        return choice.get("name")
    return None


def _openai_chat_tool(body: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """Which function to call, or None to answer with text (e.g. after a tool result)."""
    tools = [
        t["function"] for t in body.get("tools") or []
        if isinstance(t, dict) and isinstance(t.get("function"), dict) and isinstance(t["function"].get("name"), str)
    ]
    choice = body.get("tool_choice")
    if not tools or choice == "none":
        return None
    last = body["messages"][-1]
    if isinstance(last, dict) and last.get("role") in ("tool", "function"):
        return None
    forced = _forced_tool_name(choice)
    fn = next((t for t in tools if t["name"] == forced), tools[0])
    return fn["name"], _plausible_arguments(fn.get("parameters"))


def _responses_tool(body: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    tools = [
        t for t in body.get("tools") or []
        if isinstance(t, dict) and t.get("type") == "function" and isinstance(t.get("name"), str)
    ]
    choice = body.get("tool_choice")
    if not tools or choice == "none":
        return None
    items = body.get("input")
    if isinstance(items, list) and items and isinstance(items[-1], dict) and (
        items[-1].get("type") == "function_call_output"
    ):
        return None
    forced = _forced_tool_name(choice)
    fn = next((t for t in tools if t["name"] == forced), tools[0])
    return fn["name"], _plausible_arguments(fn.get("parameters"))


def _anthropic_tool(body: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    tools = [
        t for t in body.get("tools") or []
        if isinstance(t, dict) and isinstance(t.get("name"), str) and t.get("type") in (None, "custom")
    ]
    choice = body.get("tool_choice")
    if not tools or (isinstance(choice, dict) and choice.get("type") == "none"):
        return None
    last = body["messages"][-1]
    content = last.get("content") if isinstance(last, dict) else None
    if isinstance(content, list) and any(isinstance(b, dict) and b.get("type") == "tool_result" for b in content):
        return None
    forced = choice.get("name") if isinstance(choice, dict) and choice.get("type") == "tool" else None
    tool = next((t for t in tools if t["name"] == forced), tools[0])
    return tool["name"], _plausible_arguments(tool.get("input_schema"))


_ROUTES = {
    ("POST", "/v1/chat/completions"): _Handler._chat_completions,
    ("POST", "/v1/responses"): _Handler._responses,
    ("POST", "/v1/embeddings"): _Handler._embeddings,
    ("POST", "/v1/messages"): _Handler._messages,
    ("POST", "/v1/messages/count_tokens"): _Handler._count_tokens,
}


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------


class StubServer:
    """The stub LLM server; serve it in a background thread with ``start()`` or ``with``.

    Server-wide defaults here are overridden per request by ``x-stub-*`` headers.
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

    def _next_id(self, prefix: str) -> str:
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


if __name__ == "__main__":
    sys.exit(main())
