"""The Go components' registry (agentwatch.generate.golang): every semconv name reaches Go, the price table
covers every genai-prices model, the parity data is the Python PriceBook's own answer, and regexes Go's RE2
cannot run are rewritten to something equivalent (or refused)."""

from __future__ import annotations

import json
import re

import pytest
from genai_prices import data_snapshot

from agentwatch import pricing, semconv as sc, thresholds
from agentwatch.tooling.generate import golang

from support.alerting import REPO

TEST_LAYER = "unit"


@pytest.fixture(scope="module")
def files():
    return golang.artifacts(thresholds.load())


def _go_consts(text: str) -> dict[str, str]:
    return dict(re.findall(r"^const (\w+) = (.+)$", text, re.M))


def test_every_semconv_name_is_a_go_constant_of_the_same_value(files):
    consts = _go_consts(files[golang.SEMCONV_GO])
    strings = {n: v for n, v in vars(sc).items() if n.isupper() and isinstance(v, str)}
    assert len(strings) > 100
    for name, value in strings.items():
        assert json.loads(consts[golang.go_name(name)]) == value, name
    assert json.loads(consts["AgentwatchResourceMetricsInProcess"]) == "agentwatch.metrics.in_process"


def test_go_names_do_not_collide():
    names = [n for n, v in vars(sc).items() if n.isupper() and not n.startswith("_")]
    assert len({golang.go_name(n) for n in names}) == len(names)


def test_boundaries_follow_the_threshold_table(tmp_path, files):
    default = files[golang.SEMCONV_GO]
    assert "var InvokeAgentDurationBoundaries = []float64{" in default
    line = re.search(r"^var InvokeAgentDurationBoundaries = \[\]float64\{(.*)\}$", default, re.M).group(1)
    assert 60.0 in [float(x) for x in line.split(", ")]
    override = tmp_path / "t.yaml"
    override.write_text("signals:\n  p99_latency:\n    value: 45\n  cost_per_run:\n    value: 0.75\n")
    text = golang.semconv_go(thresholds.load(override))
    line = re.search(r"^var InvokeAgentDurationBoundaries = \[\]float64\{(.*)\}$", text, re.M).group(1)
    assert [float(x) for x in line.split(", ")] == list(thresholds.with_boundaries(sc.INVOKE_AGENT_DURATION_BUCKETS, 45))
    assert "0.75" in re.search(r"^var AgentCostBoundaries = .*$", text, re.M).group(0)


def test_price_table_covers_every_model(files):
    doc = json.loads(files[golang.PRICES_JSON])
    providers = data_snapshot.get_snapshot().providers
    assert [p["id"] for p in doc["providers"]] == [p.id for p in providers]
    assert [len(p["models"]) for p in doc["providers"]] == [len(p.models) for p in providers]
    assert doc["provider_ids"] == pricing.PROVIDER_IDS


def test_parity_data_is_what_python_prices(files):
    doc = json.loads(files[golang.PARITY_JSON])
    priced_models = {(c["provider"], c["model"]) for c in doc["cases"]}
    for p in data_snapshot.get_snapshot().providers:
        for m in p.models:
            assert (p.id, m.id) in priced_models
    from datetime import datetime

    at = datetime.fromisoformat(doc["instants"][0])
    book = pricing.PriceBook(now=lambda: at)
    sample = [c for c in doc["cases"] if c["at"] == 0][::97]
    for case in sample:
        for usage, cost in zip(doc["usages"], case["costs"]):
            assert book.cost(case["provider"], case["model"], pricing.TokenUsage(*usage)) == cost
    assert sum(c is not None for case in doc["cases"] for c in case["costs"]) > 10000


def test_generated_files_are_committed():
    for rel in (golang.SEMCONV_GO, golang.PRICES_JSON, golang.PARITY_JSON):
        assert (REPO / rel).is_file(), rel


def _all_refs() -> list[str]:
    refs = []
    for p in data_snapshot.get_snapshot().providers:
        refs.extend(m.id.lower() for m in p.models)
    return refs + ["mistral-large", "org/mistral-large", "labs-devstral", "gpt-4o-mini-tts", "gpt-4o-tts-x",
                   "tts-1", "x-tts", "open-mixtral-8x7b", "a/b/mixtral"]


def test_lookahead_regexes_are_rewritten_equivalently():
    from genai_prices import types as t

    patterns = set()

    def walk(m):
        if isinstance(m, t.ClauseRegex):
            patterns.add(m.regex)
        for sub in getattr(m, "or_", []) + getattr(m, "and_", []):
            walk(sub)

    for p in data_snapshot.get_snapshot().providers:
        for mm in (p.model_match, p.provider_match):
            if mm is not None:
                walk(mm)
        for m in p.models:
            walk(m.match)
    rewritten = [p for p in patterns if "not_regex" in golang._regex(p)]
    assert rewritten, "the data has lookahead regexes today; the rewrite must be exercised"
    for pattern in rewritten:
        go = golang._regex(pattern)
        assert "(?!" not in go["regex"] and "(?!" not in go["not_regex"]
        for ref in _all_refs():
            want = bool(re.search(pattern, ref))
            got = bool(re.search(go["regex"], ref)) and not re.search(go["not_regex"], ref)
            assert got == want, (pattern, ref)


@pytest.mark.parametrize("pattern", [r"(?<=a)b", r"(a)\1", r"a(?=b)", r"^(?!a)(?=b)"])
def test_regexes_re2_cannot_run_are_refused(pattern):
    with pytest.raises(ValueError, match="RE2"):
        golang._regex(pattern)
