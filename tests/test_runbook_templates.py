"""The runbook templates (agentwatch/tooling/generate/runbooks/templates): every template and partial is used,
none spells a telemetry name (they come from semconv through the values), and a template with a hole in it
is an error, not a runbook with a hole."""

from __future__ import annotations

import re

import pytest

from agentwatch import semconv as sc
from agentwatch import thresholds
from agentwatch.thresholds import FLEET_ALERTS, SIGNALS
from agentwatch.tooling.generate import runbooks
from agentwatch.tooling.generate.runbooks import TemplateError, fill

TEST_LAYER = "unit"  # every test here is unit unless marked otherwise (conftest.py)

TEMPLATES = runbooks.TEMPLATES
TAG = re.compile(r"\{\{(>)?\s*([a-z][a-z0-9_-]*)\s*\}\}")


def _texts() -> dict[str, str]:
    out = {f"{p.name}": p.read_text() for p in TEMPLATES.iterdir() if p.name.endswith(".md")}
    out.update({f"partials/{p.name}": p.read_text() for p in TEMPLATES.joinpath("partials").iterdir()})
    return out


def test_one_template_per_alert_and_every_partial_used():
    texts = _texts()
    assert {n for n in texts if "/" not in n} == {f"{k}.md" for k in (*SIGNALS, *FLEET_ALERTS)}
    used = {f"partials/{m.group(2)}.md" for text in texts.values() for m in TAG.finditer(text) if m.group(1)}
    assert used == {n for n in texts if n.startswith("partials/")}


def test_templates_spell_no_telemetry_name():
    names = {v for k, v in vars(sc).items() if k.isupper() and isinstance(v, str)
             and re.fullmatch(r"(gen_ai|agentwatch|error)[._][a-z0-9_.]+", v)}
    assert len(names) > 20
    for name, text in _texts().items():
        for telemetry_name in names:
            assert telemetry_name not in text, (name, telemetry_name)


def test_every_runbook_renders_without_a_leftover_tag():
    table = thresholds.load()
    for alert in [table[s].alert for s in SIGNALS] + [table.fleet[k].alert for k in FLEET_ALERTS]:
        text = runbooks.render(table, alert)
        assert text.startswith(f"# {alert}\n") and "{{" not in text, alert


def test_an_unknown_value_or_partial_is_an_error_naming_the_template():
    with pytest.raises(TemplateError, match=re.escape("x.md: unknown value {{treshold}}; known: threshold")):
        fill("over {{treshold}}\n", {"threshold": "90%"}, "x.md")
    with pytest.raises(TemplateError, match=re.escape("x.md: no partial templates/partials/nope.md")):
        fill("{{> nope}}\n", {}, "x.md")


def test_a_line_holding_only_an_empty_value_is_dropped():
    assert fill("a\n{{row}}\nb {{row}}\n", {"row": ""}, "x.md") == "a\nb \n"
    assert fill("a\n{{row}}\n", {"row": "| x |"}, "x.md") == "a\n| x |\n"
