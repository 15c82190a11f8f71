"""Cost in USD of one LLM call, from the bundled `genai-prices` data plus the user's overrides.

Why not just call `genai_prices.calc_price` per span: it costs tens of µs per call (Decimal arithmetic,
unit decomposition, validation) on the span-end path of every LLM call. A `PriceBook` resolves a
(provider, model) pair ONCE, memoizes the result in a bounded dict, and prices later calls with plain
float arithmetic (about 1 µs; a tiered model adds one bisect over its few tier starts). Every price key
of genai-prices' unit registry is covered: the token parts TokenUsage reports, the per-request fee, and
the parts it never reports (audio, image, cache-write TTLs, ...: they add 0). Only a model with a price
key outside the registry, or with price data genai-prices itself rejects (negative, non-finite, a bad
tier start), keeps genai-prices' own `ModelPrice.calc_price` (~70 µs; rejected data makes the model
unpriced, as in genai-prices). No model in the bundled genai-prices data needs that fallback today.

Token semantics (OpenTelemetry GenAI conventions, and genai-prices' own):
  * `input_tokens` is the TOTAL input, INCLUDING `cache_read_tokens` and `cache_write_tokens`;
  * `output_tokens` is the TOTAL output, INCLUDING `reasoning_tokens`.
genai-prices prices the most specific priced part first and the rest at the parent price, so
  cost = (input - cache_read - cache_write) * input_price + cache_read * cache_read_price
       + cache_write * cache_write_price + (output - reasoning) * output_price
       + reasoning * reasoning_price [+ per-request fee]
where a part without its own price (no `cache_read_mtok`, no `output_reasoning_mtok`, ...) is simply
charged at its parent's price (input or output).

Tiered prices (`TieredPrices`: claude-sonnet-4-5, gemini-2.5-pro, gpt-5.4, ...) are a cliff, not marginal
tiers, exactly as genai-prices' `calc_unit_price`: a tier applies when the call's TOTAL `input_tokens` is
STRICTLY greater than the tier start (200_000 input tokens still pay the base rate, 200_001 pay the tier
rate), and then its rate applies to ALL tokens of that priced part -- input, cache, output and reasoning
alike, each part with its own tiers (the highest tier it has whose start is crossed; else its base). At
lookup time the float path collects the sorted distinct tier starts of the model and one float rate
vector per interval between them; a call picks its vector with `bisect_left(starts, input_tokens)`.

`cost()` returns None when the price is unknown (no such model, a model priced in non-token units such as
audio hours or characters, an odd model string) and never 0.0 for "unknown". 0.0 is a KNOWN zero: a
self-hosted model with price 0 in the override file, or a model genai-prices lists with no prices (free
tiers such as OpenRouter `:free` models). Inconsistent usage (negative counts, cache parts larger than the
input, reasoning larger than the output, missing input/output count) also gives None, so the caller marks
the call `cost_unknown` instead of recording a wrong cost.

Prices are resolved at lookup time ("now"). Time-dependent genai-prices data (a price change on a start
date, off-peak hours) and an auto-updated genai-prices snapshot are re-resolved only when the memo is
rebuilt: `PriceBook.clear()`, a new `PriceBook`, or eviction of the entry.

Override file (path in env `AGENTWATCH_PRICES_FILE`): models the bundled data lacks or prices differently
(fine-tuned, self-hosted, negotiated). An override WINS over bundled data. Format::

    # prices in USD per million tokens
    models:
      - model: ft:gpt-4o-mini:acme::abc123     # exact model name (case-insensitive)
        provider: openai                       # optional; omitted = any provider
        input: 0.30
        output: 1.20
        cache_read: 0.15                       # optional; default = input price
        cache_write: 0.375                     # optional; default = input price
        reasoning: 1.20                        # optional; default = output price
      - model_prefix: my-llama-                # prefix match instead of `model`
        input: 0
        output: 0

`provider` is an OTel `gen_ai.provider.name` or a genai-prices provider id; both sides are compared after
mapping OTel names to genai-prices ids, so `aws.bedrock` and `aws` name the same provider. When several entries match, an exact `model` beats a `model_prefix`, a longer prefix beats a shorter one,
and a provider-specific entry beats a provider-less one. Anything malformed (unknown keys, a missing or
negative or non-numeric price, both or neither of model/model_prefix, duplicates) raises
`PricingConfigError` naming the file, the entry and the problem.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from bisect import bisect_left
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Callable, Final, NamedTuple

from . import config

if TYPE_CHECKING:  # genai-prices (pydantic models, the price data) is imported on the first lookup only
    from genai_prices import Usage
    from genai_prices.types import ModelPrice, TieredPrices

__all__ = ("TokenUsage", "PriceBook", "PricingConfigError", "default_price_book")

_log = logging.getLogger(__name__)

MEMO_MAX_ENTRIES: Final = 2048
"""Memo bound per PriceBook: unbounded model strings (one per fine-tune, typos) cannot grow memory."""
MAX_NAME_LENGTH: Final = 256
"""Longer model/provider strings are not looked up nor memoized (no real model name is that long)."""

# OTel `gen_ai.provider.name` -> genai-prices provider id. Names not listed go to genai-prices as they
# are (its own provider matching); a provider it does not know means "search by model name".
PROVIDER_IDS: Final[dict[str, str]] = {
    "openai": "openai",
    "anthropic": "anthropic",
    "azure.ai.openai": "azure",
    "azure.ai.inference": "azure",
    "aws.bedrock": "aws",
    "gcp.gemini": "google",
    "gcp.vertex_ai": "google",
    "gcp.gen_ai": "google",
    "mistral_ai": "mistral",
    "groq": "groq",
    "deepseek": "deepseek",
    "x_ai": "x-ai",
    "cohere": "cohere",
    "perplexity": "perplexity",
}

# Price keys of the units TokenUsage reports, plus a per-request fee; the float path prices exactly these.
_INPUT, _OUTPUT = "input_mtok", "output_mtok"
_CACHE_READ, _CACHE_WRITE, _REASONING = "cache_read_mtok", "cache_write_mtok", "output_reasoning_mtok"
_REQUESTS = "requests_kcount"  # a flat fee per 1000 requests: every call is one request
_REPORTED_USAGE_KEYS: Final = frozenset(
    {"input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "output_reasoning_tokens"}
)


@lru_cache(maxsize=1)
def _zero_price_keys() -> frozenset[str]:
    """Price keys that add nothing to the cost of a TokenUsage, derived from genai-prices' unit registry.

    genai-prices charges each priced unit its own count minus its priced descendants' counts. A unit
    TokenUsage never reports (audio/image/video/text modality, cache-write TTLs, web searches, ...) has
    count 0 unless one of the reported units is its descendant (its dimensions a superset) -- then
    genai-prices would derive it, so it stays out of this set and falls back to genai-prices. (A "join"
    of two reported units cannot arise: the reported units are either nested, like input/cache_read,
    or conflict, like input/output.)
    """
    from genai_prices.data_units import unit_data

    reported = [frozenset(unit_data[k].get("dimensions", {}).items()) for k in _REPORTED_USAGE_KEYS]
    zero = set()
    for usage_key, unit in unit_data.items():
        if usage_key in _REPORTED_USAGE_KEYS or usage_key == "requests":
            continue
        dims = frozenset(unit.get("dimensions", {}).items())
        if not any(dims <= r for r in reported):
            zero.add(unit.get("price_key", usage_key))
    return frozenset(zero)


_FAST_KEYS: Final = frozenset({_INPUT, _OUTPUT, _CACHE_READ, _CACHE_WRITE, _REASONING, _REQUESTS})
_PER_MTOK: Final = 1_000_000.0
_INF: Final = math.inf


def _provider_id(provider: str) -> str | None:
    """The genai-prices id for an OTel provider name; other names pass through, lower-cased."""
    name = provider.strip().lower()
    return PROVIDER_IDS.get(name, name) or None


class PricingConfigError(ValueError):
    """A malformed override file; the message names the file, the entry and what is wrong."""


class TokenUsage(NamedTuple):
    """Token counts of one call, with OTel GenAI semantics (see the module docstring).

    `input_tokens` includes the cache read/write parts; `output_tokens` includes `reasoning_tokens`.
    A count the provider did not report may be None: None cache/reasoning counts mean 0, a None
    input/output count makes `cost()` return None. (A NamedTuple: immutable, and built on every LLM call,
    several times faster than a frozen dataclass.)
    """

    input_tokens: int
    output_tokens: int
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0


class _GenaiPricesFallback:
    """A model the float path cannot price exactly: genai-prices' own calculation, prices resolved once."""

    __slots__ = ("model_price",)

    def __init__(self, model_price: ModelPrice) -> None:
        self.model_price = model_price

    def cost(self, inp: int, out: int, cache_read: int, cache_write: int, reasoning: int) -> float:
        usage = genai_prices_usage(TokenUsage(inp, out, cache_read, cache_write, reasoning))
        return float(self.model_price.calc_price(usage)["total_price"])


def genai_prices_usage(usage: TokenUsage) -> Usage:
    """The same counts in genai-prices' own Usage (its name for reasoning tokens differs)."""
    from genai_prices import Usage

    return Usage(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_read_tokens=usage.cache_read_tokens,
        cache_write_tokens=usage.cache_write_tokens,
        output_reasoning_tokens=usage.reasoning_tokens,
    )


class _TieredRates:
    """A tiered model's float prices: `rates[bisect_left(starts, input_tokens)]` is the rate vector of a call.

    `starts` are the sorted distinct tier starts of all its priced parts; `rates[0]` applies up to and
    including `starts[0]` input tokens, `rates[i]` when `starts[i-1] < input_tokens <= starts[i]` (and the
    last one past the highest start). Each vector is laid out like a flat memo entry.
    """

    __slots__ = ("starts", "rates")

    def __init__(self, starts: tuple[int, ...], rates: tuple[tuple[float, ...], ...]) -> None:
        self.starts = starts
        self.rates = rates


# A memo entry is one of: per-token float prices (input, cache_read, cache_write, output, reasoning, and a
# fee per call), a _TieredRates, a _GenaiPricesFallback, or None (no price known).
_MISS: Final = object()


@dataclass(frozen=True)
class _Override:
    pattern: str  # lower-cased model name or prefix
    exact: bool
    provider: str | None  # genai-prices id (OTel names mapped), lower-cased
    prices: tuple[float, float, float, float, float, float]


class PriceBook:
    """Prices LLM calls: user overrides first, then genai-prices data; one lookup per (provider, model)."""

    def __init__(self, overrides_path: str | os.PathLike[str] | None = None, *,
                 now: Callable[[], datetime] | None = None) -> None:
        self._now = now or _utc_now  # when time-dependent prices are resolved (a fixed clock in parity tests)
        self._overrides: tuple[_Override, ...] = (
            _load_overrides(os.fspath(overrides_path)) if overrides_path is not None else ()
        )
        self._memo: dict[tuple[Any, Any], Any] = {}
        self._max_entries = MEMO_MAX_ENTRIES
        self._lock = threading.Lock()

    def cost(self, provider: str, model: str, usage: TokenUsage) -> float | None:
        """USD cost of one call; None when the price is unknown (never raises).

        The hot path is a dict hit plus float arithmetic; the caller tries the response model first,
        then the request model.
        """
        try:
            entry = self._memo.get((provider, model), _MISS)
            if entry is _MISS:
                entry = self._lookup(provider, model)
            if entry is None:
                return None
            inp = usage.input_tokens
            out = usage.output_tokens
            if inp is None or out is None:
                return None
            cache_read = usage.cache_read_tokens or 0
            cache_write = usage.cache_write_tokens or 0
            reasoning = usage.reasoning_tokens or 0
            if (
                min(inp, out, cache_read, cache_write, reasoning) < 0
                or cache_read + cache_write > inp
                or reasoning > out
            ):
                _log.debug("inconsistent token usage %r, cost unknown", usage)
                return None
            if type(entry) is tuple:
                rates = entry
            elif type(entry) is _TieredRates:
                rates = entry.rates[bisect_left(entry.starts, inp)]  # cliff: tier applies when inp > start
            else:
                rates = None
            if rates is not None:
                p_in, p_cache_read, p_cache_write, p_out, p_reasoning, fee = rates
                result = (
                    (inp - cache_read - cache_write) * p_in
                    + cache_read * p_cache_read
                    + cache_write * p_cache_write
                    + (out - reasoning) * p_out
                    + reasoning * p_reasoning
                    + fee
                )
            else:
                result = entry.cost(inp, out, cache_read, cache_write, reasoning)
            return result if 0.0 <= result < _INF else None  # NaN/inf token counts: unknown, not NaN
        except Exception:  # pricing must never break the instrumented call
            _log.debug("cannot price provider=%.64r model=%.64r", provider, model, exc_info=True)
            return None

    def has_price(self, provider: str, model: str) -> bool:
        """Whether `cost()` can price this model (it may still return None for inconsistent usage)."""
        try:
            entry = self._memo.get((provider, model), _MISS)
            if entry is _MISS:
                entry = self._lookup(provider, model)
            return entry is not None
        except Exception:
            return False

    def clear(self) -> None:
        """Forget every memoized price, so the next lookup re-resolves them (time-dependent prices)."""
        with self._lock:
            self._memo.clear()

    def _lookup(self, provider: Any, model: Any) -> Any:
        if not isinstance(model, str) or not model.strip() or len(model) > MAX_NAME_LENGTH:
            return None  # not memoized: odd strings must not fill the memo
        if provider is not None and (not isinstance(provider, str) or len(provider) > MAX_NAME_LENGTH):
            return None
        entry = self._resolve(provider, model)
        with self._lock:
            if len(self._memo) >= self._max_entries:
                del self._memo[next(iter(self._memo))]  # FIFO eviction: bounded, and hits stay lock-free
            self._memo[(provider, model)] = entry
        return entry

    def _resolve(self, provider: str | None, model: str) -> Any:
        provider_id = _provider_id(provider) if provider else None
        model_l = model.lower()
        override = self._match_override(provider_id, model_l)
        if override is not None:
            return override.prices
        try:
            return _resolve_bundled(provider_id, model_l, self._now())
        except Exception:
            _log.debug("genai-prices cannot price provider=%r model=%r", provider, model, exc_info=True)
            return None

    def _match_override(self, provider_id: str | None, model_l: str) -> _Override | None:
        best: _Override | None = None
        best_rank: tuple[bool, int, bool] | None = None
        for o in self._overrides:
            if o.provider is not None and o.provider != provider_id:
                continue
            if not (model_l == o.pattern if o.exact else model_l.startswith(o.pattern)):
                continue
            rank = (o.exact, len(o.pattern), o.provider is not None)
            if best_rank is None or rank > best_rank:
                best, best_rank = o, rank
        return best


def _utc_now() -> datetime:
    return datetime.now(tz=timezone.utc)


def _resolve_bundled(provider_id: str | None, model_l: str, now: datetime) -> Any:
    """Find the model in genai-prices' data and turn its current prices into a memo entry.

    Mirrors `DataSnapshot.find_provider_model` without its unbounded per-model-string caches: the
    provider by id (falling back to matching by model name when the id is unknown or absent), then the
    provider's own model matching (which handles dated suffixes and fallback providers such as Azure ->
    OpenAI).
    """
    from genai_prices import data_snapshot  # the price data loads here, on the first lookup, not at import

    snapshot = data_snapshot.get_snapshot()
    found = data_snapshot.find_provider_by_id(snapshot.providers, provider_id) if provider_id else None
    if found is None:
        found = next(
            (p for p in snapshot.providers if p.model_match is not None and p.model_match.is_match(model_l)),
            None,
        )
    if found is None:
        return None
    model_info = found.find_model(model_l, all_providers=snapshot.providers)
    if model_info is None:
        return None
    return _entry_for(model_info.get_prices(now))


def _entry_for(model_price: ModelPrice) -> Any:
    from genai_prices import Usage
    from genai_prices.types import TieredPrices

    prices = {k: v for k, v in vars(model_price).items() if not k.startswith("_") and v is not None}
    if prices and not any(k.endswith("_mtok") for k in prices):
        # Priced per audio hour, character, page, ...: token counts cannot price it, and genai-prices
        # would answer 0 for a token-only usage -- a silent zero. Unknown instead.
        return None
    # genai-prices' own validation, once per lookup: price data it rejects (a negative or non-finite price,
    # bad tier starts, a priced part without its parent's price, ...) raises here and the model stays
    # unpriced, as genai_prices.calc_price would fail on it.
    model_price.calc_price(Usage(input_tokens=0, output_tokens=0))
    zero_keys = _zero_price_keys()
    if not all((k in _FAST_KEYS or k in zero_keys) and _float_priceable(v) for k, v in prices.items()):
        return _GenaiPricesFallback(model_price)
    # Only the reported parts count: a tiered price of a part TokenUsage never reports (a zero-price key
    # such as cache_write_1h_mtok) adds nothing, whatever its tiers.
    fast = {k: v for k, v in prices.items() if k in _FAST_KEYS}
    starts = sorted({t.start for v in fast.values() if isinstance(v, TieredPrices) for t in v.tiers})
    # An empty price set is genai-prices saying "free" (e.g. OpenRouter `:free` models): a known 0.0.
    base = _rate_vector(fast, None)
    if not starts:
        return base
    # Interval i >= 1 holds input_tokens in (starts[i-1], starts[i]]: exactly the tiers starting at or
    # below starts[i-1] are crossed (genai-prices: `total_input_tokens > tier.start`).
    return _TieredRates(tuple(starts), (base, *(_rate_vector(fast, crossed) for crossed in starts)))


def _float_priceable(value: Any) -> bool:
    """A price genai-prices accepts (its `_validate_model_price_value`): a finite, non-negative Decimal, or
    TieredPrices of such prices with int tier starts >= 0 in non-decreasing order."""
    from genai_prices.types import TieredPrices

    if isinstance(value, TieredPrices):
        previous = 0
        for tier in value.tiers:
            if type(tier.start) is not int or tier.start < previous or not _float_priceable(tier.price):
                return False
            previous = tier.start
        return _float_priceable(value.base)
    return isinstance(value, Decimal) and value.is_finite() and value >= 0


def _applicable(price: Decimal | TieredPrices, crossed: int | None) -> Decimal:
    """genai-prices' `calc_unit_price` tier choice for every total input above `crossed` (and at or below
    the next tier start of the model); `crossed=None` is "no tier start crossed"."""
    from genai_prices.types import TieredPrices

    if not isinstance(price, TieredPrices):
        return price
    if crossed is not None:
        for tier in reversed(price.tiers):  # the same scan as genai-prices, so ties resolve the same way
            if tier.start <= crossed:
                return tier.price
    return price.base


def _rate_vector(prices: dict[str, Any], crossed: int | None) -> tuple[float, float, float, float, float, float]:
    """Per-token float prices (input, cache_read, cache_write, output, reasoning) and the fee per call."""
    rate = {k: float(_applicable(v, crossed)) for k, v in prices.items()}
    p_in = rate.get(_INPUT, 0.0) / _PER_MTOK
    p_out = rate.get(_OUTPUT, 0.0) / _PER_MTOK
    return (
        p_in,
        rate[_CACHE_READ] / _PER_MTOK if _CACHE_READ in rate else p_in,
        rate[_CACHE_WRITE] / _PER_MTOK if _CACHE_WRITE in rate else p_in,
        p_out,
        rate[_REASONING] / _PER_MTOK if _REASONING in rate else p_out,
        rate.get(_REQUESTS, 0.0) / 1000.0,
    )


# --- override file ---------------------------------------------------------------------------------------
_PRICE_FIELDS: Final = ("input", "output", "cache_read", "cache_write", "reasoning")
_ALLOWED_KEYS: Final = frozenset({"model", "model_prefix", "provider", *_PRICE_FIELDS})


def _load_overrides(path: str) -> tuple[_Override, ...]:
    """Parse and strictly validate the override YAML; any problem is a PricingConfigError."""
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
    except OSError as e:
        raise PricingConfigError(f"{path}: cannot read price overrides: {e.strerror or e}") from e
    except yaml.YAMLError as e:
        raise PricingConfigError(f"{path}: not valid YAML: {e}") from e
    if not isinstance(doc, dict) or set(doc) != {"models"}:
        raise PricingConfigError(
            f"{path}: expected a mapping with exactly one key 'models' (a list of model prices), "
            f"got {_describe(doc)}"
        )
    entries = doc["models"]
    if entries is None:
        entries = []
    if not isinstance(entries, list):
        raise PricingConfigError(f"{path}: 'models' must be a list of model prices, got {_describe(entries)}")
    overrides: list[_Override] = []
    seen: dict[tuple[str, bool, str | None], int] = {}
    for i, raw in enumerate(entries):
        override = _parse_entry(path, i, raw)
        key = (override.pattern, override.exact, override.provider)
        if key in seen:
            raise PricingConfigError(
                f"{path}: models[{i}] ({_entry_name(raw)}): duplicate of models[{seen[key]}]"
            )
        seen[key] = i
        overrides.append(override)
    return tuple(overrides)


def _parse_entry(path: str, i: int, raw: Any) -> _Override:
    if not isinstance(raw, dict):
        raise PricingConfigError(f"{path}: models[{i}]: expected a mapping, got {_describe(raw)}")
    where = f"{path}: models[{i}] ({_entry_name(raw)})"
    unknown = sorted(str(k) for k in raw if k not in _ALLOWED_KEYS)
    if unknown:
        raise PricingConfigError(
            f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(sorted(_ALLOWED_KEYS))}"
        )
    if ("model" in raw) == ("model_prefix" in raw):
        raise PricingConfigError(f"{where}: give exactly one of 'model' (exact name) or 'model_prefix'")
    name_key = "model" if "model" in raw else "model_prefix"
    pattern = raw[name_key]
    if not isinstance(pattern, str) or not pattern.strip():
        raise PricingConfigError(f"{where}: '{name_key}' must be a non-empty string, got {_describe(pattern)}")
    provider = raw.get("provider")
    if provider is not None and (not isinstance(provider, str) or not provider.strip()):
        raise PricingConfigError(f"{where}: 'provider' must be a non-empty string, got {_describe(provider)}")
    for required in ("input", "output"):
        if required not in raw:
            raise PricingConfigError(f"{where}: missing required price '{required}' (USD per million tokens)")
    values: dict[str, float] = {}
    for field in _PRICE_FIELDS:
        if field not in raw:
            continue
        value = raw[field]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            hint = " (PyYAML reads 1e-6 as text: write 0.000001 or 1.0e-6)" if isinstance(value, str) else ""
            raise PricingConfigError(
                f"{where}: price '{field}' must be a number (USD per million tokens), got {_describe(value)}{hint}"
            )
        if not math.isfinite(value) or value < 0:
            raise PricingConfigError(f"{where}: price '{field}' must be a finite number >= 0, got {value!r}")
        values[field] = float(value) / _PER_MTOK
    p_in, p_out = values["input"], values["output"]
    prices = (
        p_in,
        values.get("cache_read", p_in),
        values.get("cache_write", p_in),
        p_out,
        values.get("reasoning", p_out),
        0.0,
    )
    return _Override(
        pattern=pattern.strip().lower(),
        exact=name_key == "model",
        provider=_provider_id(provider) if provider is not None else None,
        prices=prices,
    )


def _entry_name(raw: Any) -> str:
    if isinstance(raw, dict):
        for key in ("model", "model_prefix"):
            if key in raw:
                return f"{key} {str(raw[key])[:80]!r}"
    return "unnamed"


def _describe(value: Any) -> str:
    return f"{type(value).__name__} {str(value)[:80]!r}" if value is not None else "nothing"


# --- process-wide instance ---------------------------------------------------------------------------------
_default_book: PriceBook | None = None
_default_lock = threading.Lock()


def default_price_book() -> PriceBook:
    """The process-wide PriceBook, built once on first use with the override file from env
    AGENTWATCH_PRICES_FILE (if set). A malformed file raises PricingConfigError on every call until fixed."""
    global _default_book
    book = _default_book
    if book is None:
        with _default_lock:
            if _default_book is None:
                _default_book = PriceBook(config.prices_file())
            book = _default_book
    return book
