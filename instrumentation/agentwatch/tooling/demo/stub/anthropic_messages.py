"""Anthropic messages, `POST /v1/messages` (a text or `tool_use` block, whole or as the event stream) and
`POST /v1/messages/count_tokens`, with Anthropic's error body."""

from __future__ import annotations

import json
from typing import Any

from agentwatch.tooling.demo.stub import sse
from agentwatch.tooling.demo.stub.api import Answer, Call, ErrorFormat, Json, Stream
from agentwatch.tooling.demo.stub.content import (
    PROMPT_OVERHEAD, TOOL_CALL_TOKENS, count_words, generate_text, json_fragments, plausible_arguments,
    text_deltas,
)
from agentwatch.tooling.demo.stub.controls import StubError

_ERROR_KINDS = {
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


def _error_body(status: int, message: str, request_id: str) -> Any:
    kind = _ERROR_KINDS.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": request_id}


ERRORS = ErrorFormat("anthropic", _error_body)


def _input_tokens(body: dict[str, Any]) -> int:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise StubError(400, "messages: at least one message is required")
    return count_words(messages, body.get("system")) + PROMPT_OVERHEAD


def _tool(body: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """Which tool to use, or None to answer with text (e.g. after a tool result)."""
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
    return tool["name"], plausible_arguments(tool.get("input_schema"))


def create(call: Call) -> Answer:
    body, ctl = call.body, call.ctl
    model = call.model()
    input_tokens = _input_tokens(body)
    if not isinstance(body.get("max_tokens"), int):
        raise StubError(400, "max_tokens: Field required")
    tool = _tool(body)
    rng = call.rng("model", "messages", "system")
    message_id = call.next_id("msg_")
    if tool is not None:
        name, arguments = tool
        args_json = json.dumps(arguments)
        tool_id = call.next_id("toolu_")
        visible = TOOL_CALL_TOKENS
        stop_reason = "tool_use"
        block: dict[str, Any] = {"type": "tool_use", "id": tool_id, "name": name, "input": arguments}
    else:
        text = generate_text(rng, ctl.output_words)
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
        return Json(message([block], stop_reason, output_tokens), {"request-id": call.request_id})

    events: list[bytes] = []

    def emit(kind: str, **fields: Any) -> None:
        events.append(sse.typed_event(kind, {"type": kind, **fields}))

    emit("message_start", message=message([], None, 1))
    emit("ping")
    if tool is not None:
        emit("content_block_start", index=0, content_block={**block, "input": {}})
        for fragment in [""] + json_fragments(args_json):
            emit("content_block_delta", index=0, delta={"type": "input_json_delta", "partial_json": fragment})
    else:
        emit("content_block_start", index=0, content_block={"type": "text", "text": ""})
        for piece in text_deltas(block["text"]):
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
    return Stream(events)


def count_tokens(call: Call) -> Answer:
    call.model()
    return Json({"input_tokens": _input_tokens(call.body)}, {"request-id": call.request_id})
