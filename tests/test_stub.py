"""The stub LLM server, exercised through the real openai and anthropic SDKs.

These tests pin down the wire behaviour the instrumentation tests rely on, so a
change in the stub (or an SDK upgrade that parses differently) shows up here
first rather than as a confusing instrumentation failure.
"""

from __future__ import annotations

import base64
import json
import os
import random
import signal
import struct
import subprocess
import sys
import time

import anthropic
import httpx
import openai
import pytest

from agentwatch.tooling.demo.stub import (
    DEFAULT_OUTPUT_WORDS,
    EMBEDDING_DIMENSIONS,
    PROMPT_OVERHEAD,
    TOOL_CALL_TOKENS,
    StubServer,
)

TEST_LAYER = "unit"  # every test here is unit unless marked otherwise (conftest.py)

CLAUDE = "claude-haiku-4-5"  # not on the SDK's deprecation list, so no warnings
CLAUDE_RESOLVED = "claude-haiku-4-5-20251001"
PROMPT = [{"role": "user", "content": "What is the weather in Paris today?"}]  # 7 words
PROMPT_TOKENS = 7 + PROMPT_OVERHEAD

CHAT_TOOLS = [{
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
            "required": ["city", "unit"],
        },
    },
}]
RESPONSES_TOOLS = [{"type": "function", **CHAT_TOOLS[0]["function"]}]
ANTHROPIC_TOOLS = [{
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": CHAT_TOOLS[0]["function"]["parameters"],
}]
EXPECTED_ARGS = {"city": "stub", "unit": "c"}


@pytest.fixture
def stub():
    with StubServer() as server:
        yield server


@pytest.fixture
def oai(stub):
    client = openai.OpenAI(base_url=stub.openai_base_url, api_key="test", max_retries=0)
    yield client
    client.close()


@pytest.fixture
def anth(stub):
    client = anthropic.Anthropic(base_url=stub.anthropic_base_url, api_key="test", max_retries=0)
    yield client
    client.close()


def _raw_sse(stub: StubServer, path: str, body: dict, headers: dict | None = None) -> list[str]:
    """The `data:` payloads exactly as sent, to check wire details the SDK hides."""
    with httpx.Client() as client:
        resp = client.post(stub.url + path, json=body, headers=headers or {})
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        return [line[len("data: "):] for line in resp.text.splitlines() if line.startswith("data: ")]


# ---------------------------------------------------------------------------
# OpenAI chat completions
# ---------------------------------------------------------------------------


def test_chat_completion_json(oai):
    resp = oai.chat.completions.create(model="gpt-4o-mini", messages=PROMPT)
    assert resp.id.startswith("chatcmpl-")
    assert resp.object == "chat.completion"
    assert resp.model == "gpt-4o-mini-2024-07-18"  # alias resolved like the real API
    choice = resp.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert len(choice.message.content.split()) == DEFAULT_OUTPUT_WORDS
    assert resp.usage.prompt_tokens == PROMPT_TOKENS
    assert resp.usage.completion_tokens == DEFAULT_OUTPUT_WORDS
    assert resp.usage.total_tokens == PROMPT_TOKENS + DEFAULT_OUTPUT_WORDS
    assert resp.usage.prompt_tokens_details.cached_tokens == 0
    assert resp.usage.completion_tokens_details.reasoning_tokens == 0


def test_unaliased_model_is_echoed(oai):
    assert oai.chat.completions.create(model="my-model", messages=PROMPT).model == "my-model"


def test_custom_model_aliases():
    with StubServer(model_aliases={"fast": "fast-2025-01-01"}) as server:
        client = openai.OpenAI(base_url=server.openai_base_url, api_key="test", max_retries=0)
        assert client.chat.completions.create(model="fast", messages=PROMPT).model == "fast-2025-01-01"
        assert client.chat.completions.create(model="gpt-4o-mini", messages=PROMPT).model == "gpt-4o-mini"


def test_answers_are_deterministic_per_seed():
    def answer(seed: int) -> str:
        with StubServer(seed=seed) as server:
            client = openai.OpenAI(base_url=server.openai_base_url, api_key="test", max_retries=0)
            return client.chat.completions.create(model="gpt-4o", messages=PROMPT).choices[0].message.content

    assert answer(1) == answer(1)
    assert answer(1) != answer(2)


def test_chat_stream_concatenates_to_content(oai):
    full = oai.chat.completions.create(model="gpt-4o-mini", messages=PROMPT).choices[0].message.content
    chunks = list(oai.chat.completions.create(model="gpt-4o-mini", messages=PROMPT, stream=True))
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(pieces) >= 3
    assert "".join(pieces) == full
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.object == "chat.completion.chunk" and c.model == "gpt-4o-mini-2024-07-18" for c in chunks)
    assert all(c.usage is None for c in chunks)  # no usage unless asked for


def test_chat_stream_include_usage(oai):
    chunks = list(oai.chat.completions.create(
        model="gpt-4o-mini", messages=PROMPT, stream=True, stream_options={"include_usage": True}
    ))
    last = chunks[-1]
    assert last.choices == []
    assert last.usage.prompt_tokens == PROMPT_TOKENS
    assert last.usage.completion_tokens == DEFAULT_OUTPUT_WORDS
    assert all(c.usage is None for c in chunks[:-1])
    assert chunks[-2].choices[0].finish_reason == "stop"


def test_chat_stream_usage_wire_format(stub):
    body = {"model": "gpt-4o-mini", "messages": PROMPT, "stream": True}
    plain = _raw_sse(stub, "/v1/chat/completions", body)
    assert plain[-1] == "[DONE]"
    assert all("usage" not in json.loads(d) for d in plain[:-1])

    asked = _raw_sse(stub, "/v1/chat/completions", {**body, "stream_options": {"include_usage": True}})
    chunks = [json.loads(d) for d in asked[:-1]]
    assert all("usage" in c and c["usage"] is None for c in chunks[:-1])  # OpenAI sends explicit nulls
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] == PROMPT_TOKENS + 12


def test_chat_stream_helper(oai):
    with oai.chat.completions.stream(
        model="gpt-4o-mini", messages=PROMPT, stream_options={"include_usage": True}
    ) as stream:
        final = stream.get_final_completion()
    assert len(final.choices[0].message.content.split()) == DEFAULT_OUTPUT_WORDS
    assert final.usage.total_tokens == PROMPT_TOKENS + DEFAULT_OUTPUT_WORDS


def test_chat_tool_call_then_text(oai):
    resp = oai.chat.completions.create(model="gpt-4o", messages=PROMPT, tools=CHAT_TOOLS)
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.id.startswith("call_")
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == EXPECTED_ARGS
    assert resp.usage.completion_tokens == TOOL_CALL_TOKENS

    follow_up = PROMPT + [
        {"role": "assistant", "tool_calls": [call.model_dump(exclude_none=True)]},
        {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
    ]
    resp2 = oai.chat.completions.create(model="gpt-4o", messages=follow_up, tools=CHAT_TOOLS)
    assert resp2.choices[0].finish_reason == "stop"
    assert resp2.choices[0].message.content
    assert not resp2.choices[0].message.tool_calls
    # The echoed arguments JSON (4 whitespace-separated words) and "sunny" are prompt text too.
    assert resp2.usage.prompt_tokens == PROMPT_TOKENS + 4 + 1


def test_chat_tool_choice_none_answers_text(oai):
    resp = oai.chat.completions.create(model="gpt-4o", messages=PROMPT, tools=CHAT_TOOLS, tool_choice="none")
    assert resp.choices[0].finish_reason == "stop"


def test_chat_stream_tool_call(oai):
    chunks = list(oai.chat.completions.create(model="gpt-4o", messages=PROMPT, tools=CHAT_TOOLS, stream=True))
    deltas = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert len(deltas) >= 2
    assert deltas[0].id.startswith("call_") and deltas[0].function.name == "get_weather"
    assert json.loads("".join(d.function.arguments or "" for d in deltas)) == EXPECTED_ARGS
    assert chunks[-1].choices[0].finish_reason == "tool_calls"

    with oai.chat.completions.stream(model="gpt-4o", messages=PROMPT, tools=CHAT_TOOLS) as stream:
        final = stream.get_final_completion()
    assert json.loads(final.choices[0].message.tool_calls[0].function.arguments) == EXPECTED_ARGS


async def test_async_chat_stream(stub):
    client = openai.AsyncOpenAI(base_url=stub.openai_base_url, api_key="test", max_retries=0)
    async with client:
        stream = await client.chat.completions.create(
            model="gpt-4o-mini", messages=PROMPT, stream=True, stream_options={"include_usage": True}
        )
        chunks = [c async for c in stream]
        resp = await client.chat.completions.create(model="gpt-4o-mini", messages=PROMPT)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == resp.choices[0].message.content
    assert chunks[-1].usage.completion_tokens == DEFAULT_OUTPUT_WORDS


# ---------------------------------------------------------------------------
# OpenAI Responses API
# ---------------------------------------------------------------------------


def test_responses_json(oai):
    resp = oai.responses.create(model="gpt-4o-mini", input="What is the weather in Paris?", instructions="Be brief")
    assert resp.id.startswith("resp_")
    assert resp.object == "response" and resp.status == "completed"
    assert resp.model == "gpt-4o-mini-2024-07-18"
    (item,) = resp.output
    assert item.type == "message" and item.content[0].type == "output_text"
    assert len(resp.output_text.split()) == DEFAULT_OUTPUT_WORDS
    expected_input = 6 + 2 + PROMPT_OVERHEAD
    assert resp.usage.input_tokens == expected_input
    assert resp.usage.output_tokens == DEFAULT_OUTPUT_WORDS
    assert resp.usage.total_tokens == expected_input + DEFAULT_OUTPUT_WORDS
    assert resp.usage.input_tokens_details.cached_tokens == 0
    assert resp.usage.output_tokens_details.reasoning_tokens == 0


def test_responses_stream_events(oai):
    full = oai.responses.create(model="gpt-4o-mini", input="hello").output_text
    events = list(oai.responses.create(model="gpt-4o-mini", input="hello", stream=True))
    types = [e.type for e in events]
    assert types[:4] == [
        "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
    ]
    assert types[-4:] == [
        "response.output_text.done", "response.content_part.done", "response.output_item.done", "response.completed",
    ]
    assert types.count("response.output_text.delta") == DEFAULT_OUTPUT_WORDS
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == full
    assert events[0].response.usage is None
    completed = events[-1].response
    assert completed.status == "completed" and completed.output_text == full
    assert completed.usage.input_tokens == 1 + PROMPT_OVERHEAD
    assert completed.usage.output_tokens == DEFAULT_OUTPUT_WORDS


def test_responses_stream_helper(oai):
    with oai.responses.stream(model="gpt-4o-mini", input="hello") as stream:
        text = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
        final = stream.get_final_response()
    assert text == final.output_text
    assert final.usage.total_tokens == 1 + PROMPT_OVERHEAD + DEFAULT_OUTPUT_WORDS


def test_responses_function_call(oai):
    resp = oai.responses.create(model="gpt-4o", input="weather in Paris?", tools=RESPONSES_TOOLS)
    (call,) = resp.output
    assert call.type == "function_call" and call.name == "get_weather"
    assert json.loads(call.arguments) == EXPECTED_ARGS
    assert resp.usage.output_tokens == TOOL_CALL_TOKENS

    with oai.responses.stream(model="gpt-4o", input="weather in Paris?", tools=RESPONSES_TOOLS) as stream:
        final = stream.get_final_response()
    assert json.loads(final.output[0].arguments) == EXPECTED_ARGS

    follow_up = [
        {"role": "user", "content": "weather in Paris?"},
        {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
        {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"},
    ]
    resp2 = oai.responses.create(model="gpt-4o", input=follow_up, tools=RESPONSES_TOOLS)
    assert resp2.output[0].type == "message" and resp2.output_text


# ---------------------------------------------------------------------------
# OpenAI embeddings
# ---------------------------------------------------------------------------


def test_embeddings_default_base64_and_float(stub, oai):
    resp = oai.embeddings.create(model="text-embedding-3-small", input=["hello world", "again"])
    # This SDK asks for base64 on the wire unless told otherwise, then decodes it.
    assert stub.requests[-1]["body"]["encoding_format"] == "base64"
    assert resp.object == "list" and resp.model == "text-embedding-3-small"
    assert [d.index for d in resp.data] == [0, 1]
    vec = resp.data[0].embedding
    assert len(vec) == EMBEDDING_DIMENSIONS and all(isinstance(v, float) for v in vec)
    assert abs(sum(v * v for v in vec) - 1.0) < 1e-5
    assert resp.usage.prompt_tokens == 3 and resp.usage.total_tokens == 3

    as_float = oai.embeddings.create(model="text-embedding-3-small", input=["hello world", "again"],
                                     encoding_format="float")
    assert as_float.data[0].embedding == vec

    raw = oai.embeddings.create(model="text-embedding-3-small", input="x", encoding_format="base64")
    decoded = struct.unpack(f"<{EMBEDDING_DIMENSIONS}f", base64.b64decode(raw.data[0].embedding))
    assert len(decoded) == EMBEDDING_DIMENSIONS


def test_embeddings_dimensions(oai):
    resp = oai.embeddings.create(model="text-embedding-3-small", input="x", dimensions=3)
    assert len(resp.data[0].embedding) == 3


# ---------------------------------------------------------------------------
# Anthropic messages
# ---------------------------------------------------------------------------


def test_anthropic_create(anth):
    msg = anth.messages.create(model=CLAUDE, max_tokens=100, system="Be brief", messages=PROMPT)
    assert msg.id.startswith("msg_")
    assert msg.type == "message" and msg.role == "assistant"
    assert msg.model == CLAUDE_RESOLVED
    assert msg.stop_reason == "end_turn"
    (block,) = msg.content
    assert block.type == "text" and len(block.text.split()) == DEFAULT_OUTPUT_WORDS
    assert msg.usage.input_tokens == PROMPT_TOKENS + 2
    assert msg.usage.output_tokens == DEFAULT_OUTPUT_WORDS
    assert msg.usage.cache_creation_input_tokens == 0
    assert msg.usage.cache_read_input_tokens == 0


def test_anthropic_tool_use_then_text(anth):
    msg = anth.messages.create(model=CLAUDE, max_tokens=100, messages=PROMPT, tools=ANTHROPIC_TOOLS)
    assert msg.stop_reason == "tool_use"
    (block,) = msg.content
    assert block.type == "tool_use" and block.name == "get_weather" and block.id.startswith("toolu_")
    assert block.input == EXPECTED_ARGS
    assert msg.usage.output_tokens == TOOL_CALL_TOKENS

    follow_up = PROMPT + [
        {"role": "assistant", "content": [block.model_dump(exclude_none=True)]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": block.id, "content": "sunny"}]},
    ]
    msg2 = anth.messages.create(model=CLAUDE, max_tokens=100, messages=follow_up, tools=ANTHROPIC_TOOLS)
    assert msg2.stop_reason == "end_turn" and msg2.content[0].type == "text"


def test_anthropic_raw_stream(anth):
    full = anth.messages.create(model=CLAUDE, max_tokens=100, messages=PROMPT).content[0].text
    events = list(anth.messages.create(model=CLAUDE, max_tokens=100, messages=PROMPT, stream=True))
    types = [e.type for e in events]
    assert types[0] == "message_start" and types[1] == "content_block_start"
    assert types[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert types.count("content_block_delta") == DEFAULT_OUTPUT_WORDS
    assert "".join(e.delta.text for e in events if e.type == "content_block_delta") == full
    start = events[0].message
    assert start.usage.input_tokens == PROMPT_TOKENS and start.usage.output_tokens == 1
    delta = events[-2]
    assert delta.delta.stop_reason == "end_turn"
    assert delta.usage.output_tokens == DEFAULT_OUTPUT_WORDS


def test_anthropic_raw_stream_wire_events(stub):
    body = {"model": CLAUDE, "max_tokens": 10, "messages": PROMPT, "stream": True}
    with httpx.Client() as client:
        text = client.post(stub.url + "/v1/messages", json=body).text
    names = [line[len("event: "):] for line in text.splitlines() if line.startswith("event: ")]
    assert names[:3] == ["message_start", "ping", "content_block_start"]
    assert names[-1] == "message_stop"


def test_anthropic_stream_helper(anth):
    with anth.messages.stream(model=CLAUDE, max_tokens=100, messages=PROMPT) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == final.content[0].text
    assert len(text.split()) == DEFAULT_OUTPUT_WORDS
    assert final.usage.input_tokens == PROMPT_TOKENS
    assert final.usage.output_tokens == DEFAULT_OUTPUT_WORDS
    assert final.stop_reason == "end_turn"


def test_anthropic_stream_tool_use(anth):
    with anth.messages.stream(model=CLAUDE, max_tokens=100, messages=PROMPT, tools=ANTHROPIC_TOOLS) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    assert final.content[0].type == "tool_use" and final.content[0].input == EXPECTED_ARGS
    assert final.usage.output_tokens == TOOL_CALL_TOKENS

    events = list(anth.messages.create(model=CLAUDE, max_tokens=100, messages=PROMPT, tools=ANTHROPIC_TOOLS,
                                       stream=True))
    partial = [e.delta.partial_json for e in events if e.type == "content_block_delta"]
    assert all(e.delta.type == "input_json_delta" for e in events if e.type == "content_block_delta")
    assert json.loads("".join(partial)) == EXPECTED_ARGS


async def test_async_anthropic_stream_helper(stub):
    client = anthropic.AsyncAnthropic(base_url=stub.anthropic_base_url, api_key="test", max_retries=0)
    async with client:
        async with client.messages.stream(model=CLAUDE, max_tokens=100, messages=PROMPT) as stream:
            text = "".join([t async for t in stream.text_stream])
            final = await stream.get_final_message()
    assert text == final.content[0].text
    assert final.usage.output_tokens == DEFAULT_OUTPUT_WORDS


def test_anthropic_count_tokens(anth):
    assert anth.messages.count_tokens(model=CLAUDE, messages=PROMPT).input_tokens == PROMPT_TOKENS


# ---------------------------------------------------------------------------
# x-stub-* controls
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "openai_error", "openai_type", "anthropic_error", "anthropic_type"),
    [
        (429, openai.RateLimitError, "requests", anthropic.RateLimitError, "rate_limit_error"),
        (500, openai.InternalServerError, "server_error", anthropic.InternalServerError, "api_error"),
        (400, openai.BadRequestError, "invalid_request_error", anthropic.BadRequestError, "invalid_request_error"),
        (401, openai.AuthenticationError, "invalid_request_error", anthropic.AuthenticationError,
         "authentication_error"),
        (529, openai.InternalServerError, "server_error", anthropic.OverloadedError, "overloaded_error"),
    ],
)
def test_forced_status(oai, anth, status, openai_error, openai_type, anthropic_error, anthropic_type):
    headers = {"x-stub-status": str(status)}
    with pytest.raises(openai_error) as oe:
        oai.chat.completions.create(model="gpt-4o", messages=PROMPT, extra_headers=headers)
    assert oe.value.status_code == status
    assert oe.value.type == openai_type and oe.value.body["message"]  # the SDK unwraps {"error": {...}}
    with pytest.raises(anthropic_error) as ae:
        anth.messages.create(model=CLAUDE, max_tokens=10, messages=PROMPT, extra_headers=headers)
    assert ae.value.status_code == status
    assert ae.value.body["type"] == "error" and ae.value.body["error"]["type"] == anthropic_type
    if status == 429:
        assert oe.value.response.headers["retry-after"] == "0"
        assert ae.value.response.headers["retry-after"] == "0"


def test_forced_status_on_streams(oai, anth):
    headers = {"x-stub-status": "429"}
    with pytest.raises(openai.RateLimitError):
        oai.chat.completions.create(model="gpt-4o", messages=PROMPT, stream=True, extra_headers=headers)
    with pytest.raises(openai.RateLimitError):
        oai.responses.create(model="gpt-4o", input="hi", stream=True, extra_headers=headers)
    with pytest.raises(anthropic.RateLimitError):
        with anth.messages.stream(model=CLAUDE, max_tokens=10, messages=PROMPT, extra_headers=headers) as s:
            s.get_final_message()


def test_retries_follow_retry_after(stub):
    # The SDKs ignore `retry-after: 0`, so fast retry tests set a small positive value.
    headers = {"x-stub-status": "429", "x-stub-retry-after": "0.01"}
    client = openai.OpenAI(base_url=stub.openai_base_url, api_key="test", max_retries=2)
    start = time.monotonic()
    with pytest.raises(openai.RateLimitError) as err:
        client.chat.completions.create(model="gpt-4o", messages=PROMPT, extra_headers=headers)
    assert err.value.response.headers["retry-after"] == "0.01"
    aclient = anthropic.Anthropic(base_url=stub.anthropic_base_url, api_key="test", max_retries=2)
    with pytest.raises(anthropic.InternalServerError):
        aclient.messages.create(model=CLAUDE, max_tokens=10, messages=PROMPT,
                                extra_headers={**headers, "x-stub-status": "503"})
    assert time.monotonic() - start < 0.4
    assert [r["headers"]["x-stainless-retry-count"] for r in stub.requests] == ["0", "1", "2"] * 2


@pytest.mark.filterwarnings("ignore::UserWarning")  # pydantic warns when re-serialising garbage
def test_usage_missing_and_malformed_openai(oai):
    for mode in ("missing", "malformed"):
        h = {"x-stub-usage": mode}
        chat = oai.chat.completions.create(model="gpt-4o", messages=PROMPT, extra_headers=h)
        chunks = list(oai.chat.completions.create(model="gpt-4o", messages=PROMPT, stream=True,
                                                  stream_options={"include_usage": True}, extra_headers=h))
        resp = oai.responses.create(model="gpt-4o", input="hi", extra_headers=h)
        events = list(oai.responses.create(model="gpt-4o", input="hi", stream=True, extra_headers=h))
        with oai.responses.stream(model="gpt-4o", input="hi", extra_headers=h) as stream:
            helper_usage = stream.get_final_response().usage
        emb = oai.embeddings.create(model="text-embedding-3-small", input="hi", extra_headers=h)
        assert chat.choices[0].message.content  # the rest of the response is intact
        if mode == "missing":
            assert chat.usage is None
            assert all(c.usage is None for c in chunks) and chunks[-1].choices  # no usage chunk at all
            assert resp.usage is None and events[-1].response.usage is None and helper_usage is None
            assert emb.usage is None
        else:
            assert chat.usage.prompt_tokens == "abc" and chat.usage.completion_tokens == -5
            assert chat.usage.prompt_tokens_details == "unknown"
            assert chunks[-1].usage.prompt_tokens == "abc"
            assert resp.usage.input_tokens == "abc" and resp.usage.output_tokens == -5
            assert events[-1].response.usage.input_tokens_details == "unknown"
            assert helper_usage.output_tokens == -5
            assert emb.usage.prompt_tokens == "abc"


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_usage_missing_and_malformed_anthropic(anth):
    for mode in ("missing", "malformed"):
        h = {"x-stub-usage": mode}
        msg = anth.messages.create(model=CLAUDE, max_tokens=10, messages=PROMPT, extra_headers=h)
        events = list(anth.messages.create(model=CLAUDE, max_tokens=10, messages=PROMPT, stream=True,
                                           extra_headers=h))
        assert msg.content[0].text
        if mode == "missing":
            # Parsed without validation: the required `usage` attribute is simply absent.
            assert getattr(msg, "usage", None) is None
            assert getattr(events[0].message, "usage", None) is None
            assert getattr(events[-2], "usage", None) is None
            # The SDK's own stream helper dereferences message_delta.usage unconditionally.
            with pytest.raises(AttributeError):
                with anth.messages.stream(model=CLAUDE, max_tokens=10, messages=PROMPT, extra_headers=h) as s:
                    s.get_final_message()
        else:
            assert msg.usage.input_tokens == "abc" and msg.usage.output_tokens == -5
            assert events[0].message.usage.cache_read_input_tokens == "many"
            assert events[-2].usage.output_tokens == -5
            with anth.messages.stream(model=CLAUDE, max_tokens=10, messages=PROMPT, extra_headers=h) as s:
                assert s.get_final_message().usage.output_tokens == -5


def test_break_after_openai(oai):
    received = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in oai.chat.completions.create(model="gpt-4o", messages=PROMPT, stream=True,
                                                 extra_headers={"x-stub-break-after": "3"}):
            received.append(chunk)
    assert len(received) == 3
    received = []
    with pytest.raises(openai.APIConnectionError):
        for event in oai.responses.create(model="gpt-4o", input="hi", stream=True,
                                          extra_headers={"x-stub-break-after": "5"}):
            received.append(event)
    assert len(received) == 5
    # Non-streamed requests break before any response.
    with pytest.raises(openai.APIConnectionError):
        oai.chat.completions.create(model="gpt-4o", messages=PROMPT, extra_headers={"x-stub-break-after": "0"})
    # The server keeps serving afterwards.
    assert oai.chat.completions.create(model="gpt-4o", messages=PROMPT).choices


def test_break_after_anthropic(anth):
    received = []
    # Mid-stream transport errors are not wrapped by this SDK: the raw httpx2 error escapes.
    with pytest.raises(Exception) as err:
        for event in anth.messages.create(model=CLAUDE, max_tokens=10, messages=PROMPT, stream=True,
                                          extra_headers={"x-stub-break-after": "4"}):
            received.append(event)
    assert "RemoteProtocolError" in type(err.value).__name__ or isinstance(err.value, anthropic.APIError)
    assert [e.type for e in received] == ["message_start", "content_block_start", "content_block_delta"]  # +ping
    with pytest.raises(Exception):
        with anth.messages.stream(model=CLAUDE, max_tokens=10, messages=PROMPT,
                                  extra_headers={"x-stub-break-after": "4"}) as s:
            s.get_final_message()


def test_delay_and_timeout(oai, anth):
    start = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        oai.chat.completions.create(model="gpt-4o", messages=PROMPT, extra_headers={"x-stub-delay": "2"},
                                    timeout=0.2)
    with pytest.raises(anthropic.APITimeoutError):
        anth.messages.create(model=CLAUDE, max_tokens=10, messages=PROMPT, extra_headers={"x-stub-delay": "2"},
                             timeout=0.2)
    assert time.monotonic() - start < 1.5
    t0 = time.monotonic()
    oai.chat.completions.create(model="gpt-4o", messages=PROMPT, extra_headers={"x-stub-delay": "0.2"})
    assert time.monotonic() - t0 >= 0.2


def test_token_count_controls(oai, anth):
    h = {"x-stub-cached-tokens": "100", "x-stub-reasoning-tokens": "7", "x-stub-cache-write-tokens": "20",
         "x-stub-output-words": "5"}
    chat = oai.chat.completions.create(model="gpt-4o", messages=PROMPT, extra_headers=h)
    assert len(chat.choices[0].message.content.split()) == 5
    # OpenAI: prompt_tokens includes cached (and cache-write); completion includes reasoning.
    assert chat.usage.prompt_tokens == PROMPT_TOKENS + 100 + 20
    assert chat.usage.prompt_tokens_details.cached_tokens == 100
    assert chat.usage.prompt_tokens_details.cache_write_tokens == 20
    assert chat.usage.completion_tokens == 5 + 7
    assert chat.usage.completion_tokens_details.reasoning_tokens == 7

    resp = oai.responses.create(model="gpt-4o", input="hi", extra_headers=h)
    assert resp.usage.input_tokens == 1 + PROMPT_OVERHEAD + 120
    assert resp.usage.input_tokens_details.cached_tokens == 100
    assert resp.usage.input_tokens_details.cache_write_tokens == 20
    assert resp.usage.output_tokens == 12 and resp.usage.output_tokens_details.reasoning_tokens == 7

    # Anthropic: input_tokens excludes cache reads/writes, which are reported separately.
    msg = anth.messages.create(model=CLAUDE, max_tokens=10, messages=PROMPT, extra_headers=h)
    assert msg.usage.input_tokens == PROMPT_TOKENS
    assert msg.usage.cache_read_input_tokens == 100
    assert msg.usage.cache_creation_input_tokens == 20
    assert msg.usage.output_tokens == 12
    assert msg.usage.output_tokens_details.thinking_tokens == 7
    with anth.messages.stream(model=CLAUDE, max_tokens=10, messages=PROMPT, extra_headers=h) as s:
        final = s.get_final_message()
    assert (final.usage.input_tokens, final.usage.cache_read_input_tokens,
            final.usage.cache_creation_input_tokens, final.usage.output_tokens) == (PROMPT_TOKENS, 100, 20, 12)


def test_server_default_cached_tokens():
    with StubServer(cached_tokens=4) as server:
        client = openai.OpenAI(base_url=server.openai_base_url, api_key="test", max_retries=0)
        usage = client.chat.completions.create(model="gpt-4o", messages=PROMPT).usage
        assert usage.prompt_tokens_details.cached_tokens == 4
        assert usage.prompt_tokens == PROMPT_TOKENS + 4
        usage = client.chat.completions.create(model="gpt-4o", messages=PROMPT,
                                               extra_headers={"x-stub-cached-tokens": "0"}).usage
        assert usage.prompt_tokens_details.cached_tokens == 0


def test_invalid_control_header_is_400(oai):
    with pytest.raises(openai.BadRequestError, match="x-stub-output-words"):
        oai.chat.completions.create(model="gpt-4o", messages=PROMPT, extra_headers={"x-stub-output-words": "lots"})


def test_failure_rate_is_deterministic():
    def pattern(seed: int) -> list[bool]:
        with StubServer(failure_rate=0.5, seed=seed) as server:
            client = openai.OpenAI(base_url=server.openai_base_url, api_key="test", max_retries=0)
            outcome = []
            for _ in range(16):
                try:
                    client.chat.completions.create(model="gpt-4o", messages=PROMPT)
                    outcome.append(True)
                except openai.InternalServerError:
                    outcome.append(False)
            return outcome

    first = pattern(7)
    assert first == pattern(7)
    assert True in first and False in first
    rng = random.Random(7)
    assert first == [rng.random() >= 0.5 for _ in range(16)]


def test_latency_and_chunk_delay():
    with StubServer(latency=0.1, chunk_delay=0.02) as server:
        client = openai.OpenAI(base_url=server.openai_base_url, api_key="test", max_retries=0)
        t0 = time.monotonic()
        client.chat.completions.create(model="gpt-4o", messages=PROMPT)
        assert time.monotonic() - t0 >= 0.1
        t0 = time.monotonic()
        stream = client.chat.completions.create(model="gpt-4o", messages=PROMPT, stream=True)
        first = next(iter(stream))
        first_at = time.monotonic() - t0
        rest = list(stream)
        total = time.monotonic() - t0
        assert first.choices[0].delta.role == "assistant"
        assert total - first_at >= 0.02 * (len(rest) - 1)


# ---------------------------------------------------------------------------
# Recording, robustness, CLI
# ---------------------------------------------------------------------------


def test_recorded_requests(stub, oai, anth):
    oai.chat.completions.create(model="gpt-4o", messages=PROMPT, extra_headers={"x-stub-output-words": "3"})
    anth.messages.create(model=CLAUDE, max_tokens=10, messages=PROMPT)
    chat, msg = stub.requests
    assert chat["path"] == "/v1/chat/completions" and chat["method"] == "POST"
    assert chat["body"] == {"model": "gpt-4o", "messages": PROMPT}
    assert chat["headers"]["x-stub-output-words"] == "3"
    assert chat["headers"]["authorization"] == "[redacted]"
    assert msg["path"] == "/v1/messages" and msg["body"]["max_tokens"] == 10
    # anthropic 2.x sends the key as `Authorization: Bearer`, not `x-api-key`.
    assert msg["headers"]["authorization"] == "[redacted]"
    assert "anthropic-version" in msg["headers"]

    with httpx.Client(base_url=stub.url) as client:
        assert client.get("/healthz").status_code == 200
        listed = client.get("/_stub/requests").json()
        assert [r["path"] for r in listed] == ["/v1/chat/completions", "/v1/messages"]
        assert client.delete("/_stub/requests").json() == {"cleared": 2}
        assert client.get("/_stub/requests").json() == []
    assert stub.requests == []


def test_recorded_requests_are_bounded(stub):
    for i in range(1005):
        stub._record("POST", "/v1/x", {}, {"i": i})
    recorded = stub.requests
    assert len(recorded) == 1000 and recorded[0]["body"] == {"i": 5}


def test_malformed_json_is_400(stub, oai):
    with httpx.Client(base_url=stub.url) as client:
        resp = client.post("/v1/chat/completions", content=b"{not json",
                           headers={"content-type": "application/json"})
        assert resp.status_code == 400
        assert resp.json()["error"]["type"] == "invalid_request_error"
        resp = client.post("/v1/messages", content=b"[1, 2")
        assert resp.status_code == 400
        assert resp.json()["type"] == "error" and resp.json()["error"]["type"] == "invalid_request_error"
        assert client.post("/v1/chat/completions", json=[1, 2]).status_code == 400
        assert client.post("/v1/chat/completions", json={"model": "gpt-4o"}).status_code == 400
        assert client.post("/v1/unknown", json={}).status_code == 404
    assert stub.requests[0]["body"] == "{not json"
    assert oai.chat.completions.create(model="gpt-4o", messages=PROMPT).choices


def test_keep_alive_connection_reuse(stub):
    # Many requests, streamed and not, over one pooled connection must all frame correctly.
    client = openai.OpenAI(base_url=stub.openai_base_url, api_key="test", max_retries=0)
    for _ in range(5):
        assert client.chat.completions.create(model="gpt-4o", messages=PROMPT).choices
        assert list(client.chat.completions.create(model="gpt-4o", messages=PROMPT, stream=True))
    ports = {r["headers"]["host"] for r in stub.requests}
    assert len(ports) == 1


@pytest.mark.e2e
def test_cli_serves_until_sigterm():
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with subprocess.Popen(
        [sys.executable, "-m", "agentwatch.tooling.demo.stub", "--port", "0", "--seed", "3"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    ) as proc:
        try:
            line = proc.stdout.readline()
            assert "http://127.0.0.1:" in line, line + proc.stderr.read()
            url = line.split()[-1]
            assert httpx.get(url + "/healthz").json() == {"status": "ok"}
            with openai.OpenAI(base_url=url + "/v1", api_key="test", max_retries=0) as client:
                assert client.chat.completions.create(model="gpt-4o", messages=PROMPT).choices
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=5) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
