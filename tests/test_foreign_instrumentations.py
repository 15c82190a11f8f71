"""The span processor fed by OTHER OpenAI instrumentations: the official OpenTelemetry one
(`opentelemetry-instrumentation-genai-openai`) and Traceloop's OpenLLMetry (`opentelemetry-instrumentation-openai`).

Each library lives in its own side folder (`.venv/extras/official`, `.venv/extras/openllmetry`, installed by
`make setup`) and is put on PYTHONPATH of a subprocess only, running tests/agents/foreign_feed.py: three
OpenAI chat calls (plain, streamed with include_usage, one with cached and reasoning tokens) inside
`agentwatch.agent_run("foreign-agent")`, with the library's instrumentor and NOT agentwatch's. The run's
totals must be those of the library's spans, and its cost the exact sum of the costs the processor wrote
onto them. Then agentwatch's instrumentor and another one active at once, in both wrapping orders and for
both clients: each call has exactly ONE LLM-call span (the other instrumentation's: agentwatch stands down),
one set of gen_ai.client.* points (the other's), and agentwatch's cost on that span, in the cost counter and
in the run totals, counted once.

Attribute names are read under their current and their older names, so the test holds for library
versions that still emit `gen_ai.system`, `gen_ai.usage.prompt_tokens`/`completion_tokens` or
`llm.request.type`; the names a span really carried are shown in assertion messages.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agentwatch.pricing import PriceBook, TokenUsage
from agentwatch.semconv import INFERENCE_OPERATIONS

TEST_LAYER = "e2e"  # every test here is e2e unless marked otherwise (conftest.py)

HERE = Path(__file__).parent
FEED = HERE / "agents" / "foreign_feed.py"
EXTRAS = Path(sys.prefix) / "extras"

# side folder -> a file that proves the library is installed there, and the library's instrumentation scope
LIBRARIES = {
    "official": ("opentelemetry/instrumentation/genai/openai/__init__.py",
                 "opentelemetry.instrumentation.genai.openai"),
    "openllmetry": ("opentelemetry/instrumentation/openai/__init__.py", "opentelemetry.instrumentation.openai"),
}
ANTHROPIC_SCOPES = {"official": "opentelemetry.instrumentation.genai.anthropic",
                    "openllmetry": "opentelemetry.instrumentation.anthropic"}
CALLS = 3
CACHED_TOKENS, REASONING_TOKENS = 4, 6  # what foreign_feed.py asks the stub to report on its third call

# current name first, then the older names some instrumentations still emit
INPUT_TOKENS = ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens")
OUTPUT_TOKENS = ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens")
CACHE_READ_TOKENS = ("gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_read_input_tokens")
REASONING = ("gen_ai.usage.reasoning.output_tokens", "gen_ai.usage.reasoning_tokens", "llm.usage.reasoning_tokens")
PROVIDER = ("gen_ai.provider.name", "gen_ai.system")
LEGACY_REQUEST_TYPES = {"chat": "chat", "completion": "text_completion", "embedding": "embeddings"}

COST = "agentwatch.usage.cost_usd"
COST_UNKNOWN = "agentwatch.usage.cost_unknown"
AGENT_METRICS = ("gen_ai.invoke_agent.duration", "gen_ai.invoke_agent.inference_calls",
                 "gen_ai.invoke_agent.tool_calls", "agentwatch.agent.cost", "agentwatch.agent.token.usage")


def side_folder(library: str) -> Path:
    folder = EXTRAS / library
    marker, _scope = LIBRARIES[library]
    if not (folder / marker).is_file():
        message = f"{library} OpenAI instrumentation is expected in {folder} (`make setup` installs it)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message.replace("is expected", "is not installed") + "; run `make setup`")
    return folder


class Feed:
    """The JSON document foreign_feed.py printed, with helpers over its spans."""

    def __init__(self, document: dict):
        self.doc = document
        self.spans = document["spans"]
        self.by_id = {s["span_id"]: s for s in self.spans}

    @property
    def run(self) -> dict:
        runs = [s for s in self.spans if s["attributes"].get("gen_ai.operation.name") == "invoke_agent"]
        assert len(runs) == 1, [s["name"] for s in runs]
        return runs[0]

    def under(self, span: dict, ancestor: dict) -> bool:
        parent = span["parent_span_id"]
        while parent is not None:
            if parent == ancestor["span_id"]:
                return True
            parent = self.by_id[parent]["parent_span_id"] if parent in self.by_id else None
        return False

    def llm_spans(self, scope_prefix: str | None = None) -> list[dict]:
        """LLM-call spans under the run, in the order they ended (the order the processor added them)."""
        run = self.run
        spans = [s for s in self.spans if operation(s) in INFERENCE_OPERATIONS and self.under(s, run)
                 and (scope_prefix is None or s["scope"].startswith(scope_prefix))]
        return sorted(spans, key=lambda s: s["end"])

    def points(self, name: str, scope: str = "agentwatch") -> list[dict]:
        return [p for m in self.doc["metrics"] if m["name"] == name and m["scope"] == scope for p in m["points"]]


def operation(span: dict) -> str | None:
    a = span["attributes"]
    return a.get("gen_ai.operation.name") or LEGACY_REQUEST_TYPES.get(a.get("llm.request.type"))


def attr(span: dict, names: tuple[str, ...]) -> tuple[str | None, object]:
    """(the name the span used, its value) for the first of `names` it carries."""
    for name in names:
        if name in span["attributes"]:
            return name, span["attributes"][name]
    return None, None


def tokens(span: dict, names: tuple[str, ...]) -> int:
    name, value = attr(span, names)
    assert isinstance(value, int), f"{span['name']} ({span['scope']}) has none of {names}: {span['attributes']}"
    return value


def run_feed(mode: str, library: str, stub, client: str = "openai") -> Feed:
    folder = side_folder(library)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OTEL_", "AGENTWATCH_", "TRACELOOP_", "ANTHROPIC_"))}
    env["PYTHONPATH"] = str(folder)
    proc = subprocess.run([sys.executable, str(FEED), mode, stub.url, client], env=env, capture_output=True,
                          text=True, timeout=120)
    if proc.returncode != 0:  # pytest.fail, not assert: a broken feed must not pass as an expected failure
        pytest.fail(f"foreign_feed.py {mode} failed:\n{proc.stderr[-4000:]}")
    return Feed(json.loads(proc.stdout))


@pytest.fixture(scope="module")
def feed(stub):
    """Runs each mode once per module, however many tests read it."""
    cache: dict[str, Feed] = {}

    def get(mode: str, client: str = "openai") -> Feed:
        if (mode, client) not in cache:
            library = "openllmetry" if "openllmetry" in mode else "official"
            cache[mode, client] = run_feed(mode, library, stub, client)
        return cache[mode, client]

    return get


def assert_agent_metrics(feed: Feed, cost: float, total_tokens: int) -> None:
    for name in AGENT_METRICS:
        assert feed.points(name), f"agent metric {name} not recorded"
    (duration,) = feed.points("gen_ai.invoke_agent.duration")
    assert duration["count"] == 1 and duration["attributes"] == {"gen_ai.agent.name": "foreign-agent"}
    (steps,) = feed.points("gen_ai.invoke_agent.inference_calls")
    assert steps["count"] == 1 and steps["sum"] == CALLS
    (tool_calls,) = feed.points("gen_ai.invoke_agent.tool_calls")
    assert tool_calls["sum"] == 0
    (cost_point,) = feed.points("agentwatch.agent.cost")
    assert cost_point["count"] == 1 and cost_point["sum"] == cost
    (token_point,) = feed.points("agentwatch.agent.token.usage")
    assert token_point["count"] == 1 and token_point["sum"] == total_tokens
    assert feed.doc["registry_size"] == 0, "the processor still holds spans after the run ended"


@pytest.mark.parametrize("library", ["official", "openllmetry"])
def test_foreign_llm_spans_feed_the_run(feed, library):
    result = feed(library)
    _marker, scope = LIBRARIES[library]
    run = result.run
    assert run["scope"] == "agentwatch"
    calls = result.llm_spans(scope)
    assert len(calls) == CALLS, [(s["name"], s["scope"]) for s in result.spans]
    assert result.llm_spans() == calls, "only the foreign library's LLM spans: agentwatch's instrumentor is off"
    assert all(s["kind"] == "CLIENT" for s in calls)
    assert {attr(s, PROVIDER)[1] for s in calls} == {"openai"}
    streamed = [s for s in calls if s["attributes"].get("gen_ai.request.stream")
                or s["attributes"].get("gen_ai.is_streaming") or s["attributes"].get("llm.is_streaming")]
    assert len(streamed) == 1, "the streamed call has a span, with its usage (include_usage)"

    a = run["attributes"]
    assert a["gen_ai.invoke_agent.inference_calls"] == CALLS
    input_tokens = sum(tokens(s, INPUT_TOKENS) for s in calls)
    output_tokens = sum(tokens(s, OUTPUT_TOKENS) for s in calls)
    assert input_tokens > 0 and output_tokens > 0
    assert a["gen_ai.usage.input_tokens"] == input_tokens, [attr(s, INPUT_TOKENS) for s in calls]
    assert a["gen_ai.usage.output_tokens"] == output_tokens, [attr(s, OUTPUT_TOKENS) for s in calls]
    cache_read = sum(attr(s, CACHE_READ_TOKENS)[1] or 0 for s in calls)
    assert cache_read == CACHED_TOKENS
    assert a.get("gen_ai.usage.cache_read.input_tokens") == cache_read

    # every foreign LLM span got a cost (or an explicit unknown) from the processor, at today's prices
    prices = PriceBook()
    for span in calls:
        s = span["attributes"]
        assert COST in s or s.get(COST_UNKNOWN) is True, f"{span['name']}: no cost and no unknown marker"
        assert COST in s, f"{span['name']}: {s.get('gen_ai.response.model')} should have a price"
        usage = TokenUsage(input_tokens=tokens(span, INPUT_TOKENS), output_tokens=tokens(span, OUTPUT_TOKENS),
                           cache_read_tokens=attr(span, CACHE_READ_TOKENS)[1] or 0,
                           reasoning_tokens=attr(span, REASONING)[1] or 0)
        assert s[COST] > 0
        assert s[COST] == pytest.approx(prices.cost("openai", s["gen_ai.response.model"], usage), rel=1e-9)

    # the run's cost is the exact sum of its calls' costs, added in the order the calls ended
    expected = 0.0
    for span in calls:
        expected += span["attributes"][COST]
    assert a[COST] == expected
    assert math.isclose(a[COST], math.fsum(s["attributes"][COST] for s in calls), rel_tol=1e-12)
    assert COST_UNKNOWN not in a

    assert_agent_metrics(result, a[COST], input_tokens + output_tokens)


@pytest.mark.parametrize("library", [
    "official",
    "openllmetry",
])
def test_reasoning_tokens_reach_the_run(feed, library):
    result = feed(library)
    calls = result.llm_spans(LIBRARIES[library][1])
    names = {attr(s, REASONING)[0] for s in calls} - {None}
    assert sum(attr(s, REASONING)[1] or 0 for s in calls) == REASONING_TOKENS, names
    assert result.run["attributes"].get("gen_ai.usage.reasoning.output_tokens") == REASONING_TOKENS, names


def points_of(feed: Feed, name: str) -> list[dict]:
    return [p for m in feed.doc["metrics"] if m["name"] == name for p in m["points"]]


@pytest.mark.parametrize("client", ["openai", "anthropic"])
@pytest.mark.parametrize("library", ["official", "openllmetry"])
@pytest.mark.parametrize("order", ["foreign-outer", "agentwatch-outer"])
def test_one_llm_span_per_call_with_another_instrumentation(feed, library, order, client):
    mode = f"agentwatch+{library}" if order == "foreign-outer" else f"{library}+agentwatch"
    result = feed(mode, client)
    scope = LIBRARIES[library][1] if client == "openai" else ANTHROPIC_SCOPES[library]
    run = result.run
    calls = result.llm_spans()
    # exactly one LLM-call span per call, and it is the other instrumentation's: agentwatch stood down
    assert len(calls) == CALLS and all(s["scope"].startswith(scope) for s in calls), [(s["name"], s["scope"]) for s in result.spans]
    assert not [s for s in result.spans if s["scope"].startswith("com.anthropic.sdk")], "the SDK's own span is off"

    a = run["attributes"]
    assert a["gen_ai.invoke_agent.inference_calls"] == CALLS
    input_tokens = sum(tokens(s, INPUT_TOKENS) for s in calls)
    output_tokens = sum(tokens(s, OUTPUT_TOKENS) for s in calls)
    assert a["gen_ai.usage.input_tokens"] == input_tokens
    assert a["gen_ai.usage.output_tokens"] == output_tokens
    # the processor priced each call once, on the other instrumentation's span
    assert all(s["attributes"].get(COST, 0) > 0 for s in calls), [s["attributes"] for s in calls]
    expected = 0.0
    for span in calls:
        expected += span["attributes"][COST]
    assert a[COST] == expected
    assert sum(p["value"] for p in result.points("agentwatch.llm.cost")) == pytest.approx(expected, rel=1e-12)
    assert_agent_metrics(result, a[COST], input_tokens + output_tokens)
    # one set of gen_ai.client.* points: the other instrumentation's, none of agentwatch's
    assert not result.points("gen_ai.client.operation.duration"), "agentwatch recorded points for a call it observed"
    assert not result.points("gen_ai.client.token.usage")
    durations = points_of(result, "gen_ai.client.operation.duration")
    assert sum(p["count"] for p in durations) == CALLS, durations
    # and one log record per call, correlated with that span
    assert result.doc["llm_logs"] == sorted(s["span_id"] for s in calls)


@pytest.mark.parametrize("library", ["official", "openllmetry"])
def test_foreign_llm_cost_reaches_the_cost_counter(feed, library):
    result = feed(library)
    calls = result.llm_spans(LIBRARIES[library][1])
    points = result.points("agentwatch.llm.cost")
    assert points, "no agentwatch.llm.cost point for foreign LLM calls"
    assert sum(p["value"] for p in points) == pytest.approx(sum(s["attributes"][COST] for s in calls), rel=1e-12)
