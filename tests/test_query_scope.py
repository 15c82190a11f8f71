"""thresholds.yaml `queries`: a selector on every query and extra aggregation labels, as a monitoring mixin's
`*Selector` and `clusterLabel` settings. The defaults give exactly the committed artifacts; a scope reaches
every rule, recording rule, dashboard (chained variables), runbook query and Alertmanager grouping. The live
two-cluster test is test_two_clusters.py; the scoped promtool tests run in test_alerts_promtool.py."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from agentwatch import thresholds
from agentwatch.tooling import generate
from agentwatch.tooling.generate import promql as q
from agentwatch.thresholds import ThresholdsError, normalize_selector

from support.alerting import REPO, generate as run_generate

TEST_LAYER = "unit"  # every test here is unit unless marked otherwise (conftest.py)

SCOPE = {"queries": {"selector": 'env="prod"', "aggregation_labels": ["cluster", "namespace"]}}


@pytest.fixture(autouse=True)
def _no_user_override(monkeypatch):
    monkeypatch.delenv(thresholds.ENV_THRESHOLDS_FILE, raising=False)


@pytest.fixture(scope="module")
def scoped(tmp_path_factory):
    return run_generate(tmp_path_factory.mktemp("scoped") / "out", SCOPE)


def _selectors(expr: str) -> list[str]:
    """The label matchers of every series selector `name{...}` in a PromQL text (not ALERTS)."""
    return [m for name, m in re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}", expr) if name != "ALERTS"]


# --- the settings ----------------------------------------------------------------------------------------
def test_the_bundled_table_has_an_empty_scope():
    table = thresholds.load()
    assert table.queries == thresholds.QuerySettings(selector="", aggregation_labels=())
    assert q.Scope.of(table) == q.DEFAULT


def test_an_explicit_default_scope_generates_the_committed_artifacts(tmp_path):
    out = run_generate(tmp_path / "out", {"queries": {"selector": "", "aggregation_labels": []}})
    files = generate.artifacts(thresholds.load())
    assert len(files) > 30
    for rel in files:  # headers name the override file as a source; everything else is the committed text
        ours = (out / rel).read_text().replace(" + out-thresholds.yaml", "")
        assert ours == (REPO / rel).read_text(), rel


@pytest.mark.parametrize("text, expected", [
    ('env="prod"', 'env="prod"'),
    (' { env = "prod" ,cluster=~"eu-.*" } ', 'env="prod", cluster=~"eu-.*"'),
    ("team!~'ml|data',", "team!~'ml|data'"),
    ('a="x\\"y"', 'a="x\\"y"'),
    ("", ""),
])
def test_selectors_are_normalized(text, expected):
    assert normalize_selector(text) == expected


@pytest.mark.parametrize("queries, message", [
    ({"selector": "env=prod"}, "queries.selector: not a list of label matchers"),
    ({"selector": 'env="prod" team="ml"'}, "expected a comma after 'env=\"prod\"'"),
    ({"selector": '__name__=~"gen_ai.*"'}, "cannot match on __name__"),
    ({"selector": 5}, "queries.selector must be a string"),
    ({"aggregation_labels": "cluster"}, "queries.aggregation_labels must be a list of label names"),
    ({"aggregation_labels": ["k8s.cluster.name"]}, "'k8s.cluster.name' is not a Prometheus label name"),
    ({"aggregation_labels": ["gen_ai_agent_name"]}, "'gen_ai_agent_name' is a label or dashboard variable"),
    ({"aggregation_labels": ["model"]}, "'model' is a label or dashboard variable"),
    ({"aggregation_labels": ["le"]}, "'le' is a label or dashboard variable"),
    ({"aggregation_labels": ["cluster", "cluster"]}, "lists a label twice"),
    ({"clusterLabel": "cluster"}, "queries has unknown keys ['clusterLabel']"),
])
def test_bad_scopes_are_one_clear_error(tmp_path, queries, message):
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump({"queries": queries}))
    with pytest.raises(ThresholdsError, match=re.escape(message)) as info:
        thresholds.load(path)
    assert str(info.value).startswith(str(path))


def test_an_override_keeps_the_other_half_of_the_scope(tmp_path):
    first = tmp_path / "t.yaml"
    first.write_text("queries:\n  aggregation_labels: [cluster]\n")
    table = thresholds.load(first)
    assert table.queries.aggregation_labels == ("cluster",) and table.queries.selector == ""


# --- the rules -------------------------------------------------------------------------------------------
def test_every_rule_selects_with_the_selector_and_keeps_the_labels(scoped):
    recording = yaml.safe_load((scoped / "alerts/rules/agentwatch-recording.yaml").read_text())
    alerts = yaml.safe_load((scoped / "alerts/rules/agentwatch-alerts.yaml").read_text())
    rules = [r for g in recording["groups"] + alerts["groups"] for r in g["rules"]]
    exprs = [r["expr"] for r in rules if r.get("alert") != "Watchdog"]
    for expr in exprs:
        for matchers in _selectors(expr):
            assert 'env="prod"' in matchers, expr
        for grouping in re.findall(r"\b(?:by|on) \(([^)]*)\)", expr):
            if grouping != "le":
                assert grouping.startswith("cluster, namespace, "), expr
    spend = next(r for r in rules if r.get("record") == q.spend())
    assert spend["expr"] == 'sum(increase(agentwatch_llm_cost_USD_total{env="prod"}[1d]))'  # the fleet's budget
    # the recording-rule names do not change with the scope: dashboards and runbooks keep reading them
    committed = yaml.safe_load((REPO / "alerts/rules/agentwatch-recording.yaml").read_text())
    assert [r["record"] for g in recording["groups"] for r in g["rules"]] == \
        [r["record"] for g in committed["groups"] for r in g["rules"]]
    success = next(r for r in rules if r.get("alert") == "AgentSuccessRateLow")
    assert "(cluster={{ $labels.cluster }}, namespace={{ $labels.namespace }})" in success["annotations"]["description"]
    assert success["annotations"]["dashboard_url"].endswith(
        "?var-agent={{ $labels.gen_ai_agent_name | urlquery }}&var-cluster={{ $labels.cluster | urlquery }}"
        "&var-namespace={{ $labels.namespace | urlquery }}")


def test_notifications_are_grouped_and_inhibited_per_cluster(scoped):
    config = yaml.safe_load((scoped / "alerts/alertmanager/alertmanager.yml").read_text())
    assert config["route"]["group_by"] == ["alertname", "cluster", "namespace", q.AGENT]
    assert [r["equal"] for r in config["inhibit_rules"]] == [["cluster", "namespace", q.AGENT],
                                                             ["alertname", "cluster", "namespace", q.AGENT]]
    template = (scoped / "alerts/alertmanager/templates/agentwatch.tmpl").read_text()
    assert "{{- with .CommonLabels.cluster }} cluster={{ . }}{{ end }}" in template


def test_a_scope_placeholder_in_a_fleet_alert_without_labels_is_an_error(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("fleet:\n  daily_spend:\n    description_template: 'spend{scope}: {{ $value }}'\n")
    from agentwatch.tooling.generate import alerts

    with pytest.raises(ThresholdsError, match=re.escape("unknown placeholder {scope}")):
        alerts.artifacts(thresholds.load(path))


# --- the dashboards --------------------------------------------------------------------------------------
def test_dashboard_variables_are_chained_per_aggregation_label(scoped):
    board = json.loads((scoped / "dashboards/agent-overview.json").read_text())
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert list(variables) == ["datasource", "cluster", "namespace", "job", "agent", "traces", "logs"]
    assert variables["cluster"]["query"] == ('label_values({__name__=~"gen_ai_invoke_agent_duration_seconds_count|'
                                             'gen_ai_client_operation_duration_seconds_count", env="prod"}, cluster)')
    assert 'env="prod", cluster=~"$cluster"}, namespace)' in variables["namespace"]["query"]
    assert 'cluster=~"$cluster", namespace=~"$namespace"}, job)' in variables["job"]["query"]
    assert variables["agent"]["query"].endswith(
        '{env="prod", cluster=~"$cluster", namespace=~"$namespace", job=~"$job"}, gen_ai_agent_name)')
    for name in ("cluster", "namespace"):
        assert variables[name]["includeAll"] and variables[name]["multi"] and variables[name]["allValue"] == ".*"


def test_every_panel_selects_with_the_selector_and_the_variables_and_groups_by_the_labels(scoped):
    for path in sorted((scoped / "dashboards").glob("*.json")):
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                expr = target["expr"]
                for matchers in _selectors(expr):
                    assert matchers.count('env="prod"') == 1, (path.name, panel["title"], expr)
                    assert 'cluster=~"$cluster", namespace=~"$namespace", job=~"$job"' in matchers, expr
                for grouping in re.findall(r"\b(?:by|on) \(([^)]*)\)", expr):
                    if grouping not in ("le",) and not grouping.startswith("alertname"):
                        assert grouping.startswith("cluster, namespace"), (path.name, panel["title"], expr)
                legend = target.get("legendFormat", "")
                if " by " in panel["title"] and "{{" in legend and legend != "{{le}}":
                    assert "{{cluster}} · {{namespace}}" in legend, (path.name, panel["title"], legend)
        if path.name == "agent-overview.json":
            alerts = next(p for p in board["panels"] if p["title"] == "Firing agentwatch alerts")
            expr = alerts["targets"][0]["expr"]
            assert 'cluster=~"$cluster", namespace=~"$namespace", gen_ai_agent_name=~"$agent"' in expr
            assert "env=" not in expr and "job=" not in expr  # ALERTS carry the aggregation labels only


def test_job_as_an_aggregation_label_is_one_variable_in_its_place(tmp_path):
    out = run_generate(tmp_path / "out", {"queries": {"aggregation_labels": ["job", "cluster"]}})
    board = json.loads((out / "dashboards/tools.json").read_text())
    assert [v["name"] for v in board["templating"]["list"]] == ["datasource", "job", "cluster", "agent", "traces",
                                                                 "logs"]


# --- the runbooks ----------------------------------------------------------------------------------------
def test_runbook_queries_narrow_to_the_alerts_scope(scoped):
    text = (scoped / "alerts/runbooks/AgentSuccessRateLow.md").read_text()
    assert ('sum by (error_type) (rate(gen_ai_invoke_agent_duration_seconds_count{env="prod", cluster="<cluster>", '
            'namespace="<namespace>", gen_ai_agent_name="<agent>", error_type!=""}[15m]))') in text
    assert "| Labels | `cluster`, `namespace`, `gen_ai_agent_name`, `severity` |" in text
    assert "add an Alertmanager silence on `cluster`, `namespace`, `gen_ai_agent_name`" in text
    spend = (scoped / "alerts/runbooks/AgentDailySpendOverBudget.md").read_text()
    assert "sum by (cluster, namespace, gen_ai_provider_name, gen_ai_response_model)" in spend
    for path in sorted((scoped / "alerts/runbooks").glob("*.md")):
        for block in re.findall(r"```promql\n(.*?)```", path.read_text(), re.S):
            for matchers in _selectors(block):
                assert 'env="prod"' in matchers, (path.name, block)
