"""OpenAI chat completions, `POST /v1/chat/completions`: a text answer or a function call, whole or streamed
(`stream_options.include_usage` adds the usage chunk)."""

from __future__ import annotations

import json
import time
from typing import Any

from agentwatch.tooling.demo.stub import sse
from agentwatch.tooling.demo.stub.api import Answer, Call, Json, Stream
from agentwatch.tooling.demo.stub.content import (
    PROMPT_OVERHEAD, TOOL_CALL_TOKENS, count_words, forced_tool_name, generate_text, json_fragments,
    plausible_arguments, text_deltas,
)
from agentwatch.tooling.demo.stub.controls import StubError


def _tool(body: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
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
    forced = forced_tool_name(choice)
    fn = next((t for t in tools if t["name"] == forced), tools[0])
    return fn["name"], plausible_arguments(fn.get("parameters"))


def create(call: Call) -> Answer:
    body, ctl = call.body, call.ctl
    model = call.model()
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise StubError(400, "'messages' must be a non-empty array")
    tool = _tool(body)
    rng = call.rng("model", "messages")
    prompt = count_words(messages) + PROMPT_OVERHEAD + ctl.cached + ctl.cache_write
    if tool is not None:
        name, arguments = tool
        args_json = json.dumps(arguments)
        text = None
        visible = TOOL_CALL_TOKENS
        finish = "tool_calls"
        call_id = call.next_id("call_")
    else:
        text = generate_text(rng, ctl.output_words)
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
    completion_id = call.next_id("chatcmpl-")
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
        return Json(payload, {"x-request-id": call.request_id})

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
        for fragment in json_fragments(args_json):
            chunks.append(chunk({"tool_calls": [{"index": 0, "function": {"arguments": fragment}}]}))
    else:
        chunks.append(chunk({"role": "assistant", "content": "", "refusal": None}))
        chunks.extend(chunk({"content": piece}) for piece in text_deltas(text or ""))
    chunks.append(chunk({}, finish))
    if include_usage and ctl.usage != "missing":
        final = chunk({})
        final["choices"] = []
        final["usage"] = usage
        chunks.append(final)
    return Stream([sse.data_event(c) for c in chunks] + [sse.DONE])
