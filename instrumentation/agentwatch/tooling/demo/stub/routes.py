"""THE route table of the stub: every endpoint it serves, with its handler and its provider's error format.
A new wire format adds its module and its lines here (see the package docstring)."""

from __future__ import annotations

from typing import Sequence

from agentwatch.tooling.demo.stub import (
    anthropic_messages, openai_chat, openai_embeddings, openai_errors, openai_responses,
)
from agentwatch.tooling.demo.stub.api import ErrorFormat, Route

ROUTES: tuple[Route, ...] = (
    Route("POST", "/v1/chat/completions", openai_chat.create, openai_errors.ERRORS),
    Route("POST", "/v1/responses", openai_responses.create, openai_errors.ERRORS),
    Route("POST", "/v1/embeddings", openai_embeddings.create, openai_errors.ERRORS),
    Route("POST", "/v1/messages", anthropic_messages.create, anthropic_messages.ERRORS),
    Route("POST", "/v1/messages/count_tokens", anthropic_messages.count_tokens, anthropic_messages.ERRORS),
)

# The error format of a request no route serves (and of the stub's own endpoints).
DEFAULT_ERRORS = openai_errors.ERRORS


def find(method: str, path: str, routes: Sequence[Route] = ROUTES) -> tuple[Route | None, dict[str, str]]:
    """The route serving `method path` and its path parameters; (None, {}) when there is none."""
    for route in routes:
        params = route.match(method, path)
        if params is not None:
            return route, params
    return None, {}


def errors_for(path: str, routes: Sequence[Route] = ROUTES) -> ErrorFormat:
    """The error format for a path no route serves: that of the route whose path (up to its first placeholder)
    is the longest prefix of it (an SDK calling an endpoint below one the stub serves gets its own provider's
    error), else DEFAULT_ERRORS."""
    best = max((r for r in routes if path.startswith(r.prefix)), key=lambda r: len(r.prefix), default=None)
    return best.errors if best is not None else DEFAULT_ERRORS
