"""agentwatch.pricing: equivalence with genai-prices, memoization, overrides and their validation."""

from __future__ import annotations

import math
import textwrap
from decimal import Decimal

import genai_prices
import pytest
from genai_prices import Usage, data_snapshot
from genai_prices.types import ModelPrice, Provider, Tier, TieredPrices

from agentwatch import pricing
from agentwatch.pricing import PriceBook, PricingConfigError, TokenUsage, default_price_book
from agentwatch.config import ENV_PRICES_FILE

TEST_LAYER = "unit"  # every test here is unit unless marked otherwise (conftest.py)

SNAPSHOT = data_snapshot.get_snapshot()
PROVIDERS = {p.id: p for p in SNAPSHOT.providers}

# Every model of these providers is checked against genai_prices.calc_price.
EQUIVALENCE_PROVIDERS = [
    "openai", "anthropic", "google", "aws", "azure", "mistral", "x-ai", "deepseek", "groq", "cohere",
    "perplexity", "openrouter",
]

BASE_USAGES = [
    TokenUsage(0, 0),
    TokenUsage(1_000, 500),
    TokenUsage(12_345, 678, cache_read_tokens=10_000),
    TokenUsage(50_000, 2_000, cache_write_tokens=40_000),
    TokenUsage(80_000, 3_000, cache_read_tokens=30_000, cache_write_tokens=20_000, reasoning_tokens=1_500),
    TokenUsage(7, 1_000_000, reasoning_tokens=999_999),
    TokenUsage(300_000, 10_000, cache_read_tokens=100_000, reasoning_tokens=5_000),  # past 128k/200k/272k tiers
    TokenUsage(1_500_000, 40_000, cache_read_tokens=1_000_000, cache_write_tokens=400_000, reasoning_tokens=39_999),
]


def _gp_usage(u: TokenUsage) -> Usage:
    return Usage(
        input_tokens=u.input_tokens,
        output_tokens=u.output_tokens,
        cache_read_tokens=u.cache_read_tokens,
        cache_write_tokens=u.cache_write_tokens,
        output_reasoning_tokens=u.reasoning_tokens,
    )


def _current_prices(model) -> dict[str, object]:
    from datetime import datetime, timezone

    mp = model.get_prices(datetime.now(tz=timezone.utc))
    return {k: v for k, v in vars(mp).items() if not k.startswith("_") and v is not None}


def _is_tiered(prices: dict[str, object]) -> bool:
    return any(isinstance(v, TieredPrices) for v in prices.values())


def _tier_usages(prices: dict[str, object]) -> list[TokenUsage]:
    """Usages just below, at and just past each tier threshold of the model (cliff pricing on total input)."""
    usages = []
    for value in prices.values():
        if isinstance(value, TieredPrices):
            for tier in value.tiers:
                for n in (tier.start - 1, tier.start, tier.start + 1):
                    usages.append(TokenUsage(n, 1_000, cache_read_tokens=n // 2, cache_write_tokens=n // 4,
                                             reasoning_tokens=300))
    return usages


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-15)


@pytest.mark.parametrize("provider_id", EQUIVALENCE_PROVIDERS)
def test_cost_equals_genai_prices_for_every_model(provider_id):
    book = PriceBook()
    checked = 0
    for model in PROVIDERS[provider_id].models:
        prices = _current_prices(model)
        if prices and not any(k.endswith("_mtok") for k in prices):
            # Priced per audio hour / character / page (whisper, tts, OCR...): a token count cannot price
            # it, and genai-prices would answer 0 for token-only usage. agentwatch says "unknown" instead.
            assert book.cost(provider_id, model.id, TokenUsage(1_000, 100)) is None, model.id
            assert not book.has_price(provider_id, model.id)
            continue
        for usage in BASE_USAGES + _tier_usages(prices):
            try:
                expected = genai_prices.calc_price(_gp_usage(usage), model.id, provider_id=provider_id)
            except LookupError:  # the id does not resolve in genai-prices either
                assert book.cost(provider_id, model.id, usage) is None, model.id
                continue
            got = book.cost(provider_id, model.id, usage)
            assert got is not None, (model.id, usage)
            assert _close(got, float(expected.total_price)), (model.id, usage, got, expected.total_price)
            checked += 1
            # ...and on the float path: no model of the bundled data needs genai-prices' own calculation,
            # tiered ones (cliff on total input) included.
            entry = book._memo[(provider_id, model.id)]
            assert type(entry) in (tuple, pricing._TieredRates), (model.id, entry)
            assert (type(entry) is pricing._TieredRates) == _is_tiered(prices), (model.id, entry)
    assert checked > 0


def test_every_tiered_model_of_every_provider_takes_the_float_path():
    """All TieredPrices models in the bundled data (claude-sonnet-4-5, gemini-2.5-pro, gpt-5.4, ...), any
    provider: float path, equal to genai-prices just below, at and just past every tier start."""
    tiered = 0
    for provider in SNAPSHOT.providers:
        book = PriceBook()
        for model in provider.models:
            prices = _current_prices(model)
            if not _is_tiered(prices):
                continue
            for usage in BASE_USAGES + _tier_usages(prices):
                try:
                    expected = genai_prices.calc_price(_gp_usage(usage), model.id, provider_id=provider.id)
                except LookupError:
                    continue
                got = book.cost(provider.id, model.id, usage)
                assert got is not None and _close(got, float(expected.total_price)), (
                    provider.id, model.id, usage, got, expected.total_price)
                assert type(book._memo[(provider.id, model.id)]) is pricing._TieredRates, (provider.id, model.id)
                tiered += 1
    assert tiered > 100 * len(BASE_USAGES)


def test_no_bundled_model_needs_the_genai_prices_fallback():
    from datetime import datetime, timezone

    now = datetime.now(tz=timezone.utc)
    fallbacks = [
        f"{p.id}:{m.id}"
        for p in SNAPSHOT.providers
        for m in p.models
        if isinstance(pricing._entry_for(m.get_prices(now)), pricing._GenaiPricesFallback)
    ]
    assert fallbacks == []


def test_most_models_take_the_float_path():
    """The fast path must cover the common models, tiered ones too; only exotic prices fall back."""
    book = PriceBook()
    for provider, model in [("openai", "gpt-4o-mini"), ("openai", "gpt-4.1"), ("anthropic", "claude-3-5-haiku"),
                            ("anthropic", "claude-opus-4-1"), ("openai", "text-embedding-3-small")]:
        assert book.has_price(provider, model)
        assert type(book._memo[(provider, model)]) is tuple, model
    for provider, model in [("anthropic", "claude-sonnet-4-5"), ("gcp.gemini", "gemini-2.5-pro"),
                            ("anthropic", "claude-sonnet-4-5-20250929"), ("openai", "gpt-5.4")]:
        assert book.has_price(provider, model)
        assert type(book._memo[(provider, model)]) is pricing._TieredRates, model


# --- provider names and model name resolution ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("otel_provider", "genai_provider", "model"),
    [
        ("azure.ai.openai", "azure", "gpt-4o"),
        ("aws.bedrock", "aws", "anthropic.claude-3-5-sonnet-20241022-v2:0"),
        ("gcp.gemini", "google", "gemini-2.0-flash"),
        ("gcp.vertex_ai", "google", "gemini-2.0-flash"),
        ("mistral_ai", "mistral", "mistral-large-latest"),
        ("x_ai", "x-ai", "grok-4"),
        ("groq", "groq", "llama-3.3-70b-versatile"),
        ("deepseek", "deepseek", "deepseek-chat"),
        ("cohere", "cohere", "command-r-plus"),
        ("perplexity", "perplexity", "sonar"),
    ],
)
def test_otel_provider_names_map_to_genai_prices(otel_provider, genai_provider, model):
    usage = TokenUsage(10_000, 1_000, cache_read_tokens=2_000)
    expected = genai_prices.calc_price(_gp_usage(usage), model, provider_id=genai_provider)
    got = PriceBook().cost(otel_provider, model, usage)
    assert got is not None and _close(got, float(expected.total_price))


def test_dated_response_model_resolves_to_the_base_model():
    book = PriceBook()
    usage = TokenUsage(1_000, 200, cache_read_tokens=100)
    assert book.cost("openai", "gpt-4o-mini-2024-07-18", usage) == book.cost("openai", "gpt-4o-mini", usage)
    assert book.cost("openai", "GPT-4o-mini", usage) == book.cost("openai", "gpt-4o-mini", usage)
    assert book.cost("anthropic", "claude-3-5-sonnet-20241022", usage) == book.cost(
        "anthropic", "claude-3-5-sonnet", usage
    )
    assert book.cost("anthropic", "claude-sonnet-4-5-20250929", usage) == book.cost(
        "anthropic", "claude-sonnet-4-5", usage
    )


def test_unknown_provider_searches_by_model_name():
    book = PriceBook()
    usage = TokenUsage(1_000, 200)
    assert book.cost("some-gateway", "gpt-4o-mini", usage) == book.cost("openai", "gpt-4o-mini", usage)
    assert book.cost(None, "claude-3-5-haiku", usage) == book.cost("anthropic", "claude-3-5-haiku", usage)


def test_known_provider_does_not_borrow_another_providers_model():
    # An OpenAI-compatible self-hosted server reports provider "openai": a Claude name must not be priced.
    assert PriceBook().cost("openai", "claude-3-5-haiku", TokenUsage(1_000, 200)) is None


def test_cache_and_reasoning_are_priced_separately():
    book = PriceBook()
    # claude-3-5-sonnet: input 3, cache write 3.75, cache read 0.3, output 15 (USD per MTok).
    usage = TokenUsage(1_000_000, 1_000_000, cache_read_tokens=500_000, cache_write_tokens=250_000)
    assert _close(book.cost("anthropic", "claude-3-5-sonnet", usage), 0.25 * 3 + 0.5 * 0.3 + 0.25 * 3.75 + 15)
    # gpt-4o-mini has no cache write price: written tokens cost the input price, as in genai-prices.
    usage = TokenUsage(1_000_000, 0, cache_read_tokens=400_000, cache_write_tokens=100_000)
    assert _close(book.cost("openai", "gpt-4o-mini", usage), 0.5 * 0.15 + 0.4 * 0.075 + 0.1 * 0.15)


# --- memoization -------------------------------------------------------------------------------------------
def test_second_lookup_does_not_touch_genai_prices(monkeypatch):
    calls = []
    original = Provider.find_model

    def counting_find_model(self, model_ref, **kwargs):
        calls.append(model_ref)
        return original(self, model_ref, **kwargs)

    monkeypatch.setattr(Provider, "find_model", counting_find_model)
    book = PriceBook()
    usage = TokenUsage(1_000, 100)
    first = book.cost("openai", "gpt-4o-mini", usage)
    assert len(calls) == 1

    def forbidden(*args, **kwargs):
        raise AssertionError("genai-prices called on a memo hit")

    monkeypatch.setattr(ModelPrice, "calc_price", forbidden)
    monkeypatch.setattr(data_snapshot, "get_snapshot", forbidden)
    for _ in range(3):
        assert book.cost("openai", "gpt-4o-mini", usage) == first
    assert book.has_price("openai", "gpt-4o-mini")
    assert len(calls) == 1


def test_unknown_models_are_memoized_too(monkeypatch):
    book = PriceBook()
    assert book.cost("openai", "no-such-model-xyz", TokenUsage(1, 1)) is None
    monkeypatch.setattr(data_snapshot, "get_snapshot", lambda: pytest.fail("looked up again"))
    assert book.cost("openai", "no-such-model-xyz", TokenUsage(1, 1)) is None


def test_memo_is_bounded():
    book = PriceBook()
    book._max_entries = 16
    for i in range(200):
        book.cost("openai", f"ft:gpt-4o-mini:acme::{i}", TokenUsage(1, 1))
        book.cost("openai", "gpt-4o-mini" if i % 2 else "gpt-4.1", TokenUsage(1, 1))
    assert len(book._memo) <= 16
    assert pricing.MEMO_MAX_ENTRIES == 2048 and PriceBook()._max_entries == 2048


def test_clear_forgets_memoized_prices():
    book = PriceBook()
    book.cost("openai", "gpt-4o-mini", TokenUsage(1, 1))
    book.clear()
    assert book._memo == {}
    assert book.cost("openai", "gpt-4o-mini", TokenUsage(1, 1)) is not None


# --- tiered prices -----------------------------------------------------------------------------------------
def test_tiered_model_across_the_tier_boundary():
    model = next(m for m in PROVIDERS["anthropic"].models if m.id == "claude-sonnet-4-5")
    price = _current_prices(model)["input_mtok"]
    assert isinstance(price, TieredPrices) and price.tiers[0].start == 200_000
    base, tier = float(price.base), float(price.tiers[0].price)
    out_price = _current_prices(model)["output_mtok"]
    out_base, out_tier = float(out_price.base), float(out_price.tiers[0].price)
    book = PriceBook()
    at = book.cost("anthropic", "claude-sonnet-4-5", TokenUsage(200_000, 1_000))
    past = book.cost("anthropic", "claude-sonnet-4-5", TokenUsage(200_001, 1_000))
    assert _close(at, (200_000 * base + 1_000 * out_base) / 1e6)
    # A cliff: past the threshold EVERY token, input and output, takes the tier rate.
    assert _close(past, (200_001 * tier + 1_000 * out_tier) / 1e6)
    entry = book._memo[("anthropic", "claude-sonnet-4-5")]
    assert type(entry) is pricing._TieredRates and entry.starts == (200_000,)  # the float path, not genai-prices


def test_tiered_float_path_mirrors_calc_unit_price():
    """Synthetic prices beyond the bundled data: several tiers, different starts per part, a tie at one
    start, a tiered per-request fee, a tiered part TokenUsage never reports. Every input count around every
    start must price as genai-prices' ModelPrice.calc_price (tier applies when input_tokens > start)."""
    mp = ModelPrice(
        input_mtok=TieredPrices(Decimal("1"), [Tier(100, Decimal("2")), Tier(300, Decimal("4"))]),
        cache_read_mtok=TieredPrices(Decimal("0.1"), [Tier(300, Decimal("0.3")), Tier(300, Decimal("0.5"))]),
        cache_write_mtok=TieredPrices(Decimal("1.25"), [Tier(100, Decimal("2.5"))]),
        output_mtok=TieredPrices(Decimal("10"), [Tier(200, Decimal("20"))]),
        output_reasoning_mtok=Decimal("7"),
        requests_kcount=TieredPrices(Decimal("5"), [Tier(0, Decimal("6")), Tier(250, Decimal("8"))]),
        cache_write_1h_mtok=TieredPrices(Decimal("9"), [Tier(50, Decimal("99"))]),
    )
    entry = pricing._entry_for(mp)
    assert type(entry) is pricing._TieredRates and entry.starts == (0, 100, 200, 250, 300)
    book = PriceBook()
    book._memo[("synthetic", "tiered")] = entry
    for n in sorted({s + d for s in (0, 50, 100, 200, 250, 300) for d in (-1, 0, 1)} | {1_000}):
        if n < 0:
            continue
        usage = TokenUsage(n, 40, cache_read_tokens=n // 2, cache_write_tokens=n // 5, reasoning_tokens=15)
        expected = float(mp.calc_price(_gp_usage(usage))["total_price"])
        assert _close(book.cost("synthetic", "tiered", usage), expected), (n, expected)


@pytest.mark.filterwarnings("ignore:Unsupported price key:UserWarning")
def test_price_keys_outside_the_registry_fall_back_to_genai_prices():
    # A price key genai-prices' unit registry does not know (newer data than this code): genai-prices warns
    # and ignores it; agentwatch does not guess and keeps genai-prices' own calculation for the model.
    mp = ModelPrice(
        input_mtok=TieredPrices(Decimal("1"), [Tier(100, Decimal("2"))]),
        output_mtok=Decimal("3"),
        hologram_mtok=Decimal("5"),
    )
    entry = pricing._entry_for(mp)
    assert type(entry) is pricing._GenaiPricesFallback
    book = PriceBook()
    book._memo[("synthetic", "odd")] = entry
    for n in (100, 101):
        usage = TokenUsage(n, 10, cache_read_tokens=7)
        assert _close(book.cost("synthetic", "odd", usage), float(mp.calc_price(_gp_usage(usage))["total_price"]))
    assert book.cost("synthetic", "odd", TokenUsage(10, 11, reasoning_tokens=12)) is None


@pytest.mark.parametrize(
    "bad",
    [
        {"input_mtok": TieredPrices(Decimal("1"), [Tier(Decimal("100.5"), Decimal("2"))])},  # non-int start
        {"input_mtok": TieredPrices(Decimal("1"), [Tier(-1, Decimal("2"))])},
        {"input_mtok": TieredPrices(Decimal("1"), [Tier(100, Decimal("-2"))])},
        {"output_mtok": TieredPrices(Decimal("NaN"), [])},
        {"cache_write_mtok": Decimal("1"), "cache_write_1h_mtok": Decimal("-1")},  # never reported: validated
        {"cache_write_1h_mtok": Decimal("1")},  # a priced part without its parent's (cache_write) price
    ],
)
def test_price_data_genai_prices_rejects_leaves_the_model_unpriced(bad):
    mp = ModelPrice(**{"input_mtok": Decimal("1"), "output_mtok": Decimal("2"), **bad})
    with pytest.raises(ValueError):
        mp.calc_price(_gp_usage(TokenUsage(1_000, 10)))
    with pytest.raises(ValueError):
        pricing._entry_for(mp)  # PriceBook._resolve turns this into None: unpriced, never a wrong cost


def test_tiered_gemini_matches_genai_prices():
    book = PriceBook()
    for n in (199_999, 200_000, 200_001, 500_000):
        usage = TokenUsage(n, 5_000, cache_read_tokens=n // 3, reasoning_tokens=1_000)
        expected = genai_prices.calc_price(_gp_usage(usage), "gemini-2.5-pro", provider_id="google")
        assert _close(book.cost("gcp.gemini", "gemini-2.5-pro", usage), float(expected.total_price))


# --- unknown, zero, odd input ----------------------------------------------------------------------------
def test_unknown_model_is_none_never_zero():
    book = PriceBook()
    assert book.cost("openai", "ft:gpt-4o-mini:acme::abc123", TokenUsage(1_000, 100)) is None
    assert book.cost("nobody", "totally-unknown-model", TokenUsage(1_000, 100)) is None
    assert not book.has_price("openai", "ft:gpt-4o-mini:acme::abc123")


def test_models_priced_in_non_token_units_are_unknown():
    book = PriceBook()
    assert book.cost("openai", "whisper-1", TokenUsage(1_000, 100)) is None  # USD per audio hour
    assert book.cost("openai", "tts-1", TokenUsage(1_000, 100)) is None  # USD per million characters


def test_model_listed_without_prices_is_a_known_zero():
    # genai-prices lists free models (OpenRouter ":free", moderation) with no prices: a known 0.0.
    assert PriceBook().cost("openai", "omni-moderation-latest", TokenUsage(1_000, 0)) == 0.0


@pytest.mark.parametrize(
    "model", ["", "   ", "x" * 10_000, "模型-🚀-ü", "\x00", None, 42, ("gpt-4o",), ["unhashable"]]
)
def test_odd_model_strings_never_raise(model):
    book = PriceBook()
    assert book.cost("openai", model, TokenUsage(1_000, 100)) is None
    assert book.has_price("openai", model) is False
    assert all(len(str(k[1])) <= pricing.MAX_NAME_LENGTH for k in book._memo)


@pytest.mark.parametrize("provider", ["p" * 10_000, 3.5, ["x"], "ü" * 10])
def test_odd_provider_never_raises(provider):
    book = PriceBook()
    result = book.cost(provider, "gpt-4o-mini", TokenUsage(1_000, 100))
    assert result is None or result > 0


@pytest.mark.parametrize(
    "usage",
    [
        TokenUsage(-1, 10),
        TokenUsage(10, -1),
        TokenUsage(10, 10, cache_read_tokens=11),
        TokenUsage(10, 10, cache_read_tokens=6, cache_write_tokens=6),
        TokenUsage(10, 10, reasoning_tokens=11),
        TokenUsage(10, 10, cache_write_tokens=-1),
        TokenUsage(None, 10),
        TokenUsage(10, None),
        TokenUsage("10", 10),
        TokenUsage(float("nan"), 10),
        TokenUsage(10, float("inf")),
        TokenUsage(10**400, 10),
    ],
)
def test_inconsistent_usage_is_unknown_not_an_error(usage):
    book = PriceBook()
    assert book.cost("openai", "gpt-4o-mini", usage) is None
    assert book.cost("anthropic", "claude-sonnet-4-5", usage) is None  # tiered float path too


def test_none_cache_and_reasoning_counts_mean_zero():
    book = PriceBook()
    assert book.cost("openai", "gpt-4o-mini", TokenUsage(1_000, 100, None, None, None)) == book.cost(
        "openai", "gpt-4o-mini", TokenUsage(1_000, 100)
    )


# --- override file -----------------------------------------------------------------------------------------
def _write(tmp_path, text: str):
    path = tmp_path / "prices.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_override_file_from_the_design_example(tmp_path):
    path = _write(
        tmp_path,
        """\
        # prices in USD per million tokens
        models:
          - model: ft:gpt-4o-mini:acme::abc123     # exact model name (case-insensitive)
            provider: openai                       # optional; omitted = any provider
            input: 0.30
            output: 1.20
            cache_read: 0.15
            cache_write: 0.375
            reasoning: 1.20
          - model_prefix: my-llama-
            input: 0
            output: 0
        """,
    )
    book = PriceBook(path)
    usage = TokenUsage(1_000_000, 1_000_000, cache_read_tokens=200_000, cache_write_tokens=100_000,
                       reasoning_tokens=300_000)
    expected = 0.7 * 0.30 + 0.2 * 0.15 + 0.1 * 0.375 + 0.7 * 1.20 + 0.3 * 1.20
    assert _close(book.cost("openai", "FT:GPT-4o-mini:acme::ABC123", usage), expected)
    assert book.cost("anthropic", "ft:gpt-4o-mini:acme::abc123", usage) is None  # provider-specific
    zero = book.cost("vllm", "my-llama-3-70b", usage)
    assert zero == 0.0 and zero is not None  # a KNOWN zero
    assert book.has_price("whatever", "My-Llama-8b")
    assert book.cost("vllm", "other-llama", usage) is None


def test_override_wins_over_bundled_data(tmp_path):
    path = _write(tmp_path, "models:\n  - {model: gpt-4o-mini, provider: openai, input: 1, output: 2}\n")
    usage = TokenUsage(1_000_000, 1_000_000, cache_read_tokens=500_000, reasoning_tokens=500_000)
    assert _close(PriceBook(path).cost("openai", "gpt-4o-mini", usage), 3.0)  # defaults: cache/reasoning = base
    assert not _close(PriceBook().cost("openai", "gpt-4o-mini", usage), 3.0)
    # The exact name does not cover the dated response model: that one still gets the bundled price.
    assert _close(
        PriceBook(path).cost("openai", "gpt-4o-mini-2024-07-18", usage),
        PriceBook().cost("openai", "gpt-4o-mini", usage),
    )


def test_override_precedence_and_provider_names(tmp_path):
    path = _write(
        tmp_path,
        """\
        models:
          - {model_prefix: acme-, input: 1, output: 1}
          - {model_prefix: acme-big-, input: 2, output: 2}
          - {model_prefix: acme-big-, provider: aws, input: 3, output: 3}
          - {model: acme-big-1, input: 4, output: 4}
          - {model: acme-big-1, provider: aws.bedrock, input: 5, output: 5}
        """,
    )
    book = PriceBook(path)
    mtok = TokenUsage(1_000_000, 0)
    assert book.cost("x", "acme-small", mtok) == 1.0
    assert book.cost("x", "acme-big-2", mtok) == 2.0  # longer prefix wins
    assert book.cost("aws.bedrock", "acme-big-2", mtok) == 3.0  # provider by genai-prices id "aws"
    assert book.cost("x", "acme-big-1", mtok) == 4.0  # exact beats prefix
    assert book.cost("aws.bedrock", "acme-big-1", mtok) == 5.0  # provider-specific beats provider-less
    assert book.cost("aws", "acme-big-1", mtok) == 5.0  # "aws.bedrock" and "aws" are the same provider
    assert book.cost("openai", "acme-big-1", mtok) == 4.0


def test_override_provider_matches_otel_name_or_genai_prices_id(tmp_path):
    path = _write(tmp_path, "models:\n  - {model: m1, provider: azure, input: 7, output: 0}\n")
    book = PriceBook(path)
    assert book.cost("azure.ai.openai", "m1", TokenUsage(1_000_000, 0)) == 7.0
    assert book.cost("azure", "m1", TokenUsage(1_000_000, 0)) == 7.0
    assert book.cost("openai", "m1", TokenUsage(1_000_000, 0)) is None
    with pytest.raises(PricingConfigError, match="duplicate"):
        PriceBook(_write(tmp_path, "models:\n  - {model: m1, provider: aws, input: 1, output: 1}\n"
                                   "  - {model: m1, provider: aws.bedrock, input: 2, output: 2}\n"))


def test_empty_models_list_is_valid(tmp_path):
    assert PriceBook(_write(tmp_path, "models: []\n")).cost("openai", "gpt-4o-mini", TokenUsage(1, 1))


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("models:\n  - {model: a, input: 1, output: 1, inptu: 2}\n", ["models[0]", "model 'a'", "unknown key", "'inptu'"]),
        ("models:\n  - {model: a, output: 1}\n", ["models[0]", "model 'a'", "missing required price 'input'"]),
        ("models:\n  - {model: a, input: 1}\n", ["models[0]", "model 'a'", "missing required price 'output'"]),
        ("models:\n  - {model: a, input: -1, output: 1}\n", ["models[0]", "price 'input'", ">= 0", "-1"]),
        ("models:\n  - {model: a, input: 1, output: 1, cache_read: -0.5}\n", ["price 'cache_read'", ">= 0"]),
        ("models:\n  - {model: a, input: cheap, output: 1}\n", ["price 'input'", "must be a number", "cheap"]),
        ("models:\n  - {model: a, input: 1e-6, output: 1}\n", ["price 'input'", "must be a number", "1.0e-6"]),
        ("models:\n  - {model: a, input: true, output: 1}\n", ["price 'input'", "must be a number", "bool"]),
        ("models:\n  - {model: a, input: .nan, output: 1}\n", ["price 'input'", "finite"]),
        ("models:\n  - {model: a, input: 1, output: .inf}\n", ["price 'output'", "finite"]),
        ("models:\n  - {input: 1, output: 1}\n", ["models[0]", "exactly one of 'model'", "'model_prefix'"]),
        ("models:\n  - {model: a, model_prefix: a, input: 1, output: 1}\n", ["models[0]", "exactly one of 'model'"]),
        ("models:\n  - {model: '', input: 1, output: 1}\n", ["models[0]", "'model' must be a non-empty string"]),
        ("models:\n  - {model: 42, input: 1, output: 1}\n", ["'model' must be a non-empty string", "int"]),
        ("models:\n  - {model: a, provider: 3, input: 1, output: 1}\n", ["'provider' must be a non-empty string"]),
        ("models:\n  - {model: a, input: 1, output: 1}\n  - {model: A, input: 2, output: 2}\n",
         ["models[1]", "duplicate of models[0]"]),
        ("models:\n  - just-a-string\n", ["models[0]", "expected a mapping", "just-a-string"]),
        ("models: {model: a}\n", ["'models' must be a list"]),
        ("model: a\ninput: 1\n", ["exactly one key 'models'"]),
        ("", ["exactly one key 'models'", "nothing"]),
        ("models: [\n", ["not valid YAML"]),
    ],
)
def test_override_validation_errors(tmp_path, text, fragments):
    path = _write(tmp_path, text)
    with pytest.raises(PricingConfigError) as excinfo:
        PriceBook(path)
    message = str(excinfo.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_missing_override_file(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(PricingConfigError, match="nope.yaml.*cannot read"):
        PriceBook(missing)
    assert issubclass(PricingConfigError, ValueError)


# --- process-wide book ---------------------------------------------------------------------------------------
def test_default_price_book_reads_env_path_once(tmp_path, monkeypatch):
    path = _write(tmp_path, "models:\n  - {model: house-model, input: 10, output: 20}\n")
    monkeypatch.setattr(pricing, "_default_book", None)
    monkeypatch.setenv(ENV_PRICES_FILE, str(path))
    assert ENV_PRICES_FILE == "AGENTWATCH_PRICES_FILE"
    book = default_price_book()
    assert book.cost("any", "house-model", TokenUsage(1_000_000, 1_000_000)) == 30.0
    assert default_price_book() is book
    monkeypatch.delenv(ENV_PRICES_FILE)
    assert default_price_book() is book  # built once


def test_default_price_book_without_env(monkeypatch):
    monkeypatch.setattr(pricing, "_default_book", None)
    monkeypatch.delenv(ENV_PRICES_FILE, raising=False)
    book = default_price_book()
    assert book.cost("openai", "gpt-4o-mini", TokenUsage(1_000, 100)) is not None
    assert book.cost("any", "house-model", TokenUsage(1, 1)) is None


def test_default_price_book_bad_file_raises_clear_error(tmp_path, monkeypatch):
    path = _write(tmp_path, "models:\n  - {model: a, input: 1}\n")
    monkeypatch.setattr(pricing, "_default_book", None)
    monkeypatch.setenv(ENV_PRICES_FILE, str(path))
    with pytest.raises(PricingConfigError, match="missing required price 'output'"):
        default_price_book()


def test_prices_are_decimal_in_genai_prices():
    # Guard for the float fast path: genai-prices data is Decimal; a change of type should fail loudly here.
    model = next(m for m in PROVIDERS["openai"].models if m.id == "gpt-4o-mini")
    assert isinstance(_current_prices(model)["input_mtok"], Decimal)
