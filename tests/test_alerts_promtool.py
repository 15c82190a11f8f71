"""The generated rules under promtool: they load, and the unit tests in tests/promtool/ (written by hand against
the default thresholds) prove every alert fires above its threshold, stays silent below it and without
traffic or data, waits out its `for`, and carries exactly the annotations it should.

tests/promtool/scoped/ does the same for rules generated with a query scope (its thresholds.yaml: selector
env="prod", aggregation label cluster): the same agent name in two clusters gets one verdict per cluster, and
series outside the selector count nowhere."""

from __future__ import annotations

import shutil

import pytest
import yaml

from agentwatch import thresholds
from agentwatch.tooling.generate import alerts as gen_alerts
from agentwatch.thresholds import duration_seconds

from support.alerting import REPO, binary, generate, run

TEST_LAYER = "e2e"  # every test here is e2e unless marked otherwise (conftest.py)

RULES = sorted((REPO / "alerts" / "rules").glob("*.yaml"))
UNIT_TESTS = sorted((REPO / "tests" / "promtool").glob("*.test.yaml"))
SCOPED = REPO / "tests" / "promtool" / "scoped"
SCOPED_TESTS = sorted(SCOPED.glob("*.test.yaml"))


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


@pytest.fixture
def scoped_rules(tmp_path):
    """Rules generated from tests/promtool/scoped/thresholds.yaml, with the scoped unit tests beside them."""
    out = generate(tmp_path / "out", yaml.safe_load((SCOPED / "thresholds.yaml").read_text()))
    rules = out / "alerts" / "rules"
    for path in SCOPED_TESTS:
        shutil.copy(path, rules / path.name)
    return rules


def test_promtool_unit_tests_of_a_scoped_table_pass(scoped_rules):
    result = run([binary("promtool"), "check", "rules", "agentwatch-recording.yaml", "agentwatch-alerts.yaml"],
                 cwd=scoped_rules)
    assert result.returncode == 0, result.stdout + result.stderr
    result = run([binary("promtool"), "test", "rules", *(p.name for p in SCOPED_TESTS)], cwd=scoped_rules)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(SCOPED_TESTS)


def test_every_scoped_alert_fires_per_cluster_and_ignores_series_outside_the_selector(scoped_rules):
    """Each alert but Watchdog has a scoped case; a per-agent or per-provider alert fires for one cluster of
    two (its labels carry the cluster); every scoped case has input outside the selector (env="staging") or
    a missing-data case."""
    alerts = [r for g in yaml.safe_load((scoped_rules / "agentwatch-alerts.yaml").read_text())["groups"]
              for r in g["rules"]]
    assert all("cluster" in r["expr"] for r in alerts if r["alert"] not in ("Watchdog", "AgentDailySpendOverBudget"))
    by_alert: dict[str, list] = {}
    for path in SCOPED_TESTS:
        for test in yaml.safe_load(path.read_text())["tests"]:
            for case in test.get("alert_rule_test", []):
                by_alert.setdefault(case["alertname"], []).append((test, case))
    assert set(by_alert) == {r["alert"] for r in alerts} - {"Watchdog"}
    for name, cases in by_alert.items():
        firing = [alert for _, case in cases for alert in case.get("exp_alerts") or []]
        assert firing, name
        series = [s["series"] for test, _ in cases for s in test["input_series"]]
        assert any('env="staging"' in s for s in series), f"{name}: no series outside the selector"
        if name == "AgentDailySpendOverBudget":  # the budget is the fleet's: one sum over the clusters
            assert all("cluster" not in a["exp_labels"] for a in firing)
            continue
        clusters = {s.split('cluster="')[1].split('"')[0] for s in series if 'cluster="' in s and "prod" in s}
        assert len(clusters) == 2, (name, clusters)
        assert len({a["exp_labels"]["cluster"] for a in firing}) == 1, name
