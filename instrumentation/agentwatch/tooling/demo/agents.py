"""Demo agent workloads: ordinary OpenAI / Anthropic SDK code.

`agentwatch demo` runs each agent under `opentelemetry-instrument`, exactly like a user would run their own
agent: the LLM calls are instrumented with no code change. Like a user who wants agent-level telemetry, the
agents mark their runs (`agentwatch.agent_run`) and tools (`@agentwatch.tool`), so the span processor counts
steps, tool calls, tokens and cost per run. Every agent talks to the stub LLM server
(`agentwatch.tooling.demo.stub`) and is deterministic for a given `--seed`:

* support  -- OpenAI chat with tools (lookup_order, refund); a tool-call loop per customer turn until the
              model answers; some final answers streamed with `stream_options={"include_usage": True}`.
* research -- Anthropic messages with many steps: several tool_use rounds (web_search, read_page) on a
              cheap model, then the final report through the `messages.stream` helper on a bigger one.
* flaky    -- OpenAI; its tools raise exceptions `--failure-rate` of the time (so its tool error rate is far
              above the 5 % threshold) and as many LLM calls fail with HTTP 500 or 429; the agent catches the
              SDK errors and retries (up to 5 attempts, so a run rarely gives up), and never crashes.
* costly   -- contract review: gpt-4.1 reads a few long contract sections behind a cached prefix, then
              claude-opus-4-5 writes the review. By far the highest cost per run, yet within the default
              thresholds (about 30,000 tokens and $0.07 per run, under 50,000 tokens and $1).

Usage:
    python -m agentwatch.tooling.demo.agents --agent support --runs 10 --seed 7 --stub-url http://127.0.0.1:8765
    python -m agentwatch.tooling.demo.agents --agent flaky --runs 30 --interval 0.5 --stub-url ...   # 2 runs/s
    python -m agentwatch.tooling.demo.agents --agent costly --runs 0 --duration 60 --stub-url ...    # for 60 s

The stub is told how to behave like a real provider (latency, cache hits, long answers, failures) through
its `x-stub-*` request headers; those headers are the only demo-specific part of the agent code.

Pacing: `--interval S` starts run i no earlier than i*S seconds after the first run started (a fixed
schedule: after a run that took longer than S the next one starts at once, so the runs keep to the planned
duration where they can); `--duration S` starts no run later than S seconds after the first; `--runs 0`
means no limit on the number of runs (with `--duration`).

Nothing is printed per call. With `--progress-file`, one line per finished run is appended there
("run 3 ok calls=5 tool_errors=1 retries=0"), then "done" after the last run. With `--linger S` the process
then waits up to S seconds (or until its stdin closes) before exiting, so a scraper can still read its
Prometheus endpoint.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import select
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable

import anthropic
import openai

import agentwatch

AGENTS = ("support", "research", "flaky", "costly")

# Dummy keys: the stub ignores them (and the instrumentation must never export them).
OPENAI_KEY = "sk-demo-not-a-real-key"
ANTHROPIC_KEY = "sk-ant-demo-not-a-real-key"

_WORDS = (
    "agreement", "party", "liability", "term", "renewal", "payment", "invoice", "notice", "delivery",
    "warranty", "service", "level", "indemnity", "termination", "confidential", "data", "processing",
    "security", "audit", "breach", "remedy", "fee", "schedule", "support", "uptime", "credit",
)


@dataclass
class RunStats:
    calls: int = 0
    tool_errors: int = 0
    retries: int = 0
    failed: bool = False


def _simulate(latency: tuple[float, float] | None = None, rng: random.Random | None = None,
              **headers: Any) -> dict[str, str]:
    """Stub request headers standing in for a real provider's behaviour (slowness, caching, long output)."""
    out = {f"x-stub-{name.replace('_', '-')}": str(value) for name, value in headers.items()}
    if latency is not None and rng is not None:
        out["x-stub-delay"] = f"{rng.uniform(*latency):.3f}"
    return out


def _tool_work(rng: random.Random, low: float = 0.01, high: float = 0.06) -> None:
    """A tool's own latency (a database query, an HTTP call)."""
    time.sleep(rng.uniform(low, high))


# ---------------------------------------------------------------------------
# support: OpenAI tool-call loop, some streamed final answers
# ---------------------------------------------------------------------------

SUPPORT_TOOLS = [
    {"type": "function", "function": {
        "name": "lookup_order",
        "description": "Look up an order by its id: status, items, amount paid.",
        "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}},
                       "required": ["order_id"]}}},
    {"type": "function", "function": {
        "name": "refund",
        "description": "Refund (part of) an order.",
        "parameters": {"type": "object", "properties": {
            "order_id": {"type": "string"}, "amount": {"type": "number"}}, "required": ["order_id", "amount"]}}},
]

CUSTOMER_OPENERS = (
    "Hi, where is my order {order}? It was supposed to arrive on Monday.",
    "My order {order} arrived damaged, the box was crushed and the mug is broken.",
    "I was charged twice for order {order}, can you check please?",
    "Can you tell me when order {order} will ship?",
)
CUSTOMER_FOLLOW_UPS = (  # (message, is it a refund request?)
    ("OK, then I would like a refund for the broken item please.", True),
    ("Thanks. Could you also refund the shipping fee?", True),
    ("Alright, and what about the second package of the same order?", False),
)


class SupportAgent:
    model = "gpt-4o-mini"

    def __init__(self, client: openai.OpenAI, rng: random.Random) -> None:
        self.client = client
        self.rng = rng

    @agentwatch.tool(name="lookup_order")
    def lookup_order(self, order_id: str) -> dict[str, Any]:
        _tool_work(self.rng)
        status = self.rng.choice(("shipped", "processing", "delivered", "delayed"))
        return {"order_id": order_id, "status": status, "amount": round(self.rng.uniform(9, 240), 2)}

    @agentwatch.tool(name="refund")
    def refund(self, order_id: str, amount: float) -> dict[str, Any]:
        _tool_work(self.rng, 0.02, 0.08)
        return {"order_id": order_id, "refunded": amount, "reference": f"RF{self.rng.randrange(10**6):06d}"}

    def run(self, index: int) -> RunStats:
        stats = RunStats()
        order = f"A{self.rng.randrange(10000, 99999)}"
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": "You are a friendly support agent for an online shop. Use the tools "
                                          "to look orders up and to refund; never invent order details."},
            {"role": "user", "content": self.rng.choice(CUSTOMER_OPENERS).format(order=order)},
        ]
        turns = self.rng.choice((1, 2, 2, 3))
        for turn in range(turns):
            wants_refund = False
            if turn:
                text, wants_refund = self.rng.choice(CUSTOMER_FOLLOW_UPS)
                messages.append({"role": "user", "content": text})
            stream_answer = self.rng.random() < 0.5
            self.answer(messages, stats, stream_answer, wants_refund)
        return stats

    def answer(self, messages: list[dict[str, Any]], stats: RunStats, stream_answer: bool,
               wants_refund: bool = False) -> None:
        """The tool-call loop: call the model, run the tools it asks for, until it answers."""
        for step in range(6):
            headers = _simulate((0.02, 0.12), self.rng)
            stats.calls += 1
            if stream_answer and step > 0:
                message = self._streamed(messages, headers)
            else:
                # The intent classifier upstream flagged a refund request: make the model use the refund tool.
                choice: Any = ({"type": "function", "function": {"name": "refund"}}
                               if wants_refund and step == 0 else "auto")
                reply = self.client.chat.completions.create(
                    model=self.model, messages=messages, tools=SUPPORT_TOOLS, tool_choice=choice,
                    temperature=0.2, extra_headers=headers)
                message = reply.choices[0].message.model_dump(exclude_none=True)
            messages.append(message)
            calls = message.get("tool_calls") or []
            if not calls:
                return
            for call in calls:
                args = json.loads(call["function"].get("arguments") or "{}")
                if call["function"]["name"] == "refund":
                    result = self.refund(str(args.get("order_id", "?")), float(args.get("amount", 0)))
                else:
                    result = self.lookup_order(str(args.get("order_id", "?")))
                messages.append({"role": "tool", "tool_call_id": call["id"], "content": json.dumps(result)})

    def _streamed(self, messages: list[dict[str, Any]], headers: dict[str, str]) -> dict[str, Any]:
        """Stream a reply (show the text as it arrives), assembling text and tool calls from the deltas."""
        text: list[str] = []
        tool_calls: dict[int, dict[str, Any]] = {}
        stream = self.client.chat.completions.create(
            model=self.model, messages=messages, tools=SUPPORT_TOOLS, temperature=0.2, stream=True,
            stream_options={"include_usage": True}, extra_headers=headers)
        for chunk in stream:
            for choice in chunk.choices:
                delta = choice.delta
                if delta.content:
                    text.append(delta.content)
                for tc in delta.tool_calls or ():
                    slot = tool_calls.setdefault(tc.index, {"id": "", "type": "function",
                                                            "function": {"name": "", "arguments": ""}})
                    if tc.id:
                        slot["id"] = tc.id
                    if tc.function and tc.function.name:
                        slot["function"]["name"] = tc.function.name
                    if tc.function and tc.function.arguments:
                        slot["function"]["arguments"] += tc.function.arguments
        message: dict[str, Any] = {"role": "assistant", "content": "".join(text) or None}
        if tool_calls:
            message["tool_calls"] = [tool_calls[i] for i in sorted(tool_calls)]
        return message


# ---------------------------------------------------------------------------
# research: Anthropic, several tool_use rounds, final report via messages.stream
# ---------------------------------------------------------------------------

RESEARCH_TOOLS = [
    {"name": "web_search", "description": "Search the web; returns titles and URLs.",
     "input_schema": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}},
    {"name": "read_page", "description": "Fetch a web page and return its main text.",
     "input_schema": {"type": "object", "properties": {"url": {"type": "string"}}, "required": ["url"]}},
]
RESEARCH_TOPICS = (
    "the energy use of large language model inference",
    "retry strategies for rate-limited HTTP APIs",
    "how vector databases index embeddings",
    "observability practices for distributed systems",
    "the history of the transformer architecture",
)


class ResearchAgent:
    step_model = "claude-haiku-4-5"
    report_model = "claude-sonnet-4-6"

    def __init__(self, client: anthropic.Anthropic, rng: random.Random) -> None:
        self.client = client
        self.rng = rng

    @agentwatch.tool(name="web_search")
    def web_search(self, query: str) -> str:
        _tool_work(self.rng, 0.03, 0.10)
        hits = [f"{i + 1}. {query} - overview part {self.rng.randrange(1, 9)} (https://example.org/{i})"
                for i in range(3)]
        return "\n".join(hits)

    @agentwatch.tool(name="read_page")
    def read_page(self, url: str) -> str:
        _tool_work(self.rng, 0.02, 0.08)
        return " ".join(self.rng.choice(_WORDS) for _ in range(self.rng.randrange(120, 260)))

    def run(self, index: int) -> RunStats:
        stats = RunStats()
        topic = self.rng.choice(RESEARCH_TOPICS)
        system = "You are a meticulous research assistant. Cite your sources."
        messages: list[dict[str, Any]] = [{"role": "user", "content": f"Write a short brief on {topic}."}]
        for question in range(self.rng.randint(2, 4)):
            read = question > 0 and self.rng.random() < 0.6
            if question:
                ask = "read the most relevant source on" if read else "search for"
                messages.append({"role": "user", "content": f"Good. Now {ask} aspect {question + 1} of {topic}."})
            self.investigate(system, messages, stats, "read_page" if read else None)
        messages.append({"role": "user", "content": "Now write the final brief from your notes."})
        stats.calls += 1
        with self.client.messages.stream(
                model=self.report_model, max_tokens=1024, system=system, messages=messages,
                extra_headers=_simulate((0.1, 0.3), self.rng,
                                        output_words=self.rng.randrange(60, 160))) as stream:
            for _text in stream.text_stream:
                pass
            stream.get_final_message()
        return stats

    def investigate(self, system: str, messages: list[dict[str, Any]], stats: RunStats,
                    tool: str | None = None) -> None:
        """tool_use rounds until the model writes its notes for this question."""
        for step in range(6):
            stats.calls += 1
            choice = {"type": "tool", "name": tool} if tool and step == 0 else {"type": "auto"}
            reply = self.client.messages.create(
                model=self.step_model, max_tokens=512, system=system, messages=messages, tools=RESEARCH_TOOLS,
                tool_choice=choice, extra_headers=_simulate((0.02, 0.10), self.rng))
            messages.append({"role": "assistant", "content": [b.model_dump(exclude_none=True)
                                                              for b in reply.content]})
            if reply.stop_reason != "tool_use":
                return
            results = []
            for block in reply.content:
                if block.type != "tool_use":
                    continue
                if block.name == "read_page":
                    output = self.read_page(str(block.input.get("url", "")))
                else:
                    output = self.web_search(str(block.input.get("query", "")))
                results.append({"type": "tool_result", "tool_use_id": block.id, "content": output})
            messages.append({"role": "user", "content": results})


# ---------------------------------------------------------------------------
# flaky: failing tools and failing LLM calls, caught and retried
# ---------------------------------------------------------------------------

FLAKY_TOOLS = [
    {"type": "function", "function": {
        "name": "check_inventory", "description": "Stock level of a product in the warehouse.",
        "parameters": {"type": "object", "properties": {"sku": {"type": "string"}}, "required": ["sku"]}}},
    {"type": "function", "function": {
        "name": "reserve_stock", "description": "Reserve units of a product for an order.",
        "parameters": {"type": "object", "properties": {"sku": {"type": "string"}, "units": {"type": "integer"}},
                       "required": ["sku", "units"]}}},
]


class InventoryUnavailable(ConnectionError):
    """The (simulated) inventory service is down."""


class FlakyAgent:
    model = "gpt-4o-mini"
    max_attempts = 5

    def __init__(self, client: openai.OpenAI, rng: random.Random, failure_rate: float) -> None:
        self.client = client
        self.rng = rng
        self.failure_rate = failure_rate

    @agentwatch.tool(name="check_inventory")
    def check_inventory(self, sku: str) -> dict[str, Any]:
        _tool_work(self.rng)
        if self.rng.random() < self.failure_rate:
            raise InventoryUnavailable("inventory service timed out")
        return {"sku": sku, "in_stock": self.rng.randrange(0, 40)}

    @agentwatch.tool(name="reserve_stock")
    def reserve_stock(self, sku: str, units: int) -> dict[str, Any]:
        _tool_work(self.rng)
        if self.rng.random() < self.failure_rate:
            raise RuntimeError("reservation conflict: stock changed")
        return {"sku": sku, "reserved": units}

    def run(self, index: int) -> RunStats:
        stats = RunStats()
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": "You manage stock for a small warehouse. Use the tools."},
            {"role": "user", "content": f"Do we have SKU-{self.rng.randrange(100, 999)} in stock for an order?"},
        ]
        try:
            for round_ in range(self.rng.randint(1, 2)):
                if round_:
                    messages.append({"role": "user", "content": "Then reserve 2 units of it."})
                self.answer(messages, stats)
        except openai.APIError:
            stats.failed = True  # out of retries: give up on this run, carry on with the next one
        return stats

    def chat(self, messages: list[dict[str, Any]], stats: RunStats) -> Any:
        """One model call, retried on rate limits, server errors and connection problems."""
        for attempt in range(self.max_attempts):
            headers = _simulate((0.02, 0.08), self.rng)
            if self.rng.random() < self.failure_rate:
                headers["x-stub-status"] = self.rng.choice(("500", "500", "429", "503"))
            stats.calls += 1
            try:
                return self.client.chat.completions.create(
                    model=self.model, messages=messages, tools=FLAKY_TOOLS, extra_headers=headers)
            except (openai.RateLimitError, openai.InternalServerError, openai.APIConnectionError):
                if attempt == self.max_attempts - 1:
                    raise
                stats.retries += 1
                time.sleep(0.02 * 2 ** attempt)
        raise AssertionError("unreachable")

    def answer(self, messages: list[dict[str, Any]], stats: RunStats) -> None:
        for _ in range(5):
            message = self.chat(messages, stats).choices[0].message
            messages.append(message.model_dump(exclude_none=True))
            if not message.tool_calls:
                return
            for call in message.tool_calls:
                tool: Callable[..., dict[str, Any]] = (
                    self.reserve_stock if call.function.name == "reserve_stock" else self.check_inventory)
                try:
                    result = tool(**json.loads(call.function.arguments or "{}"))
                except Exception as exc:  # noqa: BLE001 - a failing tool is reported to the model, not raised
                    stats.tool_errors += 1
                    result = {"error": f"{type(exc).__name__}: {exc}"}
                messages.append({"role": "tool", "tool_call_id": call.id, "content": json.dumps(result)})


# ---------------------------------------------------------------------------
# costly: large contexts on expensive models
# ---------------------------------------------------------------------------

class CostlyAgent:
    reader_model = "gpt-4.1"  # 1M-token context window
    reviewer_model = "claude-opus-4-5"
    # The contract's definitions and the negotiation notes: the same prefix on every request, served from the
    # prompt cache (cheap, but still tokens).
    cached_prefix_tokens = 6_000
    section_words = 2_000  # one contract section per reader call
    excerpt_words = 3_000  # the clauses the reviewer re-reads

    def __init__(self, oai: openai.OpenAI, claude: anthropic.Anthropic, rng: random.Random) -> None:
        self.oai = oai
        self.claude = claude
        self.rng = rng

    def section(self, words: int) -> str:
        return " ".join(self.rng.choice(_WORDS) for _ in range(words))

    def run(self, index: int) -> RunStats:
        stats = RunStats()
        findings = []
        for part in range(self.rng.randint(2, 3)):
            stats.calls += 1
            reply = self.oai.chat.completions.create(
                model=self.reader_model,
                messages=[
                    {"role": "system", "content": "You review commercial contracts for legal risk."},
                    {"role": "user", "content": f"Part {part + 1} of the contract:\n"
                                                f"{self.section(self.section_words)}\n\n"
                                                "List every clause that creates liability for us."},
                ],
                extra_headers=_simulate((0.10, 0.30), self.rng, cached_tokens=self.cached_prefix_tokens,
                                        output_words=self.rng.randrange(250, 450)))
            findings.append(reply.choices[0].message.content or "")
        stats.calls += 1
        self.claude.messages.create(
            model=self.reviewer_model, max_tokens=4096,
            system="You are a senior counsel. Be precise and conservative.",
            messages=[{"role": "user", "content": "Findings so far:\n" + "\n\n".join(findings)
                       + "\n\nThe clauses at issue:\n" + self.section(self.excerpt_words)
                       + "\n\nWrite the risk review with a recommendation."}],
            extra_headers=_simulate((0.20, 0.45), self.rng, cached_tokens=self.cached_prefix_tokens,
                                    output_words=self.rng.randrange(600, 1000)))
        return stats


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------

def build(name: str, stub_url: str, rng: random.Random, failure_rate: float) -> Any:
    base = stub_url.rstrip("/")
    oai = openai.OpenAI(base_url=base + "/v1", api_key=OPENAI_KEY, max_retries=0, timeout=30)
    claude = anthropic.Anthropic(base_url=base, api_key=ANTHROPIC_KEY, max_retries=0, timeout=30)
    if name == "support":
        return SupportAgent(oai, rng)
    if name == "research":
        return ResearchAgent(claude, rng)
    if name == "flaky":
        return FlakyAgent(oai, rng, failure_rate)
    return CostlyAgent(oai, claude, rng)


def _wait_for_release(seconds: float) -> None:
    """Stay alive up to `seconds`, or until stdin is closed (the demo runner closes it after scraping)."""
    deadline = time.monotonic() + seconds
    try:
        fd = sys.stdin.fileno()
    except (AttributeError, OSError, ValueError):
        time.sleep(seconds)
        return
    while (left := deadline - time.monotonic()) > 0:
        try:
            ready, _, _ = select.select([fd], [], [], left)
        except (OSError, ValueError):
            time.sleep(left)
            return
        if ready and not os.read(fd, 4096):
            return  # EOF


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agentwatch.tooling.demo.agents",
                                     description="Run one demo agent against the stub LLM server.")
    parser.add_argument("--agent", choices=AGENTS, required=True)
    parser.add_argument("--runs", type=int, default=5,
                        help="agent runs to do (default 5; 0: no limit, with --duration)")
    parser.add_argument("--interval", type=float, default=0.0,
                        help="seconds between the starts of consecutive runs (default 0: back to back)")
    parser.add_argument("--duration", type=float, default=0.0,
                        help="start no run later than this many seconds after the first (default 0: no limit)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--stub-url", required=True, help="base URL of the stub server, e.g. http://127.0.0.1:8765")
    parser.add_argument("--failure-rate", type=float, default=0.3,
                        help="flaky agent: share of tool calls and LLM calls that fail (0..1)")
    parser.add_argument("--progress-file", help="append one line per finished run to this file")
    parser.add_argument("--linger", type=float, default=0.0,
                        help="seconds to stay alive after the last run (ends early when stdin closes)")
    args = parser.parse_args(argv)
    if not 0.0 <= args.failure_rate <= 1.0:
        parser.error("--failure-rate must be within 0..1")
    if args.runs < 0 or args.interval < 0 or args.duration < 0:
        parser.error("--runs, --interval and --duration must not be negative")
    if args.runs == 0 and args.duration == 0:
        parser.error("--runs 0 (no limit) needs --duration")

    rng = random.Random(f"{args.seed}:{args.agent}")
    agent = build(args.agent, args.stub_url, rng, args.failure_rate)
    progress = open(args.progress_file, "a", encoding="utf-8", buffering=1) if args.progress_file else None  # noqa: SIM115
    try:
        first = time.monotonic()
        index = 0
        while args.runs == 0 or index < args.runs:
            if args.duration and time.monotonic() - first >= args.duration:
                break
            if args.interval and index:
                time.sleep(max(0.0, first + index * args.interval - time.monotonic()))
            try:
                with agentwatch.agent_run(args.agent, conversation_id=f"{args.agent}-{args.seed}-{index}") as run:
                    stats = agent.run(index)
                    if stats.failed:
                        run.fail("gave up after retries", error_type="retries_exhausted")
            except (openai.APIError, anthropic.APIError) as exc:
                # A production agent logs and moves on to the next request instead of dying.
                print(f"{args.agent}: run {index + 1} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
                stats = RunStats(failed=True)
            if progress is not None:
                progress.write(f"run {index + 1} {'failed' if stats.failed else 'ok'} calls={stats.calls} "
                               f"tool_errors={stats.tool_errors} retries={stats.retries}\n")
            index += 1
        if progress is not None:
            progress.write("done\n")
    finally:
        if progress is not None:
            progress.close()
    if args.linger > 0:
        _wait_for_release(args.linger)
    return 0


if __name__ == "__main__":
    sys.exit(main())
