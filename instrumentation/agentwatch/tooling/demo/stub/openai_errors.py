"""OpenAI's error body, `{"error": {"message", "type", "param", "code"}}`, shared by its chat completions,
responses and embeddings APIs (and the stub's answer on a path it has no route for)."""

from __future__ import annotations

from typing import Any

from agentwatch.tooling.demo.stub.api import ErrorFormat

_KINDS = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", None),
    409: ("invalid_request_error", None),
    422: ("invalid_request_error", None),
    429: ("requests", "rate_limit_exceeded"),
}


def _body(status: int, message: str, request_id: str) -> Any:
    kind, code = _KINDS.get(status, ("server_error" if status >= 500 else "invalid_request_error", None))
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


ERRORS = ErrorFormat("openai", _body)
