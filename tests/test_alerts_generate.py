"""`agentwatch generate`: the committed alert artifacts match the generators, follow the monitoring-mixin
conventions, and follow the threshold table (including a user override)."""

from __future__ import annotations

import re

import pytest
import yaml
from click.testing import CliRunner
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from agentwatch import semconv as sc, thresholds
from agentwatch.tooling import generate
from agentwatch.tooling.cli import main
from agentwatch.tooling.generate import alerts as gen_alerts
from agentwatch.tooling.generate import promql
from agentwatch.thresholds import ThresholdsError, duration_seconds

from support.alerting import REPO, generate as run_generate

TEST_LAYER = "unit"  # every test here is unit unless marked otherwise (conftest.py)

SIX = ["AgentSuccessRateLow", "AgentStepsHigh", "AgentLatencyP99High", "AgentTokensPerRunHigh",
       "AgentCostPerRunHigh", "AgentToolErrorRateHigh"]
FLEET = ["AgentTelemetryAbsent", "LLMProviderFailing", "AgentDailySpendOverBudget", "Watchdog"]


@pytest.fixture(autouse=True)
def _no_user_override(monkeypatch):
    monkeypatch.delenv(thresholds.ENV_THRESHOLDS_FILE, raising=False)


def _rules(root, name="agentwatch-alerts.yaml"):
    return yaml.safe_load((root / "alerts" / "rules" / name).read_text())


def _alerts(root):
    return [r for g in _rules(root)["groups"] for r in g["rules"]]


# --- drift ----------------------------------------------------------------------------------------------
def test_committed_artifacts_match_the_generators():
    result = CliRunner().invoke(main, ["generate", "--check", "--out-dir", str(REPO)])
    assert result.exit_code == 0, f"run `agentwatch generate` and commit the result:\n{result.output}"
    assert "up to date" in result.output


def test_check_lists_drifted_missing_and_stale_files(tmp_path):
    out = run_generate(tmp_path / "out")
    (out / "alerts/rules/agentwatch-alerts.yaml").write_text("groups: []\n")
    (out / "alerts/runbooks/Watchdog.md").unlink()
    (out / "alerts/runbooks/OldAlert.md").write_text("# gone\n")
    result = CliRunner().invoke(main, ["generate", "--check", "--out-dir", str(out)])
    assert result.exit_code == 1
    assert "alerts/rules/agentwatch-alerts.yaml: differs" in result.output
    assert "alerts/runbooks/Watchdog.md: missing" in result.output
    assert "alerts/runbooks/OldAlert.md: stale" in result.output
    assert "alerts/alertmanager/alertmanager.yml" not in result.output
    result = CliRunner().invoke(main, ["generate", "--out-dir", str(out)])
    assert result.exit_code == 0 and not (out / "alerts/runbooks/OldAlert.md").exists()
    assert CliRunner().invoke(main, ["generate", "--check", "--out-dir", str(out)]).exit_code == 0


def test_output_is_deterministic():
    first = generate.artifacts(thresholds.load())
    assert first == generate.artifacts(thresholds.load())
    assert list(first) == sorted(first)


def test_bad_thresholds_file_is_one_clear_error(tmp_path):
    bad = tmp_path / "t.yaml"
    bad.write_text("signals:\n  p99_latency:\n    window: soon\n")
    result = CliRunner().invoke(main, ["generate", "--check", "--thresholds", str(bad), "--out-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output.strip() == (f"agentwatch: error: {bad}: signal 'p99_latency': "
                                      "window must be a Prometheus duration like 5m or 1h, got 'soon'")


# --- conventions ----------------------------------------------------------------------------------------
def test_every_alert_follows_the_mixin_conventions():
    alerts = _alerts(REPO)
    names = [a["alert"] for a in alerts]
    assert sorted(set(names)) == sorted(SIX + FLEET)
    for rule in alerts:
        name, ann = rule["alert"], rule["annotations"]
        assert re.fullmatch(r"[A-Z][A-Za-z0-9]+", name)
        assert rule["labels"]["severity"] in ("critical", "warning", "info")
        assert "{{" not in ann["summary"] and ann["summary"].endswith("."), name
        assert "{{" in ann["description"] or name == "Watchdog", name
        assert ann["runbook_url"].endswith(f"/alerts/runbooks/{name}.md")
        assert (REPO / "alerts" / "runbooks" / f"{name}.md").is_file()
        if name not in ("Watchdog", "AgentTelemetryAbsent"):
            assert "$value" in ann["description"], f"{name}: the description must carry the measured value"
    for path in ("agentwatch-alerts.yaml", "agentwatch-recording.yaml"):
        for group in _rules(REPO, path)["groups"]:
            assert len(group["rules"]) <= 20, group["name"]


def test_the_six_alerts_are_per_agent_guarded_by_traffic_and_quick():
    table = thresholds.load()
    by_name = {a["alert"]: a for a in _alerts(REPO)}
    recorded = {r["record"]: r["expr"] for g in _rules(REPO, "agentwatch-recording.yaml")["groups"]
                for r in g["rules"]}
    for threshold in table:
        rule = by_name[threshold.alert]
        assert rule["labels"]["severity"] == threshold.severity
        assert duration_seconds(rule["for"]) <= 30 * 60
        assert rule["for"] == threshold.for_
        first, on, guard = rule["expr"].strip().split("\n")
        assert first.endswith(f" {threshold.comparison} {promql.num(threshold.value)}")
        assert on.startswith(f"and on ({promql.AGENT}")
        assert guard.endswith(" > 0")
        series = first.split()[0]
        assert series.startswith(f"{promql.AGENT}:") or series.startswith(f"{promql.AGENT}_{promql.TOOL}:")
        assert series in recorded and guard.split()[0] in recorded
        assert f"[{threshold.window}]" in recorded[series]
        assert f"by ({promql.AGENT}" in recorded[series]
    assert f'{promql.ERROR}=""' in recorded[promql.success_ratio(table["success_rate"].window)]
    assert sc.PROM_INVOKE_AGENT_DURATION in recorded[promql.success_ratio(table["success_rate"].window)]
    assert f'{promql.ERROR}!=""' in recorded[promql.tool_error_ratio(table["tool_error_rate"].window)]
    for threshold in table:  # the raw queries offered to dashboards and checks are the recorded ones
        series = promql.SIGNAL_SERIES[threshold.signal][0](threshold.window)
        assert promql.signal_query(threshold.signal, threshold.window) == recorded[series]


def test_every_number_in_the_rules_comes_from_the_table():
    table = thresholds.load()
    spend = table.fleet["daily_spend"]
    rules = (REPO / "alerts/rules/agentwatch-alerts.yaml").read_text()
    for threshold in table:
        assert f"{threshold.comparison} {promql.num(threshold.value)}\n" in rules
    assert f">= {promql.num(spend.budget_usd * spend.warning_at)}\n" in rules
    assert f">= {promql.num(spend.budget_usd * spend.critical_at)}\n" in rules
    assert f"> {promql.num(table.fleet['provider_errors'].value)}\n" in rules


def test_runbooks_say_what_to_do():
    for name in SIX + FLEET:
        text = (REPO / "alerts" / "runbooks" / f"{name}.md").read_text()
        assert text.startswith(f"# {name}\n")
        for heading in ("## What it means", "## Mitigation"):
            assert heading in text, (name, heading)
        if name != "Watchdog":
            assert "## Diagnosis" in text and "## Likely causes" in text and "```promql" in text, name
    success = (REPO / "alerts/runbooks/AgentSuccessRateLow.md").read_text()
    assert "below 90% over 15m, for 5m" in success
    causes = "".join((REPO / "alerts" / "runbooks" / f"{n}.md").read_text() for n in SIX)
    for cause in ("Token explosion", "Failing tools", "Infinite or long loops", "Prompt injection",
                  "Model degradation", "Provider outage"):
        assert cause in causes


def test_alertmanager_routing_shape():
    config = yaml.safe_load((REPO / "alerts/alertmanager/alertmanager.yml").read_text())
    route = config["route"]
    assert route["group_by"] == ["alertname", promql.AGENT]
    assert [(r["receiver"], r["matchers"]) for r in route["routes"]] == [
        ("deadmans-switch", ['alertname="Watchdog"']), ("oncall-pager", ['severity="critical"']),
        ("team-chat", ['severity="warning"']), ("null", ['severity="info"'])]
    text = (REPO / "alerts/alertmanager/alertmanager.yml").read_text()
    assert not re.search(r"^\s*(match|match_re|source_match|source_match_re|target_match|target_match_re):",
                         text, re.M), "matchers syntax only"
    receivers = {r["name"]: r for r in config["receivers"]}
    assert receivers["oncall-pager"]["pagerduty_configs"][0]["routing_key_file"].startswith("/etc/")
    assert receivers["team-chat"]["slack_configs"][0]["api_url_file"].startswith("/etc/")
    assert "routing_key:" not in text and "api_url:" not in text and "service_key:" not in text


# --- thresholds table -----------------------------------------------------------------------------------
def test_thresholds_override_merges_field_by_field(tmp_path):
    override = tmp_path / "t.yaml"
    override.write_text("signals:\n  success_rate:\n    value: 0.95\n    for: 2m\n"
                        "fleet:\n  daily_spend:\n    budget_usd: 250\n"
                        "alertmanager:\n  slack_channel: '#ops'\n")
    table = thresholds.load(override)
    assert table["success_rate"].value == 0.95 and table["success_rate"].for_ == "2m"
    assert table["success_rate"].window == "15m" and table["success_rate"].alert == "AgentSuccessRateLow"
    assert table.fleet["daily_spend"].budget_usd == 250 and table.fleet["daily_spend"].warning_at == 0.8
    assert table.alertmanager.slack_channel == "#ops" and table.alertmanager.group_wait == "30s"


@pytest.mark.parametrize("text, message", [
    ("signals:\n  success_rate:\n    colour: red\n", "has unknown keys ['colour']"),
    ("signals:\n  success_rate:\n    for: 5 minutes\n", "for must be a Prometheus duration"),
    ("signals:\n  success_rate:\n    summary: 'Agent {{ $labels.x }} fails.'\n", "summary must be plain text"),
    ("signals:\n  success_rate:\n    alert: agent_success\n", "alert must be a CamelCase name"),
    ("fleet:\n  daily_spend:\n    warning_at: 1.5\n", "warning_at must be below critical_at"),
    ("fleet:\n  watchdog:\n    window: 5m\n", "has unknown keys ['window']"),
    ("alertmanager:\n  group_wait: soon\n", "alertmanager.group_wait must be a Prometheus duration"),
    ("alerting:\n  grafana: x\n", "alerting has unknown keys ['grafana']"),
    ("dashboards: {}\n", "unknown sections ['dashboards']"),
])
def test_thresholds_errors_are_clear(tmp_path, text, message):
    path = tmp_path / "t.yaml"
    path.write_text(text)
    with pytest.raises(ThresholdsError, match=re.escape(message)):
        thresholds.load(path)


def test_unknown_placeholder_in_a_description_is_an_error(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("signals:\n  steps_per_run:\n    description_template: 'over {windw}: {{ $value }}'\n")
    with pytest.raises(ThresholdsError, match=re.escape("unknown placeholder {windw}")):
        gen_alerts.artifacts(thresholds.load(path))


def test_a_zero_budget_turns_the_spend_alerts_off(tmp_path):
    out = run_generate(tmp_path / "out", {"fleet": {"daily_spend": {"budget_usd": 0}}})
    names = [a["alert"] for a in _alerts(out)]
    assert "AgentDailySpendOverBudget" not in names
    assert not (out / "alerts/runbooks/AgentDailySpendOverBudget.md").exists()


# --- one number changes, everything follows -------------------------------------------------------------
def test_changing_one_threshold_moves_the_rule_the_runbook_and_the_buckets(tmp_path, monkeypatch):
    override = tmp_path / "my-thresholds.yaml"
    override.write_text("signals:\n  p99_latency:\n    value: 45\n")
    monkeypatch.setenv(thresholds.ENV_THRESHOLDS_FILE, str(override))
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["generate", "--out-dir", str(out)])
    assert result.exit_code == 0, result.output

    rule = next(a for a in _alerts(out) if a["alert"] == "AgentLatencyP99High")
    assert rule["expr"].splitlines()[0] == f"{promql.latency_p99('15m')} > 45"
    assert "(threshold 45s)" in rule["annotations"]["description"]
    assert "above 45s over 15m" in (out / "alerts/runbooks/AgentLatencyP99High.md").read_text()
    unchanged = next(a for a in _alerts(out) if a["alert"] == "AgentSuccessRateLow")
    assert unchanged["expr"] == next(a for a in _alerts(REPO) if a["alert"] == "AgentSuccessRateLow")["expr"]
    assert "my-thresholds.yaml" in (out / "alerts/rules/agentwatch-alerts.yaml").read_text().splitlines()[0]

    # the agent span processor builds its histogram buckets from the same table
    from agentwatch.runtime.processor import _AgentInstruments
    from agentwatch.runtime.telemetry import Telemetry

    thresholds.current.cache_clear()
    try:
        reader = InMemoryMetricReader()
        instruments = _AgentInstruments(Telemetry(meter_provider=MeterProvider(metric_readers=[reader])))
        instruments.duration.record(50.0, {sc.GEN_AI_AGENT_NAME: "a"})
        points = [p for rm in reader.get_metrics_data().resource_metrics for sm in rm.scope_metrics
                  for m in sm.metrics if m.name == sc.METRIC_INVOKE_AGENT_DURATION for p in m.data.data_points]
        (point,) = points
        assert 45.0 in point.explicit_bounds and 60.0 not in point.explicit_bounds
        index = list(point.explicit_bounds).index(45.0)
        assert point.bucket_counts[index + 1] == 1  # 50 s lands in (45, next], so "p99 > 45 s" is exact
    finally:
        thresholds.current.cache_clear()
