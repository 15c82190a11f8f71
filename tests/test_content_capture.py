"""Content capture, in pairs: each case `..._with_content` (OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT on)
and `..._no_content` (off: no prompt or completion text anywhere on the span), the way
opentelemetry-python-contrib's openai-v2 tests do. The real SDKs talk HTTP to the stub server; the n > 1 case
uses an httpx MockTransport, since the stub answers one choice.
"""

from __future__ import annotations

import json

import httpx
import openai
import pytest

TEST_LAYER = "unit"  # every test here is unit unless marked otherwise (conftest.py)

PROMPT = "what is the capital of france"
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}}}}]
ANTHROPIC_TOOLS = [{"name": "lookup_order", "description": "find an order",
                    "input_schema": {"type": "object", "properties": {"order_id": {"type": "string"}}}}]
CAPTURE = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
CONTENT_ATTRIBUTES = ("gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions")


def capture(otel_factory, on: bool):
    return otel_factory(**({CAPTURE: "true"} if on else {}))


def output_messages(span) -> list[dict]:
    return json.loads(span.attributes["gen_ai.output.messages"])


def assert_no_content(span, *texts: str) -> None:
    assert not any(name in span.attributes for name in CONTENT_ATTRIBUTES), dict(span.attributes)
    dumped = str(dict(span.attributes))
    for text in texts:
        assert text not in dumped


def messages_generator():
    yield {"role": "user", "content": PROMPT}


# --- plain chat ------------------------------------------------------------------------------------------
def test_chat_with_content(otel_factory, openai_client):
    otel = capture(otel_factory, True)
    result = openai_client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": PROMPT}])
    span = otel.only_span()
    assert json.loads(span.attributes["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": PROMPT}]}]
    assert output_messages(span) == [{"role": "assistant", "parts": [
        {"type": "text", "content": result.choices[0].message.content}]}]


def test_chat_no_content(otel_factory, openai_client):
    otel = capture(otel_factory, False)
    result = openai_client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": PROMPT}])
    assert_no_content(otel.only_span(), PROMPT, result.choices[0].message.content)


# --- streamed tool calls (delta.tool_calls) ----------------------------------------------------------------
def _stream_tool_call(openai_client):
    chunks = list(openai_client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": PROMPT}], tools=TOOLS, stream=True))
    calls = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or ())]
    arguments = "".join(tc.function.arguments or "" for tc in calls)
    return calls[0].id, calls[0].function.name, arguments


def test_streamed_tool_call_with_content(otel_factory, openai_client):
    otel = capture(otel_factory, True)
    call_id, name, arguments = _stream_tool_call(openai_client)
    (message,) = output_messages(otel.only_span())
    assert message == {"role": "assistant", "parts": [
        {"type": "tool_call", "id": call_id, "name": name, "arguments": json.loads(arguments)}]}


def test_streamed_tool_call_no_content(otel_factory, openai_client):
    otel = capture(otel_factory, False)
    _call_id, name, arguments = _stream_tool_call(openai_client)
    span = otel.only_span()
    assert_no_content(span, PROMPT, arguments)
    assert list(span.attributes["gen_ai.response.finish_reasons"]) == ["tool_calls"]


# --- n > 1: one output message per choice ------------------------------------------------------------------
def _two_choices(request: httpx.Request) -> httpx.Response:
    body = {"id": "chatcmpl-n2", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
            "choices": [{"index": i, "finish_reason": reason, "message": {"role": "assistant", "content": text}}
                        for i, (text, reason) in enumerate((("Paris.", "stop"), ("It is Paris", "length")))],
            "usage": {"prompt_tokens": 9, "completion_tokens": 5, "total_tokens": 14}}
    return httpx.Response(200, json=body)


def _n2_client():
    return openai.OpenAI(base_url="http://n2.test/v1", api_key="sk-test", max_retries=0,
                         http_client=httpx.Client(transport=httpx.MockTransport(_two_choices)))


def test_two_choices_with_content(otel_factory):
    otel = capture(otel_factory, True)
    _n2_client().chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": PROMPT}], n=2)
    span = otel.only_span()
    assert output_messages(span) == [
        {"role": "assistant", "parts": [{"type": "text", "content": "Paris."}]},
        {"role": "assistant", "parts": [{"type": "text", "content": "It is Paris"}]},
    ]
    assert list(span.attributes["gen_ai.response.finish_reasons"]) == ["stop", "length"]


def test_two_choices_no_content(otel_factory):
    otel = capture(otel_factory, False)
    _n2_client().chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": PROMPT}], n=2)
    span = otel.only_span()
    assert_no_content(span, PROMPT, "Paris")
    assert list(span.attributes["gen_ai.response.finish_reasons"]) == ["stop", "length"]


# --- messages as a one-shot iterable: the SDK still sends them ---------------------------------------------
def test_generator_messages_with_content(otel_factory, openai_client, stub):
    otel = capture(otel_factory, True)
    openai_client.chat.completions.create(model="gpt-4o-mini", messages=messages_generator())
    assert stub.requests[-1]["body"]["messages"] == [{"role": "user", "content": PROMPT}]
    assert PROMPT in otel.only_span().attributes["gen_ai.input.messages"]


def test_generator_messages_no_content(otel_factory, openai_client, stub):
    otel = capture(otel_factory, False)
    openai_client.chat.completions.create(model="gpt-4o-mini", messages=messages_generator())
    assert stub.requests[-1]["body"]["messages"] == [{"role": "user", "content": PROMPT}]
    assert_no_content(otel.only_span(), PROMPT)


@pytest.mark.parametrize("on", [True, False], ids=["with_content", "no_content"])
def test_anthropic_generator_messages_in_the_stream_helper(otel_factory, anthropic_client, stub, on):
    otel = capture(otel_factory, on)
    with anthropic_client.messages.stream(model="claude-haiku-4-5", max_tokens=64,
                                          messages=messages_generator()) as stream:
        stream.get_final_message()
    assert stub.requests[-1]["body"]["messages"] == [{"role": "user", "content": PROMPT}]
    span = otel.only_span()
    if on:
        assert PROMPT in span.attributes["gen_ai.input.messages"]
    else:
        assert_no_content(span, PROMPT)


# --- Anthropic streamed tool_use keeps its arguments (input_json_delta) ------------------------------------
def _anthropic_stream_tool_use(anthropic_client):
    events = list(anthropic_client.messages.create(
        model="claude-haiku-4-5", max_tokens=64, messages=[{"role": "user", "content": PROMPT}],
        tools=ANTHROPIC_TOOLS, stream=True))
    start = next(e for e in events if e.type == "content_block_start" and e.content_block.type == "tool_use")
    arguments = "".join(e.delta.partial_json for e in events
                        if e.type == "content_block_delta" and e.delta.type == "input_json_delta")
    return start.content_block, arguments


def test_anthropic_streamed_tool_use_with_content(otel_factory, anthropic_client):
    otel = capture(otel_factory, True)
    block, arguments = _anthropic_stream_tool_use(anthropic_client)
    (message,) = output_messages(otel.only_span())
    tool_calls = [p for p in message["parts"] if p["type"] == "tool_call"]
    assert tool_calls == [{"type": "tool_call", "id": block.id, "name": block.name,
                           "arguments": json.loads(arguments)}]


def test_anthropic_streamed_tool_use_no_content(otel_factory, anthropic_client):
    otel = capture(otel_factory, False)
    _block, arguments = _anthropic_stream_tool_use(anthropic_client)
    span = otel.only_span()
    assert_no_content(span, PROMPT, arguments)
    assert list(span.attributes["gen_ai.response.finish_reasons"]) == ["tool_use"]
