"""Per-call cost of pricing an LLM call: agentwatch's memoized PriceBook vs genai_prices.calc_price.

Pricing runs on the span-end path of every LLM call, so it must stay in the low microseconds (< 5 µs per
span), tiered models (claude-sonnet-4-5, gemini-2.5-pro: a cliff on total input tokens) included.
Run: .venv/bin/python bench/bench_pricing.py   (plain script; median of timed batches)
"""

from __future__ import annotations

import statistics
import time

import genai_prices

from agentwatch import pricing
from agentwatch.pricing import PriceBook, TokenUsage, genai_prices_usage

ROUNDS = 30
BATCH = 2_000

USAGE = TokenUsage(12_000, 800, cache_read_tokens=8_000, cache_write_tokens=0, reasoning_tokens=300)
LONG_USAGE = TokenUsage(250_000, 800, cache_read_tokens=200_000, cache_write_tokens=0, reasoning_tokens=300)


GP_USAGE = genai_prices_usage(USAGE)


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


def median_miss_us(provider: str, model: str, usage: TokenUsage, n: int = 200) -> float:
    """First lookup of a (provider, model) pair, on a fresh book each time."""
    samples = []
    for _ in range(n):
        fresh = PriceBook()
        start = time.perf_counter_ns()
        fresh.cost(provider, model, usage)
        samples.append((time.perf_counter_ns() - start) / 1_000)
    return statistics.median(samples)


def main() -> None:
    book = PriceBook()
    # The genai-prices fallback, forced on a tiered model, for comparison (no bundled model needs it).
    forced = PriceBook()
    forced._memo[("anthropic", "claude-sonnet-4-5")] = pricing._GenaiPricesFallback(
        _model_price("anthropic", "claude-sonnet-4-5")
    )
    cases = [
        ("PriceBook.cost  hit, float path    (openai gpt-4o-mini)",
         lambda: book.cost("openai", "gpt-4o-mini", USAGE)),
        ("PriceBook.cost  hit, float path    (anthropic claude-3-5-haiku)",
         lambda: book.cost("anthropic", "claude-3-5-haiku", USAGE)),
        ("PriceBook.cost  hit, tiered float  (anthropic claude-sonnet-4-5, 12k in)",
         lambda: book.cost("anthropic", "claude-sonnet-4-5", USAGE)),
        ("PriceBook.cost  hit, tiered float  (anthropic claude-sonnet-4-5, 250k in)",
         lambda: book.cost("anthropic", "claude-sonnet-4-5", LONG_USAGE)),
        ("PriceBook.cost  hit, tiered float  (gcp.gemini gemini-2.5-pro, 250k in)",
         lambda: book.cost("gcp.gemini", "gemini-2.5-pro", LONG_USAGE)),
        ("PriceBook.cost  hit, unknown model (-> None)",
         lambda: book.cost("openai", "my-private-model", USAGE)),
        ("PriceBook.cost  hit, forced genai-prices fallback (claude-sonnet-4-5)",
         lambda: forced.cost("anthropic", "claude-sonnet-4-5", USAGE)),
        ("genai_prices.calc_price (openai gpt-4o-mini)",
         lambda: genai_prices.calc_price(GP_USAGE, "gpt-4o-mini", provider_id="openai")),
        ("genai_prices.calc_price (anthropic claude-sonnet-4-5)",
         lambda: genai_prices.calc_price(GP_USAGE, "claude-sonnet-4-5", provider_id="anthropic")),
    ]
    # Sanity: the float paths and genai-prices agree on the benchmarked calls, and take the expected path.
    for provider, otel, model, usage in [
        ("openai", "openai", "gpt-4o-mini", USAGE),
        ("anthropic", "anthropic", "claude-sonnet-4-5", USAGE),
        ("anthropic", "anthropic", "claude-sonnet-4-5", LONG_USAGE),
        ("google", "gcp.gemini", "gemini-2.5-pro", LONG_USAGE),
    ]:
        fast = book.cost(otel, model, usage)
        ref = float(genai_prices.calc_price(genai_prices_usage(usage), model, provider_id=provider).total_price)
        assert fast is not None and abs(fast - ref) <= 1e-9 * ref, (model, fast, ref)
    assert type(book._memo[("anthropic", "claude-sonnet-4-5")]) is pricing._TieredRates
    assert type(book._memo[("gcp.gemini", "gemini-2.5-pro")]) is pricing._TieredRates
    assert type(forced._memo[("anthropic", "claude-sonnet-4-5")]) is pricing._GenaiPricesFallback

    results = {name: median_us_per_call(fn) for name, fn in cases}
    results["PriceBook.cost  miss (first lookup, dated name)"] = median_miss_us(
        "openai", "gpt-4o-mini-2024-07-18", USAGE
    )
    results["PriceBook.cost  miss (first lookup, tiered claude-sonnet-4-5)"] = median_miss_us(
        "anthropic", "claude-sonnet-4-5", USAGE
    )

    width = max(map(len, results))
    print(f"median µs per call ({ROUNDS} rounds x {BATCH} calls; genai-prices {genai_prices.__version__})")
    for name, us in results.items():
        print(f"  {name:<{width}}  {us:9.2f} µs")
    hit = results[cases[0][0]]
    tiered_hit = results[cases[2][0]]
    print(f"  speed-up of a float-path hit over calc_price: {results[cases[7][0]] / hit:.0f}x")
    print(f"  speed-up of a tiered float-path hit over calc_price: {results[cases[8][0]] / tiered_hit:.0f}x")


def _model_price(provider_id: str, model: str):
    from datetime import datetime, timezone

    from genai_prices import data_snapshot

    snapshot = data_snapshot.get_snapshot()
    provider = data_snapshot.find_provider_by_id(snapshot.providers, provider_id)
    return provider.find_model(model, all_providers=snapshot.providers).get_prices(datetime.now(tz=timezone.utc))


if __name__ == "__main__":
    main()
