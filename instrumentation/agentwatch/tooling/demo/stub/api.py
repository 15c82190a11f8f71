"""What a wire-format module works with: the request (`Call`), the answer (`Json` or `Stream`), the provider's
error body (`ErrorFormat`) and the registration of an endpoint (`Route`). See the package docstring."""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol, Union
from urllib.parse import unquote

from agentwatch.tooling.demo.stub.controls import Controls, StubError


class Server(Protocol):
    """What a handler may use of the server (StubServer is one)."""

    seed: int
    model_aliases: dict[str, str]

    def next_id(self, prefix: str) -> str: ...


@dataclass(frozen=True)
class Json:
    """A complete JSON answer (HTTP 200)."""

    payload: Any
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Stream:
    """A streamed answer: pre-rendered frames, sent one by one with chunked transfer encoding, so the stub's
    x-stub-chunk-delay and x-stub-break-after apply per frame, whatever the framing."""

    frames: list[bytes]
    content_type: str = "text/event-stream; charset=utf-8"


Answer = Union[Json, Stream]


@dataclass(frozen=True)
class ErrorFormat:
    """How a provider's API renders an HTTP error: `body(status, message, request_id)` -> the JSON payload."""

    name: str
    body: Callable[[int, str, str], Any]


class Call:
    """One API request, as its handler sees it."""

    def __init__(self, stub: Server, body: dict[str, Any], ctl: Controls, request_id: str,
                 path_params: Mapping[str, str] | None = None, query: Mapping[str, str] | None = None) -> None:
        self.stub = stub
        self.body = body
        self.ctl = ctl
        self.request_id = request_id
        self.path_params = dict(path_params or {})
        self.query = dict(query or {})

    def model(self) -> str:
        """The body's `model`, resolved through the server's aliases like the real APIs resolve them."""
        model = self.body.get("model")
        if not isinstance(model, str) or not model:
            raise StubError(400, "you must provide a model parameter")
        return self.stub.model_aliases.get(model, model)

    def rng(self, *keys: str) -> random.Random:
        """A generator seeded by the server's seed and these body fields only (the prompt), so streamed and
        non-streamed calls of the same prompt get the same words; str seeds hash stably across processes."""
        material = json.dumps([self.body.get(k) for k in keys], sort_keys=True, default=str)
        return random.Random(f"{self.stub.seed}|{material}")

    def next_id(self, prefix: str) -> str:
        """A unique id for a response, message or tool call (`chatcmpl-`, `msg_`, `call_`, ...)."""
        return self.stub.next_id(prefix)


Handler = Callable[[Call], Answer]


class Route:
    """An endpoint: method and path template (`{name}` matches one URL-decoded path segment or part of one,
    e.g. `/v1beta/models/{model}:generateContent`), its handler and its error format."""

    def __init__(self, method: str, path: str, handler: Handler, errors: ErrorFormat) -> None:
        self.method = method
        self.path = path
        self.handler = handler
        self.errors = errors
        parts = re.split(r"\{(\w+)\}", path)
        pattern = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>[^/]+?)" for i, p in enumerate(parts))
        self._pattern = re.compile(pattern + "$")
        self.prefix = parts[0]  # the path up to the first placeholder

    def match(self, method: str, path: str) -> dict[str, str] | None:
        """The path parameters when this route serves the request, else None."""
        if method != self.method:
            return None
        found = self._pattern.match(path)
        return None if found is None else {k: unquote(v) for k, v in found.groupdict().items()}

    def __repr__(self) -> str:
        return f"Route({self.method} {self.path} -> {self.errors.name})"
