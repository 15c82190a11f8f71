"""Per-call cost of pricing an LLM call: agentwatch's memoized PriceBook vs genai_prices.calc_price.

Pricing runs on the span-end path of every LLM call, so it must stay in the low microseconds.
Run: .venv/bin/python bench/bench_pricing.py   (plain script; median of timed batches)
"""

from __future__ import annotations

import statistics
import time

import genai_prices
from genai_prices import Usage

from agentwatch.pricing import PriceBook, TokenUsage

ROUNDS = 30
BATCH = 2_000

USAGE = TokenUsage(12_000, 800, cache_read_tokens=8_000, cache_write_tokens=0, reasoning_tokens=300)
GP_USAGE = Usage(
    input_tokens=12_000, output_tokens=800, cache_read_tokens=8_000, cache_write_tokens=0, output_reasoning_tokens=300
)


def median_us_per_call(fn, batch: int = BATCH, rounds: int = ROUNDS) -> float:
    """Median over `rounds` timed batches of `batch` calls, in µs per call (batches amortize timer cost)."""
    for _ in range(batch):  # warm up: memo filled, caches hot
        fn()
    samples = []
    for _ in range(rounds):
        start = time.perf_counter_ns()
        for _ in range(batch):
            fn()
        samples.append((time.perf_counter_ns() - start) / batch / 1_000)
    return statistics.median(samples)


def main() -> None:
    book = PriceBook()
    cases = [
        ("PriceBook.cost  hit, float path    (openai gpt-4o-mini)",
         lambda: book.cost("openai", "gpt-4o-mini", USAGE)),
        ("PriceBook.cost  hit, float path    (anthropic claude-3-5-haiku)",
         lambda: book.cost("anthropic", "claude-3-5-haiku", USAGE)),
        ("PriceBook.cost  hit, unknown model (-> None)",
         lambda: book.cost("openai", "my-private-model", USAGE)),
        ("PriceBook.cost  hit, tiered -> genai-prices fallback (claude-sonnet-4-5)",
         lambda: book.cost("anthropic", "claude-sonnet-4-5", USAGE)),
        ("genai_prices.calc_price (openai gpt-4o-mini)",
         lambda: genai_prices.calc_price(GP_USAGE, "gpt-4o-mini", provider_id="openai")),
        ("genai_prices.calc_price (anthropic claude-sonnet-4-5)",
         lambda: genai_prices.calc_price(GP_USAGE, "claude-sonnet-4-5", provider_id="anthropic")),
    ]
    # Sanity: the fast path and genai-prices agree on the benchmarked call.
    fast = book.cost("openai", "gpt-4o-mini", USAGE)
    ref = float(genai_prices.calc_price(GP_USAGE, "gpt-4o-mini", provider_id="openai").total_price)
    assert fast is not None and abs(fast - ref) <= 1e-9 * ref, (fast, ref)

    results = {name: median_us_per_call(fn) for name, fn in cases}

    # A miss: first lookup of a (provider, model) pair, on a fresh book each time.
    samples = []
    for _ in range(200):
        fresh = PriceBook()
        start = time.perf_counter_ns()
        fresh.cost("openai", "gpt-4o-mini-2024-07-18", USAGE)
        samples.append((time.perf_counter_ns() - start) / 1_000)
    results["PriceBook.cost  miss (first lookup, dated name)"] = statistics.median(samples)

    width = max(map(len, results))
    print(f"median µs per call ({ROUNDS} rounds x {BATCH} calls; genai-prices {genai_prices.__version__})")
    for name, us in results.items():
        print(f"  {name:<{width}}  {us:9.2f} µs")
    hit = results[cases[0][0]]
    ref_us = results[cases[4][0]]
    print(f"  speed-up of a float-path hit over calc_price: {ref_us / hit:.0f}x")


if __name__ == "__main__":
    main()
