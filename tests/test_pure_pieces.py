"""Unit tests of the pure pieces: message-part conversion, the one content JSON, output messages from
stream deltas, one-shot request values, usage from span attributes (current and older names), RunState."""

from __future__ import annotations

import json

import pytest

from agentwatch import semconv as sc
from agentwatch.pricing import TokenUsage
from agentwatch.runtime.content import content_json, message_parts, reusable
from agentwatch.runtime.instrumentors._inference import OutputBuilder
from agentwatch.runtime.processor import usage_from_attributes
from agentwatch.runtime.runs import Budget, BudgetExceeded, Kind, RunState

pytestmark = pytest.mark.unit


class Block:
    def __init__(self, **fields):
        self.__dict__.update(fields)


def test_message_parts_from_strings_dicts_and_sdk_objects():
    assert message_parts(None) == []
    assert message_parts("hi") == [{"type": "text", "content": "hi"}]
    assert message_parts([
        {"type": "text", "text": "a"},
        Block(type="tool_use", id="t1", name="lookup", input={"q": 1}),
        {"type": "tool_result", "tool_use_id": "t1", "content": "ok"},
        {"type": "thinking", "thinking": "hmm"},
        {"type": "image"},
    ]) == [
        {"type": "text", "content": "a"},
        {"type": "tool_call", "id": "t1", "name": "lookup", "arguments": {"q": 1}},
        {"type": "tool_call_response", "id": "t1", "response": "ok"},
        {"type": "reasoning", "content": "hmm"},
        {"type": "image"},
    ]


def test_content_json_renders_objects_once_and_truncates():
    value = {"city": "Zürich", "at": Block(when="now", _private=1), "tags": {"x"}}
    assert json.loads(content_json(value, 1000)) == {"city": "Zürich", "at": {"when": "now"}, "tags": ["x"]}
    assert content_json("x" * 50, 10) == '"' + "x" * 9 + "…[truncated]"


def test_output_builder_joins_deltas_and_parses_tool_arguments():
    builder = OutputBuilder(room=1000)
    builder.text("Hel")
    builder.text("lo")
    builder.tool_call(0, "call_1", "get_weather", '{"ci')
    builder.tool_call(0, None, None, 'ty": "Paris"}')
    builder.tool_call(1, "call_2", "broken", "{not json")
    assert builder.message() == {"role": "assistant", "parts": [
        {"type": "text", "content": "Hello"},
        {"type": "tool_call", "id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}},
        {"type": "tool_call", "id": "call_2", "name": "broken", "arguments": "{not json"},
    ]}


def test_output_builder_keeps_no_more_than_the_content_limit():
    builder = OutputBuilder(room=5)
    for _ in range(100):
        builder.text("abcdef")
    assert builder.message()["parts"] == [{"type": "text", "content": "abcdef"}]


def test_reusable_materialises_one_shot_iterables_only():
    messages = [{"role": "user"}]
    kwargs = {"messages": messages}
    assert reusable(kwargs, "messages") == (messages, kwargs)
    generator = (m for m in messages)
    value, sent = reusable({"messages": generator}, "messages")
    assert value == messages and sent["messages"] is value
    assert reusable({}, "messages") == (None, {})


def test_usage_from_attributes_reads_current_and_older_names():
    assert usage_from_attributes({}) is None
    assert usage_from_attributes({sc.GEN_AI_USAGE_INPUT_TOKENS: -1, sc.GEN_AI_USAGE_OUTPUT_TOKENS: 1}) is None
    assert usage_from_attributes({sc.GEN_AI_USAGE_INPUT_TOKENS: "3", sc.GEN_AI_USAGE_OUTPUT_TOKENS: 1}) is None
    current = {sc.GEN_AI_USAGE_INPUT_TOKENS: 10, sc.GEN_AI_USAGE_OUTPUT_TOKENS: 4,
               sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 2, sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS: 3,
               sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: 1}
    assert usage_from_attributes(current) == TokenUsage(10, 4, 2, 3, 1)
    older = {"gen_ai.usage.prompt_tokens": 10, "gen_ai.usage.completion_tokens": 4,
             "gen_ai.usage.cache_read_input_tokens": 2, "gen_ai.usage.cache_creation.input_tokens": 3,
             "llm.usage.reasoning_tokens": 1}
    assert usage_from_attributes(older) == TokenUsage(10, 4, 2, 3, 1)
    assert usage_from_attributes({**older, "gen_ai.usage.cache_creation.input_tokens": None,
                                  "gen_ai.usage.cache_creation_input_tokens": 7}).cache_write_tokens == 7


def test_run_state_counts_for_the_run_and_its_parents():
    parent = RunState("planner", 1)
    child = RunState("researcher", 2, parent)
    child.add_inference(TokenUsage(10, 5), 0.25)
    child.add_inference(TokenUsage(1, 1), None)  # unpriced
    child.add_inference(None, None)  # usage unavailable
    child.add_tool(failed=True)
    for run in (child, parent):
        assert (run.inference_calls, run.tool_calls, run.tool_errors) == (3, 1, 1)
        assert (run.input_tokens, run.output_tokens, run.cost) == (11, 6, 0.25)
        assert run.unpriced_calls == 1 and run.usage_unavailable_calls == 1 and not run.cost_known
    attributes = parent.attributes()
    assert attributes[sc.AGENTWATCH_COST_UNKNOWN] is True and attributes[sc.AGENTWATCH_COST_USD] == 0.25


def test_run_state_budget_and_warnings():
    run = RunState("agent", 1)
    run.budget = Budget(inference_calls=2, warn_fraction=0.5)
    run.add_inference(TokenUsage(1, 1), 0.0)
    assert [(limit, used) for _r, limit, used, _a in run.new_budget_warnings()] == [("inference_calls", 1.0)]
    assert run.new_budget_warnings() == [], "each warning once"
    run.check_budget()
    run.add_inference(TokenUsage(1, 1), 0.0)
    with pytest.raises(BudgetExceeded):
        run.check_budget()


def test_kinds_are_an_int_enum():
    assert Kind.INFERENCE == 1 and isinstance(Kind.RUN, int)
