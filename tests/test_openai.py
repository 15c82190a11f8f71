"""The OpenAI instrumentor against the real `openai` SDK talking HTTP to the stub server."""

from __future__ import annotations

import asyncio
import gc

import openai
import pytest
from opentelemetry.trace import SpanKind, StatusCode

from agentwatch.pricing import PriceBook, TokenUsage

TEST_LAYER = "unit"  # every test here is unit unless marked otherwise (conftest.py)

MESSAGES = [{"role": "user", "content": "what is the capital of france"}]
PROMPT_WORDS = "capital of france"


def _usage_of(span):
    a = span.attributes
    return TokenUsage(
        input_tokens=a["gen_ai.usage.input_tokens"],
        output_tokens=a["gen_ai.usage.output_tokens"],
        cache_read_tokens=a.get("gen_ai.usage.cache_read.input_tokens", 0),
        reasoning_tokens=a.get("gen_ai.usage.reasoning.output_tokens", 0),
    )


def test_chat_span_metrics_log_and_cost(otel, openai_client, stub):
    result = openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=50,
                                                   temperature=0.2)
    assert type(result) is openai.types.chat.ChatCompletion

    span = otel.only_span()
    a = span.attributes
    assert span.name == "chat gpt-4o-mini"
    assert span.kind is SpanKind.CLIENT
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.request.model"] == "gpt-4o-mini"
    assert a["gen_ai.request.max_tokens"] == 50
    assert a["gen_ai.request.temperature"] == 0.2
    assert a["gen_ai.response.model"] == result.model
    assert a["gen_ai.response.id"] == result.id
    assert list(a["gen_ai.response.finish_reasons"]) == ["stop"]
    assert a["gen_ai.usage.input_tokens"] == result.usage.prompt_tokens
    assert a["gen_ai.usage.output_tokens"] == result.usage.completion_tokens
    assert a["server.address"] == "127.0.0.1"
    assert a["server.port"] == stub.port if hasattr(stub, "port") else a["server.port"] > 0
    expected = PriceBook().cost("openai", result.model, _usage_of(span))
    assert expected is not None and expected > 0
    assert a["agentwatch.usage.cost_usd"] == pytest.approx(expected, rel=1e-12)
    assert "agentwatch.usage.cost_unknown" not in a
    assert span.status.status_code is StatusCode.UNSET

    (duration,) = otel.metric_points("gen_ai.client.operation.duration")
    assert duration.count == 1
    assert dict(duration.attributes) == {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini", "gen_ai.response.model": result.model,
        "server.address": "127.0.0.1", "server.port": a["server.port"],
    }
    assert list(duration.explicit_bounds)[:3] == [0.01, 0.02, 0.04]
    tokens = {p.attributes["gen_ai.token.type"]: p for p in otel.metric_points("gen_ai.client.token.usage")}
    assert tokens["input"].sum == result.usage.prompt_tokens
    assert tokens["output"].sum == result.usage.completion_tokens
    (cost,) = otel.metric_points("agentwatch.llm.cost")
    assert cost.value == pytest.approx(expected, rel=1e-12)
    assert cost.attributes["gen_ai.provider.name"] == "openai"
    assert not otel.metric_points("gen_ai.client.operation.time_to_first_chunk")

    (record,) = otel.log_records()
    assert record.event_name == "gen_ai.client.inference"
    assert record.trace_id == span.context.trace_id and record.span_id == span.context.span_id
    assert record.attributes["event.outcome"] == "success"
    assert record.attributes["gen_ai.usage.input_tokens"] == result.usage.prompt_tokens
    assert record.attributes["agentwatch.usage.cost_usd"] == pytest.approx(expected)
    assert PROMPT_WORDS not in str(record.body) + str(dict(record.attributes))


def test_no_prompt_or_completion_text_by_default(otel, openai_client):
    result = openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    span = otel.only_span()
    dumped = str(dict(span.attributes))
    assert PROMPT_WORDS not in dumped
    assert result.choices[0].message.content not in dumped
    assert "gen_ai.input.messages" not in span.attributes


def test_content_capture_on_and_truncated(otel_factory, openai_client):
    otel = otel_factory(OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="true", AGENTWATCH_CONTENT_MAX_LENGTH="70")
    openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    a = otel.only_span().attributes
    assert a["gen_ai.input.messages"].startswith('[{"role": "user", "parts": [{"type": "text", "content": "what is the')
    assert a["gen_ai.input.messages"].endswith("…[truncated]")
    assert len(a["gen_ai.input.messages"]) == 70 + len("…[truncated]")
    assert a["gen_ai.output.messages"].startswith('[{"role": "assistant"')


async def test_chat_async(otel, async_openai_client):
    result = await async_openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    span = otel.only_span()
    assert span.attributes["gen_ai.response.id"] == result.id
    assert span.attributes["gen_ai.usage.output_tokens"] == result.usage.completion_tokens


def test_stream_iterated_without_usage_marks_usage_unavailable(otel, openai_client, stub):
    stream = openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    assert isinstance(stream, openai.Stream)
    assert stream.response.status_code == 200
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text
    span = otel.only_span()
    a = span.attributes
    assert a["gen_ai.request.stream"] is True
    assert a["agentwatch.stream.outcome"] == "completed"
    assert a["agentwatch.usage.unavailable"] is True
    assert "gen_ai.usage.input_tokens" not in a and "agentwatch.usage.cost_usd" not in a
    assert not otel.metric_points("gen_ai.client.token.usage")
    assert not otel.metric_points("agentwatch.llm.cost")
    (ttfc,) = otel.metric_points("gen_ai.client.operation.time_to_first_chunk")
    assert ttfc.count == 1
    # the request went out unchanged
    assert "stream_options" not in stub.requests[-1]["body"]


def test_stream_with_usage_and_context_manager(otel, openai_client):
    with openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True,
                                               stream_options={"include_usage": True}) as stream:
        chunks = list(stream)
    assert chunks[-1].usage is not None and chunks[-1].choices == []
    span = otel.only_span()
    assert span.attributes["gen_ai.usage.output_tokens"] == chunks[-1].usage.completion_tokens
    assert span.attributes["agentwatch.usage.cost_usd"] > 0
    assert span.attributes["agentwatch.stream.outcome"] == "completed"


def test_stream_usage_injection_is_opt_in_and_invisible(otel_factory, openai_client, stub):
    otel = otel_factory(AGENTWATCH_STREAM_USAGE="inject")
    chunks = list(openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
    assert stub.requests[-1]["body"]["stream_options"] == {"include_usage": True}
    assert all(c.choices for c in chunks), "the injected usage-only chunk must not reach user code"
    span = otel.only_span()
    assert span.attributes["gen_ai.usage.input_tokens"] > 0
    assert span.attributes["agentwatch.stream.usage_injected"] is True
    # a user who asked for usage themselves still gets their usage chunk
    chunks = list(openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True,
                                                        stream_options={"include_usage": True}))
    assert chunks[-1].usage is not None


def test_stream_closed_early_ends_span_once(otel, openai_client):
    stream = openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    next(iter(stream))
    stream.close()
    stream.close()
    span = otel.only_span()
    assert span.attributes["agentwatch.stream.outcome"] == "closed"
    assert span.attributes["agentwatch.usage.unavailable"] is True
    assert len(otel.metric_points("gen_ai.client.operation.duration")) == 1
    assert otel.metric_points("gen_ai.client.operation.duration")[0].count == 1


def test_stream_break_in_context_manager(otel, openai_client):
    with openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True) as stream:
        for _ in stream:
            break
    span = otel.only_span()
    assert span.attributes["agentwatch.stream.outcome"] == "closed"


def test_abandoned_stream_ends_span_when_collected(otel, openai_client):
    stream = openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    next(iter(stream))
    assert otel.inference_spans() == []
    del stream
    gc.collect()
    span = otel.only_span()
    assert span.attributes["agentwatch.stream.outcome"] == "abandoned"
    assert span.end_time >= span.start_time


def test_stream_broken_by_server_records_error(otel, openai_client):
    stream = openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True,
                                                   extra_headers={"x-stub-break-after": "2"})
    with pytest.raises(Exception) as raised:
        for _ in stream:
            pass
    span = otel.only_span()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == type(raised.value).__qualname__
    assert span.attributes["agentwatch.stream.outcome"] == "error"
    (duration,) = otel.metric_points("gen_ai.client.operation.duration")
    assert duration.attributes["error.type"] == span.attributes["error.type"]


async def test_async_stream_iterated_closed_and_context_managed(otel, async_openai_client):
    stream = await async_openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES,
                                                               stream=True, stream_options={"include_usage": True})
    assert isinstance(stream, openai.AsyncStream)
    chunks = [c async for c in stream]
    assert chunks
    stream = await async_openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    await stream.__anext__()
    await stream.close()
    async with await async_openai_client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True) as stream:
        async for _ in stream:
            break
    outcomes = sorted(s.attributes["agentwatch.stream.outcome"] for s in otel.inference_spans())
    assert outcomes == ["closed", "closed", "completed"]
    completed = [s for s in otel.inference_spans() if s.attributes["agentwatch.stream.outcome"] == "completed"]
    assert completed[0].attributes["gen_ai.usage.input_tokens"] > 0


async def test_async_abandoned_stream(otel, async_openai_client):
    stream = await async_openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    await stream.__anext__()
    del stream
    gc.collect()
    await asyncio.sleep(0)
    assert otel.only_span().attributes["agentwatch.stream.outcome"] == "abandoned"


def test_http_error_records_error_type_and_reraises_same_exception(otel, openai_client):
    with pytest.raises(openai.RateLimitError):
        openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES,
                                              extra_headers={"x-stub-status": "429"})
    span = otel.only_span()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "RateLimitError"
    (record,) = otel.log_records()
    assert record.attributes["event.outcome"] == "failure"
    assert record.attributes["error.type"] == "RateLimitError"
    assert "SECRETKEY" not in str(dict(record.attributes))


def test_timeout_records_error(otel, openai_client):
    with pytest.raises(openai.APITimeoutError):
        openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, timeout=0.2,
                                              extra_headers={"x-stub-delay": "2"})
    assert otel.only_span().attributes["error.type"] == "APITimeoutError"


@pytest.mark.parametrize("mode", ["missing", "malformed"])
def test_missing_or_malformed_usage_is_unavailable_not_zero(otel, openai_client, mode):
    result = openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES,
                                                   extra_headers={"x-stub-usage": mode})
    assert result.choices
    a = otel.only_span().attributes
    assert a["agentwatch.usage.unavailable"] is True
    assert "gen_ai.usage.input_tokens" not in a
    assert "agentwatch.usage.cost_usd" not in a
    assert not otel.metric_points("gen_ai.client.token.usage")
    assert not otel.metric_points("agentwatch.pricing.unpriced_calls")


def test_unknown_model_is_cost_unknown_and_counted(otel, openai_client):
    openai_client.chat.completions.create(model="acme-private-llm-7", messages=MESSAGES)
    a = otel.only_span().attributes
    assert a["agentwatch.usage.cost_unknown"] is True
    assert "agentwatch.usage.cost_usd" not in a
    assert a["gen_ai.usage.input_tokens"] > 0
    (unpriced,) = otel.metric_points("agentwatch.pricing.unpriced_calls")
    assert unpriced.value == 1 and unpriced.attributes["gen_ai.request.model"] == "acme-private-llm-7"
    assert not otel.metric_points("agentwatch.llm.cost")


def test_price_file_overrides_bundled_prices(otel_factory, openai_client, tmp_path):
    prices = tmp_path / "prices.yaml"
    prices.write_text("models:\n  - model: acme-private-llm-7\n    input: 2.0\n    output: 10.0\n"
                      "  - model_prefix: gpt-4o-mini\n    provider: openai\n    input: 1000\n    output: 1000\n")
    otel = otel_factory(AGENTWATCH_PRICES_FILE=str(prices))
    openai_client.chat.completions.create(model="acme-private-llm-7", messages=MESSAGES)
    openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    own, mini = sorted(otel.inference_spans(), key=lambda s: s.attributes["gen_ai.request.model"])
    u = _usage_of(own)
    assert own.attributes["agentwatch.usage.cost_usd"] == pytest.approx(
        (u.input_tokens * 2.0 + u.output_tokens * 10.0) / 1e6)
    u = _usage_of(mini)
    assert mini.attributes["agentwatch.usage.cost_usd"] == pytest.approx((u.input_tokens + u.output_tokens) * 1e-3)


def test_cache_and_reasoning_tokens_are_recorded_and_priced(otel, openai_client):
    openai_client.chat.completions.create(model="o3-mini", messages=MESSAGES, extra_headers={
        "x-stub-cached-tokens": "3", "x-stub-reasoning-tokens": "5", "x-stub-output-words": "20"})
    span = otel.only_span()
    a = span.attributes
    assert a["gen_ai.usage.cache_read.input_tokens"] == 3
    assert a["gen_ai.usage.reasoning.output_tokens"] == 5
    assert a["agentwatch.usage.cost_usd"] == pytest.approx(
        PriceBook().cost("openai", a["gen_ai.response.model"], _usage_of(span)), rel=1e-12)


def test_responses_api_sync_and_stream(otel, openai_client):
    response = openai_client.responses.create(model="gpt-4o-mini", input="tell me a joke")
    events = list(openai_client.responses.create(model="gpt-4o-mini", input="tell me a joke", stream=True))
    plain, streamed = sorted(otel.inference_spans(), key=lambda s: s.attributes.get("gen_ai.request.stream", False))
    assert plain.name == "chat gpt-4o-mini"
    assert plain.attributes["gen_ai.response.id"] == response.id
    assert plain.attributes["gen_ai.usage.input_tokens"] == response.usage.input_tokens
    assert list(plain.attributes["gen_ai.response.finish_reasons"]) == ["completed"]
    completed = [e for e in events if e.type == "response.completed"][0].response
    assert streamed.attributes["gen_ai.usage.output_tokens"] == completed.usage.output_tokens
    assert streamed.attributes["agentwatch.usage.cost_usd"] > 0


async def test_responses_api_async(otel, async_openai_client):
    response = await async_openai_client.responses.create(model="gpt-4o-mini", input="hello")
    stream = await async_openai_client.responses.create(model="gpt-4o-mini", input="hello", stream=True)
    async for _ in stream:
        pass
    spans = otel.inference_spans()
    assert len(spans) == 2
    assert {s.attributes["gen_ai.response.id"] for s in spans} >= {response.id}
    assert all(s.attributes["gen_ai.usage.input_tokens"] > 0 for s in spans)


def test_embeddings(otel, openai_client):
    result = openai_client.embeddings.create(model="text-embedding-3-small", input=["a b c", "d e"])
    span = otel.only_span()
    assert span.name == "embeddings text-embedding-3-small"
    assert span.attributes["gen_ai.operation.name"] == "embeddings"
    assert span.attributes["gen_ai.usage.input_tokens"] == result.usage.prompt_tokens
    assert span.attributes["agentwatch.usage.cost_usd"] > 0
    tokens = otel.metric_points("gen_ai.client.token.usage")
    assert [p.attributes["gen_ai.token.type"] for p in tokens] == ["input"]


def test_tool_call_round_trip_records_finish_reason(otel, openai_client):
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}}}}]
    first = openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, tools=tools)
    call = first.choices[0].message.tool_calls[0]
    messages = MESSAGES + [first.choices[0].message.model_dump(exclude_none=True),
                           {"role": "tool", "tool_call_id": call.id, "content": "sunny"}]
    openai_client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=tools)
    reasons = [list(s.attributes["gen_ai.response.finish_reasons"]) for s in otel.inference_spans()]
    assert reasons == [["tool_calls"], ["stop"]]


def test_with_raw_response_still_records_usage(otel, openai_client):
    raw = openai_client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    parsed = raw.parse()
    assert otel.only_span().attributes["gen_ai.usage.input_tokens"] == parsed.usage.prompt_tokens


def test_streaming_response_wrapper_records_stream_usage(otel, openai_client):
    with openai_client.chat.completions.with_streaming_response.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}) as raw:
        chunks = list(raw.parse())
    assert chunks[-1].usage is not None
    span = otel.only_span()
    assert span.attributes["gen_ai.usage.output_tokens"] == chunks[-1].usage.completion_tokens
    assert span.attributes["agentwatch.stream.outcome"] == "completed"


async def test_async_streaming_responses_api_via_raw_response(otel, async_openai_client):
    async with async_openai_client.responses.with_streaming_response.create(
            model="gpt-4o-mini", input="hello", stream=True) as raw:
        stream = await raw.parse()
        assert stream is await raw.parse(), "parse() keeps returning the same stream"
        events = [e async for e in stream]
    completed = [e for e in events if e.type == "response.completed"][0].response
    span = otel.only_span()
    assert span.attributes["gen_ai.usage.input_tokens"] == completed.usage.input_tokens
    assert span.attributes["agentwatch.usage.cost_usd"] > 0


def test_raw_stream_never_parsed_ends_as_abandoned(otel, openai_client):
    raw = openai_client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES,
                                                                  stream=True)
    assert otel.inference_spans() == []
    del raw
    gc.collect()
    assert otel.only_span().attributes["agentwatch.stream.outcome"] == "abandoned"


# --- async gaps: each ends its span exactly once ---------------------------------------------------------
async def test_async_cancelled_call_ends_its_span_once(otel, async_openai_client):
    task = asyncio.ensure_future(async_openai_client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, extra_headers={"x-stub-delay": "2"}))
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    span = otel.only_span()
    assert span.attributes["error.type"] == "CancelledError"
    (duration,) = otel.metric_points("gen_ai.client.operation.duration")
    assert duration.count == 1
    assert len(otel.log_records()) == 1


async def test_async_embeddings(otel, async_openai_client):
    result = await async_openai_client.embeddings.create(model="text-embedding-3-small", input=["a b c"])
    span = otel.only_span()
    assert span.name == "embeddings text-embedding-3-small"
    assert span.attributes["gen_ai.usage.input_tokens"] == result.usage.prompt_tokens
    assert span.attributes["agentwatch.usage.cost_usd"] > 0
    assert [p.attributes["gen_ai.token.type"] for p in otel.metric_points("gen_ai.client.token.usage")] == ["input"]


async def test_async_http_error_ends_its_span_once(otel, async_openai_client):
    with pytest.raises(openai.RateLimitError):
        await async_openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES,
                                                          extra_headers={"x-stub-status": "429"})
    span = otel.only_span()
    assert span.status.status_code is StatusCode.ERROR and span.attributes["error.type"] == "RateLimitError"
    (duration,) = otel.metric_points("gen_ai.client.operation.duration")
    assert duration.count == 1 and duration.attributes["error.type"] == "RateLimitError"
    (record,) = otel.log_records()
    assert record.attributes["event.outcome"] == "failure"
