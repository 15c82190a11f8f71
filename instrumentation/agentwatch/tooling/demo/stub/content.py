"""What the stub answers, deterministically: prompt word counts, generated text and its stream deltas, tool
arguments that satisfy the tool's JSON schema. Shared by every wire format."""

from __future__ import annotations

import random
from typing import Any, Iterator

PROMPT_OVERHEAD = 3  # fixed per-request input tokens, like chat-format framing tokens
DEFAULT_OUTPUT_WORDS = 12
TOOL_CALL_TOKENS = 10  # output tokens reported for a generated tool call

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


def count_words(*values: Any) -> int:
    total = 0
    for value in values:
        if isinstance(value, list) and value and all(isinstance(v, int) for v in value):
            total += len(value)  # pre-tokenised input (embeddings)
            continue
        for text in _strings(value):
            total += len(text.split())
    return total


def generate_text(rng: random.Random, words: int) -> str:
    if words <= 0:
        return ""
    chosen = [rng.choice(_VOCABULARY) for _ in range(words)]
    chosen[0] = chosen[0].capitalize()
    chosen[-1] += "."
    return " ".join(chosen)


def text_deltas(text: str) -> list[str]:
    """Split text into one delta per word; the deltas concatenate back to ``text``."""
    words = text.split(" ")
    return [words[0]] + [" " + w for w in words[1:]] if text else []


def json_fragments(text: str, parts: int = 3) -> list[str]:
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
        return plausible_arguments(schema, depth + 1)
    return {
        "integer": 1,
        "number": 1.5,
        "boolean": True,
        "array": [],
        "null": None,
    }.get(kind, "stub")


def plausible_arguments(schema: Any, depth: int = 0) -> dict[str, Any]:
    """Arguments for a tool with this JSON schema: every required property (all, when none is marked)."""
    if not isinstance(schema, dict):
        return {}
    props = schema.get("properties")
    if not isinstance(props, dict):
        return {}
    required = schema.get("required")
    names = [n for n in required if n in props] if isinstance(required, list) else list(props)
    return {name: _plausible_value(props[name], depth) for name in names}


def forced_tool_name(choice: Any) -> str | None:
    """The function an OpenAI-style `tool_choice` forces, if any."""
    if isinstance(choice, dict):
        if isinstance(choice.get("function"), dict):
            return choice["function"].get("name")
        return choice.get("name")
    return None
