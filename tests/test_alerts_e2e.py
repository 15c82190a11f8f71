"""End to end: a live instrumented workload -> a real Prometheus evaluating the generated rules -> a real
Alertmanager with the generated routing -> the page arrives at the test's stand-in for PagerDuty.

What differs from production is only what a user's override file can change, and nothing is edited by hand:
`agentwatch generate --thresholds <override>` regenerates the rules with the success-rate window and `for`
shortened (20s / 5s instead of 15m / 5m) and the routing with short group timings, PagerDuty's URL pointed
at the test's HTTP receiver, and the routing key, Slack URL and dead man's switch in temp files / URLs.
The PagerDuty receiver itself (pagerduty_configs, Events API v2 payload, templates) is the generated one.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from agentwatch import thresholds

from support.alerting import Daemon, Receiver, binary, free_port, generate, http_json, receiver_overrides, \
    start_alertmanager, wait_until

TEST_LAYER = "e2e"  # every test here is e2e unless marked otherwise (conftest.py)

HERE = Path(__file__).parent
AGENT = HERE / "agents" / "alerting_agent.py"
BIN = Path(sys.executable).parent
FAILING, HEALTHY = "checkout-agent", "support-agent"


@pytest.fixture
def workload(stub, tmp_path):
    binary("prometheus"), binary("prometheus-alertmanager")  # fail or skip before starting anything
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTWATCH_", "ANTHROPIC_"))}
    env.update(STUB_URL=stub.url, OTEL_SERVICE_NAME="alerting-e2e", OTEL_METRICS_EXPORTER="prometheus",
               OTEL_EXPORTER_PROMETHEUS_HOST="127.0.0.1", OTEL_EXPORTER_PROMETHEUS_PORT=str(port),
               OTEL_TRACES_EXPORTER="none", OTEL_LOGS_EXPORTER="none", ANTHROPIC_OPEN_TELEMETRY="false",
               AGENT_MAX_SECONDS="240")
    daemon = Daemon("workload", [str(BIN / "opentelemetry-instrument"), sys.executable, str(AGENT)],
                    tmp_path / "workload.log", f"http://127.0.0.1:{port}/metrics", env=env, stdin=subprocess.PIPE)
    daemon.start(timeout=60)
    yield port, daemon
    if daemon.proc and daemon.proc.stdin:
        daemon.proc.stdin.close()
        try:
            daemon.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
    daemon.stop()


def test_failing_agent_pages_oncall_with_its_runbook(tmp_path, workload, monkeypatch):
    monkeypatch.delenv(thresholds.ENV_THRESHOLDS_FILE, raising=False)
    prometheus_bin = binary("prometheus")
    agent_port, agent = workload
    started = time.monotonic()
    with Receiver() as receiver:
        override = {"signals": {"success_rate": {"window": "20s", "for": "5s"}},
                    **receiver_overrides(receiver, tmp_path / "secrets")}
        out = generate(tmp_path / "out", override)
        rules = sorted((out / "alerts/rules").glob("*.yaml"))
        alertmanager, am_url = start_alertmanager(out / "alerts/alertmanager/alertmanager.yml", tmp_path)
        prom_port = free_port()
        config = tmp_path / "prometheus.yml"
        config.write_text(yaml.safe_dump({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
            "rule_files": [str(p) for p in rules],
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [am_url.removeprefix("http://")]}]}]},
            "scrape_configs": [{"job_name": "agents", "static_configs": [{"targets": [f"127.0.0.1:{agent_port}"]}]}],
        }))
        (tmp_path / "prometheus-data").mkdir()
        prometheus = Daemon("prometheus", [
            prometheus_bin, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=warn",
            "--rules.alert.resend-delay=2s",  # default 1m: a first send before Alertmanager is discovered is lost
        ], tmp_path / "prometheus.log", f"http://127.0.0.1:{prom_port}/-/ready")
        prometheus.start()
        prom = f"http://127.0.0.1:{prom_port}"
        try:
            groups = http_json(f"{prom}/api/v1/rules")["data"]["groups"]
            assert sum(len(g["rules"]) for g in groups) > 20
            assert all(r["health"] != "err" for g in groups for r in g["rules"])

            def pages_for(agent_name):
                return [p for p in receiver.posts("/pagerduty")
                        if p["payload"]["custom_details"]["agent"] == agent_name]

            def diagnostics():
                try:
                    alerts = http_json(f"{prom}/api/v1/alerts")["data"]["alerts"]
                    ratio = http_json(f"{prom}/api/v1/query?query="
                                      "gen_ai_agent_name:gen_ai_invoke_agent_success:ratio_rate20s")["data"]
                except OSError as exc:
                    alerts, ratio = f"unavailable: {exc}", None
                return (f"prometheus alerts: {alerts}\nratio: {ratio}\nreceived: {receiver.received}\n"
                        f"prometheus log:\n{prometheus.log()}\nalertmanager log:\n{alertmanager.log()}\n"
                        f"workload log:\n{agent.log()}")

            try:
                wait_until(lambda: pages_for(FAILING), 75, f"the page for {FAILING}", interval=0.5)
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n{diagnostics()}") from None
            elapsed = time.monotonic() - started

            page = pages_for(FAILING)[0]
            assert page["event_action"] == "trigger", diagnostics()
            assert page["routing_key"] == "test-routing-key-0123456789abcdef"
            assert page["payload"]["class"] == "AgentSuccessRateLow"
            assert page["payload"]["severity"] == "critical"
            assert page["payload"]["summary"] == f"[FIRING:1] AgentSuccessRateLow for agent {FAILING} (critical)"
            runbook = thresholds.load().runbook_url(thresholds.load()["success_rate"])
            assert runbook.endswith("/alerts/runbooks/AgentSuccessRateLow.md")
            assert {"href": runbook, "text": "Runbook"} in page["links"]
            assert page["payload"]["custom_details"]["runbook_url"] == runbook
            assert re.search(rf"Only \d+(\.\d+)?% of the runs of agent {FAILING} succeeded over the last 20s "
                             r"\(threshold 90%\)", page["payload"]["custom_details"]["alerts"]), page

            firing = [a for a in http_json(f"{prom}/api/v1/alerts")["data"]["alerts"]
                      if a["labels"]["alertname"] == "AgentSuccessRateLow"]
            assert [a["labels"]["gen_ai_agent_name"] for a in firing] == [FAILING]
            assert firing[0]["annotations"]["runbook_url"] == runbook
            assert not pages_for(HEALTHY), diagnostics()
            try:
                wait_until(lambda: receiver.posts("/deadman"), 15, "the Watchdog heartbeat")
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n{diagnostics()}") from None
            assert elapsed < 90, f"page took {elapsed:.0f}s"
        finally:
            prometheus.stop()
            alertmanager.stop()
