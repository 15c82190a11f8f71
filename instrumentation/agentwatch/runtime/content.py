"""Captured content (only with `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT` on): semconv message parts
and the ONE JSON rendering, truncated, that every content attribute goes through (LLM messages, system
instructions, tool-call arguments and results), so the same value reads the same everywhere.

Everything here is pure: plain values in, plain values or strings out.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Iterable

TRUNCATION_MARK = "…[truncated]"


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + TRUNCATION_MARK


def _plain(value: Any) -> Any:
    """What json.dumps cannot render itself: SDK models (pydantic), dataclasses, other objects."""
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        try:
            return dump(mode="json", exclude_none=True)
        except Exception:  # noqa: BLE001 - an odd model renders as text, never raises into the agent
            return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    attributes = getattr(value, "__dict__", None)
    if isinstance(attributes, dict):
        return {k: v for k, v in attributes.items() if not k.startswith("_")}
    return str(value)


def content_json(value: Any, limit: int) -> str:
    """The attribute value for captured content: JSON (non-ASCII kept), cut to `limit` characters."""
    return truncate(json.dumps(value, default=_plain, ensure_ascii=False), limit)


# --- message parts -------------------------------------------------------------------------------------
def _getter(obj: Any):
    return obj.get if isinstance(obj, dict) else (lambda key, _o=obj: getattr(_o, key, None))


def text_part(text: str) -> dict[str, Any]:
    return {"type": "text", "content": text}


def tool_call_part(call_id: Any, name: Any, arguments: Any) -> dict[str, Any]:
    return {"type": "tool_call", "id": call_id, "name": name, "arguments": arguments}


def message_parts(content: Any) -> list[dict[str, Any]]:
    """Semconv message parts from a string or a list of provider content blocks (dicts or SDK objects)."""
    if content is None:
        return []
    if isinstance(content, str):
        return [text_part(content)]
    parts: list[dict[str, Any]] = []
    for block in content if isinstance(content, (list, tuple)) else [content]:
        if isinstance(block, str):
            parts.append(text_part(block))
            continue
        get = _getter(block)
        kind = get("type")
        if kind in ("text", "input_text", "output_text"):
            parts.append(text_part(get("text")))
        elif kind == "tool_use":
            parts.append(tool_call_part(get("id"), get("name"), get("input")))
        elif kind == "tool_result":
            parts.append({"type": "tool_call_response", "id": get("tool_use_id"), "response": get("content")})
        elif kind in ("thinking", "reasoning"):
            parts.append({"type": "reasoning", "content": get("thinking") or get("text")})
        else:
            parts.append({"type": str(kind or "unknown")})
    return parts


def output_message(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One assistant output message (one per choice / candidate); its finish reason is on the span."""
    return {"role": "assistant", "parts": parts}


def reusable(kwargs: dict, key: str) -> tuple[Any, dict]:
    """The request value `kwargs[key]`, safe to read without consuming what the SDK will send.

    A list, tuple, str or dict is returned as it is. Any other iterable (a generator, `map`, a
    one-shot iterator) is materialised into a list, which also goes into a COPY of kwargs for the SDK:
    the SDK would turn it into a list for the request body anyway, so the request is the same.
    """
    value = kwargs.get(key)
    if value is None or isinstance(value, (list, tuple, str, dict)) or not isinstance(value, Iterable):
        return value, kwargs
    materialised = list(value)
    return materialised, dict(kwargs, **{key: materialised})
