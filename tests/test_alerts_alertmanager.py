"""The generated Alertmanager routing: amtool accepts it, routes a table of label sets to the right receivers,
renders the message templates, and a real Alertmanager delivers (PagerDuty, Slack and the dead man's switch
replaced by the test's HTTP receiver through the same settings a user changes) and inhibits as documented."""

from __future__ import annotations

import json
import time

import pytest
import yaml

from agentwatch import thresholds
from agentwatch.tooling.generate.alertmanager import RECEIVERS

from support.alerting import REPO, Receiver, binary, generate, http_json, receiver_overrides, run, start_alertmanager, \
    wait_until

TEST_LAYER = "e2e"  # every test here is e2e unless marked otherwise (conftest.py)

CONFIG = REPO / "alerts" / "alertmanager" / "alertmanager.yml"
TEMPLATES = REPO / "alerts" / "alertmanager" / "templates"


@pytest.fixture(autouse=True)
def _no_user_override(monkeypatch):
    monkeypatch.delenv(thresholds.ENV_THRESHOLDS_FILE, raising=False)


def test_amtool_check_config():
    result = run([binary("amtool"), "check-config", str(CONFIG)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout and "1 templates" in result.stdout
    assert "4 receivers" in result.stdout and "2 inhibit rules" in result.stdout


ROUTES = [
    # (labels, receiver)
    ({"alertname": "AgentSuccessRateLow", "severity": "critical", "gen_ai_agent_name": "checkout"}, "oncall-pager"),
    ({"alertname": "AgentLatencyP99High", "severity": "critical", "gen_ai_agent_name": "checkout"}, "oncall-pager"),
    ({"alertname": "AgentToolErrorRateHigh", "severity": "critical", "gen_ai_agent_name": "support",
      "gen_ai_tool_name": "refund"}, "oncall-pager"),
    ({"alertname": "AgentStepsHigh", "severity": "warning", "gen_ai_agent_name": "research"}, "team-chat"),
    ({"alertname": "AgentTokensPerRunHigh", "severity": "warning", "gen_ai_agent_name": "research"}, "team-chat"),
    ({"alertname": "AgentCostPerRunHigh", "severity": "warning", "gen_ai_agent_name": "costly"}, "team-chat"),
    ({"alertname": "AgentTelemetryAbsent", "severity": "warning", "gen_ai_agent_name": "gone"}, "team-chat"),
    ({"alertname": "LLMProviderFailing", "severity": "critical", "gen_ai_provider_name": "openai"}, "oncall-pager"),
    ({"alertname": "AgentDailySpendOverBudget", "severity": "warning"}, "team-chat"),
    ({"alertname": "AgentDailySpendOverBudget", "severity": "critical"}, "oncall-pager"),
    ({"alertname": "Watchdog", "severity": "info"}, "deadmans-switch"),
    ({"alertname": "Watchdog"}, "deadmans-switch"),
    ({"alertname": "SomethingInformational", "severity": "info"}, "null"),
    ({"alertname": "SomeoneElsesAlert"}, "team-chat"),  # no severity: the default route, never lost
    ({"alertname": "SomeoneElsesPage", "severity": "critical"}, "oncall-pager"),
]


@pytest.mark.parametrize("labels, receiver", ROUTES, ids=[
    f"{l['alertname']}-{l.get('severity', 'none')}" for l, _ in ROUTES])
def test_amtool_routes(labels, receiver):
    args = [f"{k}={v}" for k, v in labels.items()]
    result = run([binary("amtool"), "config", "routes", "test", f"--config.file={CONFIG}",
                  f"--verify.receivers={receiver}", *args])
    assert result.returncode == 0, f"{labels} -> {result.stdout.strip()} {result.stderr.strip()}"
    assert result.stdout.strip() == receiver


def test_route_table_covers_every_generated_alert_and_receiver():
    rules = yaml.safe_load((REPO / "alerts/rules/agentwatch-alerts.yaml").read_text())
    generated = {(r["alert"], r["labels"]["severity"]) for g in rules["groups"] for r in g["rules"]}
    tested = {(labels["alertname"], labels.get("severity")) for labels, _ in ROUTES}
    assert generated <= tested
    assert {receiver for _, receiver in ROUTES} == set(RECEIVERS)


def _template_data(status="firing"):
    def alert(tool, alert_status, share):
        return {
            "status": alert_status,
            "labels": {"alertname": "AgentToolErrorRateHigh", "severity": "critical", "gen_ai_agent_name": "support",
                       "gen_ai_tool_name": tool},
            "annotations": {
                "summary": "A tool of an agent fails more often than the tool-error-rate threshold allows.",
                "description": f"{share} of the calls of agent support to tool {tool} failed over the last 15m "
                               "(threshold 5%).",
                "runbook_url": "https://runbooks.example/AgentToolErrorRateHigh.md",
                "dashboard_url": "http://grafana.example/d/agentwatch-tools?var-agent=support"},
            "startsAt": "2025-01-01T00:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.example/graph", "fingerprint": tool,
        }

    alerts = [alert("refund", status, "10%"), alert("lookup", "resolved", "7%")]
    common = {k: v for k, v in alerts[0]["annotations"].items() if k != "description"}
    return {"receiver": "oncall-pager", "status": status, "alerts": alerts,
            "groupLabels": {"alertname": "AgentToolErrorRateHigh", "gen_ai_agent_name": "support"},
            "commonLabels": {"alertname": "AgentToolErrorRateHigh", "severity": "critical",
                             "gen_ai_agent_name": "support"},
            "commonAnnotations": common, "externalURL": "http://alertmanager.example"}


@pytest.mark.parametrize("template, expected", [
    ("agentwatch.title", "[FIRING:1] AgentToolErrorRateHigh for agent support (critical)"),
    ("agentwatch.agent", "support"),
    ("agentwatch.runbook_url", "https://runbooks.example/AgentToolErrorRateHigh.md"),
    ("agentwatch.dashboard_url", "http://grafana.example/d/agentwatch-tools?var-agent=support"),
    ("agentwatch.slack.color", "danger"),
    ("agentwatch.text",
     "A tool of an agent fails more often than the tool-error-rate threshold allows.\n"
     "- [firing] 10% of the calls of agent support to tool refund failed over the last 15m (threshold 5%).\n"
     "- [resolved] 7% of the calls of agent support to tool lookup failed over the last 15m (threshold 5%).\n"
     "Runbook: https://runbooks.example/AgentToolErrorRateHigh.md\n"
     "Dashboard: http://grafana.example/d/agentwatch-tools?var-agent=support"),
    ("agentwatch.slack.text",
     "*A tool of an agent fails more often than the tool-error-rate threshold allows.*\n"
     "• 10% of the calls of agent support to tool refund failed over the last 15m (threshold 5%).\n"
     "• ~resolved~ 7% of the calls of agent support to tool lookup failed over the last 15m (threshold 5%).\n"
     "<https://runbooks.example/AgentToolErrorRateHigh.md|Runbook> | "
     "<http://grafana.example/d/agentwatch-tools?var-agent=support|Dashboard>"),
])
def test_amtool_template_render(tmp_path, template, expected):
    data = tmp_path / "data.json"
    data.write_text(json.dumps(_template_data()))
    result = run([binary("amtool"), "template", "render", f"--template.glob={TEMPLATES}/*.tmpl",
                  f"--template.text={{{{ template \"{template}\" . }}}}", f"--template.data={data}"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.rstrip("\n") == expected


def test_template_render_resolved(tmp_path):
    data = tmp_path / "data.json"
    data.write_text(json.dumps(_template_data("resolved")))
    result = run([binary("amtool"), "template", "render", f"--template.glob={TEMPLATES}/*.tmpl",
                  '--template.text={{ template "agentwatch.title" . }} {{ template "agentwatch.slack.color" . }}',
                  f"--template.data={data}"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[RESOLVED] AgentToolErrorRateHigh for agent support (critical) good"


def _alert(name, severity, agent=None, **labels):
    labels = {"alertname": name, "severity": severity, **labels}
    if agent:
        labels["gen_ai_agent_name"] = agent
    slug = f"?var-agent={agent}" if agent else ""
    return {"labels": labels, "generatorURL": "http://prometheus.example/graph",
            "annotations": {"summary": f"{name} summary.", "description": f"{name} for {agent or 'the fleet'}.",
                            "runbook_url": f"https://runbooks.example/{name}.md",
                            "dashboard_url": f"http://grafana.example/d/x{slug}"}}


def test_real_alertmanager_delivers_pages_chat_and_heartbeat_and_inhibits_warnings(tmp_path):
    binary("prometheus-alertmanager")
    with Receiver() as receiver:
        out = generate(tmp_path / "out", receiver_overrides(receiver, tmp_path / "secrets"))
        daemon, url = start_alertmanager(out / "alerts/alertmanager/alertmanager.yml", tmp_path)
        try:
            http_json(f"{url}/api/v2/alerts", [
                _alert("AgentStepsHigh", "warning", "research"),
                _alert("AgentSuccessRateLow", "critical", "checkout"),
                _alert("AgentStepsHigh", "warning", "checkout"),  # inhibited: checkout has a critical
                _alert("AgentDailySpendOverBudget", "warning"),  # inhibited by its critical twin
                _alert("AgentDailySpendOverBudget", "critical"),
                _alert("LLMProviderFailing", "critical", gen_ai_provider_name="openai"),
                _alert("AgentTelemetryAbsent", "warning", "gone"),  # not inhibited by a fleet-wide critical
                _alert("Watchdog", "info"),
                _alert("SomethingInformational", "info", "research"),  # to nowhere
            ])

            def pages():
                return {(p["payload"]["class"], p["payload"]["custom_details"]["agent"])
                        for p in receiver.posts("/pagerduty")}

            def chats():
                return {a["title"] for p in receiver.posts("/slack") for a in p["attachments"]}

            wait_until(lambda: len(pages()) >= 3 and len(chats()) >= 2 and receiver.posts("/deadman"), 30,
                       f"notifications; got {receiver.received}\n{daemon.log()}")
            # give a wrongly uninhibited or misrouted notification time to arrive
            alerts = wait_until(lambda: [a for a in http_json(f"{url}/api/v2/alerts")
                                         if a["status"]["inhibitedBy"]], 10, "inhibited alerts")
            inhibited = sorted((a["labels"]["alertname"], a["labels"].get("gen_ai_agent_name", "")) for a in alerts)
            assert inhibited == [("AgentDailySpendOverBudget", ""), ("AgentStepsHigh", "checkout")]
            time.sleep(2)

            assert pages() == {("AgentSuccessRateLow", "checkout"), ("AgentDailySpendOverBudget", ""),
                               ("LLMProviderFailing", "")}
            assert chats() == {"[FIRING:1] AgentStepsHigh for agent research (warning)",
                               "[FIRING:1] AgentTelemetryAbsent for agent gone (warning)"}
            page = next(p for p in receiver.posts("/pagerduty") if p["payload"]["class"] == "AgentSuccessRateLow")
            assert page["routing_key"] == "test-routing-key-0123456789abcdef"
            assert page["event_action"] == "trigger"
            assert page["payload"]["severity"] == "critical"
            assert page["payload"]["summary"] == "[FIRING:1] AgentSuccessRateLow for agent checkout (critical)"
            assert page["links"] == [
                {"href": "https://runbooks.example/AgentSuccessRateLow.md", "text": "Runbook"},
                {"href": "http://grafana.example/d/x?var-agent=checkout", "text": "Dashboard"}]
            assert page["payload"]["custom_details"]["runbook_url"] == "https://runbooks.example/AgentSuccessRateLow.md"
            chat = next(a for p in receiver.posts("/slack") for a in p["attachments"] if "research" in a["title"])
            assert chat["color"] == "warning"
            assert chat["title_link"] == "http://grafana.example/d/x?var-agent=research"
            assert chat["text"] == ("*AgentStepsHigh summary.*\n• AgentStepsHigh for research.\n"
                                    "<https://runbooks.example/AgentStepsHigh.md|Runbook> | "
                                    "<http://grafana.example/d/x?var-agent=research|Dashboard>")
            assert {p["commonLabels"]["alertname"] for p in receiver.posts("/deadman")} == {"Watchdog"}
            assert "SomethingInformational" not in json.dumps(receiver.received)
        finally:
            daemon.stop()
