"""Server-Sent Events framing, as OpenAI and Anthropic stream (a `Stream` frame each)."""

from __future__ import annotations

import json
from typing import Any

DONE = b"data: [DONE]\n\n"  # OpenAI chat completions' end of stream


def data_event(payload: Any) -> bytes:
    """`data: {...}` alone (OpenAI chat completions)."""
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


def typed_event(kind: str, payload: Any) -> bytes:
    """`event: <kind>` then `data: {...}` (OpenAI responses, Anthropic messages)."""
    return f"event: {kind}\ndata: {json.dumps(payload)}\n\n".encode()
