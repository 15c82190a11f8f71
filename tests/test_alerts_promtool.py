"""The generated rules under promtool: they load, and the unit tests in tests/promtool/ (written by hand against
the default thresholds) prove every alert fires above its threshold, stays silent below it and without
traffic or data, waits out its `for`, and carries exactly the annotations it should."""

from __future__ import annotations

import pytest
import yaml

from agentwatch import thresholds
from agentwatch.tooling.generate import alerts as gen_alerts
from agentwatch.thresholds import duration_seconds

from support.alerting import REPO, binary, generate, run

RULES = sorted((REPO / "alerts" / "rules").glob("*.yaml"))
UNIT_TESTS = sorted((REPO / "tests" / "promtool").glob("*.test.yaml"))


@pytest.fixture(autouse=True)
def _no_user_override(monkeypatch):
    monkeypatch.delenv(thresholds.ENV_THRESHOLDS_FILE, raising=False)


def test_promtool_check_rules():
    result = run([binary("promtool"), "check", "rules", *map(str, RULES)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(RULES) == 2


def test_rules_generated_from_an_override_are_valid_too(tmp_path):
    out = generate(tmp_path / "out", {"signals": {s: {"window": "2h", "for": "30m"} for s in thresholds.SIGNALS},
                                      "fleet": {"provider_errors": {"window": "90s"}}})
    result = run([binary("promtool"), "check", "rules", *map(str, sorted((out / "alerts/rules").glob("*.yaml")))])
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass():
    result = run([binary("promtool"), "test", "rules", *map(str, UNIT_TESTS)], cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(UNIT_TESTS)


def test_every_alert_is_unit_tested_on_both_sides_of_its_threshold_and_its_for():
    table = thresholds.load()
    rules = {}
    for group in yaml.safe_load((REPO / "alerts/rules/agentwatch-alerts.yaml").read_text())["groups"]:
        for rule in group["rules"]:
            rules.setdefault(rule["alert"], []).append(rule)
    cases: dict[str, list[tuple[str, float, list]]] = {name: [] for name in rules}
    for path in UNIT_TESTS:
        doc = yaml.safe_load(path.read_text())
        for test in doc["tests"]:
            for case in test.get("alert_rule_test", []):
                cases[case["alertname"]].append((test["name"], duration_seconds(case["eval_time"]),
                                                 case.get("exp_alerts") or []))
    assert set(gen_alerts.alert_names(table)) == set(rules)
    for name, rule_variants in rules.items():
        found = cases[name]
        firing = [c for c in found if c[2]]
        assert firing, f"{name}: no case where it fires"
        for _, _, expected in firing:
            for alert in expected:
                assert set(alert["exp_annotations"]) == set(rule_variants[0]["annotations"]), name
                assert alert["exp_labels"]["severity"] in {r["labels"]["severity"] for r in rule_variants}
        if name == "Watchdog":
            continue
        assert any(not c[2] for c in found), f"{name}: no case where it stays silent"
        holds = {duration_seconds(r["for"]) for r in rule_variants if "for" in r}
        if holds:
            boundary = any(a[0] == b[0] and not a[2] and b[2] and b[1] - a[1] == 60 for a in found for b in found)
            assert boundary, f"{name}: no pair of cases one evaluation apart around its `for`"
        assert any("missing data" in c[0] or "never seen" in c[0] for c in found), f"{name}: no missing-data case"
