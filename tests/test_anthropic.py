"""The Anthropic instrumentor against the real `anthropic` SDK talking HTTP to the stub server."""

from __future__ import annotations

import gc

import anthropic
import pytest
from opentelemetry.trace import SpanKind, StatusCode

from agentwatch.pricing import PriceBook, TokenUsage

TEST_LAYER = "unit"  # every test here is unit unless marked otherwise (conftest.py)

MODEL = "claude-haiku-4-5"
MESSAGES = [{"role": "user", "content": "summarise the quarterly report please"}]


def _priced(span) -> float | None:
    a = span.attributes
    usage = TokenUsage(
        input_tokens=a["gen_ai.usage.input_tokens"], output_tokens=a["gen_ai.usage.output_tokens"],
        cache_read_tokens=a.get("gen_ai.usage.cache_read.input_tokens", 0),
        cache_write_tokens=a.get("gen_ai.usage.cache_write.input_tokens", 0),
    )
    return PriceBook().cost("anthropic", a["gen_ai.response.model"], usage)


def test_messages_create(otel, anthropic_client):
    message = anthropic_client.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)
    assert type(message) is anthropic.types.Message
    span = otel.only_span()
    a = span.attributes
    assert span.name == f"chat {MODEL}" and span.kind is SpanKind.CLIENT
    assert a["gen_ai.provider.name"] == "anthropic"
    assert a["gen_ai.request.max_tokens"] == 64
    assert a["gen_ai.response.id"] == message.id
    assert list(a["gen_ai.response.finish_reasons"]) == [message.stop_reason]
    assert a["gen_ai.usage.input_tokens"] == message.usage.input_tokens
    assert a["gen_ai.usage.output_tokens"] == message.usage.output_tokens
    assert a["agentwatch.usage.cost_usd"] == pytest.approx(_priced(span), rel=1e-12)
    (record,) = otel.log_records()
    assert record.trace_id == span.context.trace_id


def test_cache_tokens_count_as_input_and_are_priced_apart(otel, anthropic_client):
    message = anthropic_client.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES, extra_headers={
        "x-stub-cached-tokens": "1000", "x-stub-cache-write-tokens": "200"})
    a = otel.only_span().attributes
    u = message.usage
    assert a["gen_ai.usage.cache_read.input_tokens"] == u.cache_read_input_tokens == 1000
    assert a["gen_ai.usage.cache_write.input_tokens"] == u.cache_creation_input_tokens == 200
    # semconv input_tokens includes the cached parts; Anthropic's own field does not
    assert a["gen_ai.usage.input_tokens"] == u.input_tokens + 1200
    cost = a["agentwatch.usage.cost_usd"]
    assert cost == pytest.approx(_priced(otel.only_span()), rel=1e-12)
    all_uncached = PriceBook().cost("anthropic", MODEL, TokenUsage(a["gen_ai.usage.input_tokens"],
                                                                   a["gen_ai.usage.output_tokens"]))
    assert cost != pytest.approx(all_uncached)


async def test_async_create(otel, async_anthropic_client):
    message = await async_anthropic_client.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)
    assert otel.only_span().attributes["gen_ai.response.id"] == message.id


def test_create_stream_true(otel, anthropic_client):
    stream = anthropic_client.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES, stream=True)
    assert isinstance(stream, anthropic.Stream)
    events = list(stream)
    final = [e for e in events if e.type == "message_delta"][-1]
    span = otel.only_span()
    assert span.attributes["gen_ai.usage.output_tokens"] == final.usage.output_tokens
    assert span.attributes["agentwatch.stream.outcome"] == "completed"
    assert span.attributes["agentwatch.usage.cost_usd"] > 0
    assert otel.metric_points("gen_ai.client.operation.time_to_first_chunk")[0].count == 1


async def test_async_create_stream_true(otel, async_anthropic_client):
    stream = await async_anthropic_client.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES,
                                                          stream=True)
    async for _ in stream:
        pass
    assert otel.only_span().attributes["gen_ai.usage.input_tokens"] > 0


def test_stream_helper_final_message(otel, anthropic_client):
    with anthropic_client.messages.stream(model=MODEL, max_tokens=64, messages=MESSAGES) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text
    span = otel.only_span()
    assert span.attributes["gen_ai.response.id"] == final.id
    assert span.attributes["gen_ai.usage.output_tokens"] == final.usage.output_tokens
    assert span.attributes["agentwatch.stream.outcome"] == "completed"


async def test_async_stream_helper(otel, async_anthropic_client):
    async with async_anthropic_client.messages.stream(model=MODEL, max_tokens=64, messages=MESSAGES) as stream:
        final = await stream.get_final_message()
    span = otel.only_span()
    assert span.attributes["gen_ai.usage.output_tokens"] == final.usage.output_tokens


def test_stream_helper_left_early_ends_span_once(otel, anthropic_client):
    with anthropic_client.messages.stream(model=MODEL, max_tokens=64, messages=MESSAGES) as stream:
        for _ in stream:
            break
    gc.collect()
    span = otel.only_span()
    assert span.attributes["agentwatch.stream.outcome"] == "closed"
    assert span.attributes["agentwatch.usage.unavailable"] is True


def test_stream_broken_by_server(otel, anthropic_client):
    with pytest.raises(Exception):
        for _ in anthropic_client.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES, stream=True,
                                                  extra_headers={"x-stub-break-after": "2"}):
            pass
    span = otel.only_span()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["agentwatch.usage.unavailable"] is True


def test_api_error(otel, anthropic_client):
    with pytest.raises(anthropic.InternalServerError):
        anthropic_client.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES,
                                         extra_headers={"x-stub-status": "500"})
    span = otel.only_span()
    assert span.attributes["error.type"] == "InternalServerError"
    assert span.status.status_code is StatusCode.ERROR


def test_tool_use(otel, anthropic_client):
    tools = [{"name": "lookup_order", "description": "find an order",
              "input_schema": {"type": "object", "properties": {"order_id": {"type": "string"}}}}]
    message = anthropic_client.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES, tools=tools)
    assert message.stop_reason == "tool_use"
    assert list(otel.only_span().attributes["gen_ai.response.finish_reasons"]) == ["tool_use"]
