"""The fault controls: per-request behaviour read from ``x-stub-*`` headers over the server's defaults, and the
two ways a request can go wrong on purpose (an HTTP error, a dropped connection).

    x-stub-status: 429              answer with this HTTP error (400..599), in the route's error format
    x-stub-retry-after: 0.1         with it, a retry-after header (seconds)
    x-stub-delay: 0.5               wait this long before answering
    x-stub-chunk-delay: 0.01        wait this long between stream frames
    x-stub-break-after: 3           send this many stream frames, then drop the connection (0: before any)
    x-stub-usage: missing|malformed no usage in the answer, or garbage usage
    x-stub-cached-tokens: 40        cache-read input tokens to report
    x-stub-cache-write-tokens: 8    cache-write input tokens to report
    x-stub-reasoning-tokens: 16     reasoning (thinking) output tokens to report
    x-stub-output-words: 3          words in the generated answer
"""

from __future__ import annotations

from typing import Any, Protocol


class StubError(Exception):
    """An HTTP error to answer with, in the calling provider's error format."""

    def __init__(self, status: int, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after


class DropConnection(Exception):
    """Close the socket without (completing) a response."""


class Defaults(Protocol):
    """The server-wide defaults the headers override (StubServer has them)."""

    chunk_delay: float
    cached_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int
    output_words: int


def _header_int(headers: Any, name: str, default: int, minimum: int = 0) -> int:
    raw = headers.get(name)
    if raw is None:
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise StubError(400, f"invalid {name} header: {raw!r}") from None
    if value < minimum:
        raise StubError(400, f"invalid {name} header: {raw!r}")
    return value


def _header_float(headers: Any, name: str, default: float) -> float:
    raw = headers.get(name)
    if raw is None:
        return default
    try:
        value = float(raw.strip())
    except ValueError:
        raise StubError(400, f"invalid {name} header: {raw!r}") from None
    if not value >= 0:  # also rejects NaN
        raise StubError(400, f"invalid {name} header: {raw!r}")
    return value


class Controls:
    """Per-request behaviour, read from ``x-stub-*`` headers over server defaults."""

    def __init__(self, headers: Any, defaults: Defaults) -> None:
        status = headers.get("x-stub-status")
        self.status = _header_int(headers, "x-stub-status", 0) if status is not None else None
        if self.status is not None and not 400 <= self.status <= 599:
            raise StubError(400, f"x-stub-status must be 400..599, got {status!r}")
        self.delay = _header_float(headers, "x-stub-delay", 0.0)
        raw_retry = headers.get("x-stub-retry-after")
        self.retry_after = None if raw_retry is None else _header_float(headers, "x-stub-retry-after", 0.0)
        self.chunk_delay = _header_float(headers, "x-stub-chunk-delay", defaults.chunk_delay)
        usage = headers.get("x-stub-usage")
        if usage is not None and usage.strip().lower() not in ("missing", "malformed", "normal"):
            raise StubError(400, f"x-stub-usage must be missing|malformed, got {usage!r}")
        self.usage = None if usage is None or usage.strip().lower() == "normal" else usage.strip().lower()
        raw_break = headers.get("x-stub-break-after")
        self.break_after = _header_int(headers, "x-stub-break-after", 0) if raw_break is not None else None
        self.cached = _header_int(headers, "x-stub-cached-tokens", defaults.cached_tokens)
        self.cache_write = _header_int(headers, "x-stub-cache-write-tokens", defaults.cache_write_tokens)
        self.reasoning = _header_int(headers, "x-stub-reasoning-tokens", defaults.reasoning_tokens)
        self.output_words = _header_int(headers, "x-stub-output-words", defaults.output_words)
