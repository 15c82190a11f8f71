"""Instrumentation never breaks the agent: agentwatch's own failures are swallowed and counted."""

from __future__ import annotations

import logging

import openai
import pytest
from wrapt import FunctionWrapper, ObjectProxy

from agentwatch.runtime.instrumentors import _inference
from agentwatch.runtime.instrumentors._inference import InferenceCall
from agentwatch.runtime.telemetry import LabelLimiter
from agentwatch.runtime.instrumentors.openai import OpenAIInstrumentor

TEST_LAYER = "unit"  # every test here is unit unless marked otherwise (conftest.py)

MESSAGES = [{"role": "user", "content": "hello"}]


def _internal_errors(otel):
    return sum(p.value for p in otel.metric_points("agentwatch.internal.errors"))


def test_exception_while_recording_is_swallowed(otel, openai_client, monkeypatch):
    def broken(self, *args):
        raise RuntimeError("agentwatch bug")

    monkeypatch.setattr(InferenceCall, "_record", broken)
    result = openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert type(result) is openai.types.chat.ChatCompletion and result.choices
    assert _internal_errors(otel) == 1
    assert len(otel.finished()) == 1, "the span is still ended"


def test_exception_while_starting_passes_the_call_through(otel, openai_client, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("agentwatch bug")

    monkeypatch.setattr(_inference, "server_of", broken)
    monkeypatch.setattr("agentwatch.runtime.instrumentors.openai.server_of", broken)
    result = openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert result.choices
    assert otel.finished() == []
    assert _internal_errors(otel) == 1


def test_exception_in_stream_observer_still_delivers_every_chunk(otel, openai_client, monkeypatch):
    baseline = [c.model_dump() for c in openai_client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, seed=1)]

    def broken(call, chunk):
        raise RuntimeError("agentwatch bug")

    monkeypatch.setattr("agentwatch.runtime.instrumentors.openai._chat_chunk", broken)
    chunks = [c.model_dump() for c in openai_client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, seed=1)]
    assert [c["choices"] for c in chunks] == [c["choices"] for c in baseline]
    assert _internal_errors(otel) >= 1
    assert len(otel.inference_spans()) == 2


def test_user_exception_is_the_same_object(otel, openai_client):
    with pytest.raises(openai.RateLimitError) as first:
        openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES,
                                              extra_headers={"x-stub-status": "429"})
    assert first.value.status_code == 429
    assert first.value.__traceback__ is not None
    assert _internal_errors(otel) == 0


def test_stream_keeps_its_type_methods_and_attributes(otel, openai_client):
    stream = openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    assert isinstance(stream, openai.Stream)
    assert isinstance(stream, ObjectProxy)
    assert stream.response.headers["content-type"].startswith("text/event-stream")
    assert callable(stream.close) and hasattr(stream, "_iterator")
    stream.close()


def test_malformed_price_file_is_reported_and_bundled_prices_still_used(otel_factory, openai_client, tmp_path,
                                                                         caplog):
    bad = tmp_path / "prices.yaml"
    bad.write_text("models:\n  - model: x\n    input: -1\n    output: 2\n")
    otel = otel_factory(AGENTWATCH_PRICES_FILE=str(bad))
    with caplog.at_level(logging.ERROR, logger="agentwatch"):
        openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert str(bad) in caplog.text
    assert otel.only_span().attributes["agentwatch.usage.cost_usd"] > 0


def test_uninstrument_restores_originals(otel, openai_client):
    from openai.resources.chat.completions.completions import Completions

    assert isinstance(Completions.__dict__["create"], FunctionWrapper)
    OpenAIInstrumentor().uninstrument()
    assert not isinstance(Completions.__dict__["create"], FunctionWrapper)
    openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert otel.finished() == []


def test_label_limiter_bounds_model_cardinality():
    limit = LabelLimiter(3)
    assert [limit(m) for m in ["a", "b", "a", "c", "d", "e", "b"]] == ["a", "b", "a", "c", "_OTHER", "_OTHER", "b"]


def test_many_distinct_models_keep_metric_series_bounded(otel_factory, openai_client):
    otel = otel_factory(AGENTWATCH_MODEL_LABEL_LIMIT="5")
    for i in range(12):
        openai_client.chat.completions.create(model=f"tenant-model-{i}", messages=MESSAGES)
    models = {p.attributes["gen_ai.request.model"] for p in otel.metric_points("gen_ai.client.operation.duration")}
    assert len(models) == 6 and "_OTHER" in models
    assert len(otel.inference_spans()) == 12, "spans keep the real model name"
