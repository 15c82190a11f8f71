"""OpenAI responses, `POST /v1/responses`: a message or a function call, whole or as the typed event stream."""

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


def _tool(body: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """Which function to call, or None to answer with text (e.g. after a function call's output)."""
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
    forced = forced_tool_name(choice)
    fn = next((t for t in tools if t["name"] == forced), tools[0])
    return fn["name"], plausible_arguments(fn.get("parameters"))


def _output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def create(call: Call) -> Answer:
    body, ctl = call.body, call.ctl
    model = call.model()
    tool = _tool(body)
    rng = call.rng("model", "input", "instructions")
    prompt = count_words(body.get("input"), body.get("instructions")) + PROMPT_OVERHEAD
    prompt += ctl.cached + ctl.cache_write
    response_id = call.next_id("resp_")
    created = int(time.time())
    if tool is not None:
        name, arguments = tool
        args_json = json.dumps(arguments)
        item_id = call.next_id("fc_")
        call_id = call.next_id("call_")
        visible = TOOL_CALL_TOKENS
        text = ""

        def item(status: str, args: str) -> dict[str, Any]:
            return {"type": "function_call", "id": item_id, "call_id": call_id, "name": name,
                    "arguments": args, "status": status}
    else:
        item_id = call.next_id("msg_")
        text = generate_text(rng, ctl.output_words)
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
        return Json(response("completed", [done_item], True), {"x-request-id": call.request_id})

    events: list[bytes] = []

    def emit(kind: str, **fields: Any) -> None:
        events.append(sse.typed_event(kind, {"type": kind, "sequence_number": len(events), **fields}))

    emit("response.created", response=response("in_progress", [], False))
    emit("response.in_progress", response=response("in_progress", [], False))
    if tool is not None:
        emit("response.output_item.added", output_index=0, item=item("in_progress", ""))
        for fragment in json_fragments(args_json):
            emit("response.function_call_arguments.delta", item_id=item_id, output_index=0, delta=fragment)
        emit("response.function_call_arguments.done", item_id=item_id, output_index=0,
             name=name, arguments=args_json)
    else:
        emit("response.output_item.added", output_index=0, item=item("in_progress", None))
        emit("response.content_part.added", item_id=item_id, output_index=0, content_index=0,
             part=_output_text(""))
        for piece in text_deltas(text):
            emit("response.output_text.delta", item_id=item_id, output_index=0, content_index=0,
                 delta=piece, logprobs=[])
        emit("response.output_text.done", item_id=item_id, output_index=0, content_index=0,
             text=text, logprobs=[])
        emit("response.content_part.done", item_id=item_id, output_index=0, content_index=0,
             part=_output_text(text))
    emit("response.output_item.done", output_index=0, item=done_item)
    emit("response.completed", response=response("completed", [done_item], True))
    return Stream(events)
