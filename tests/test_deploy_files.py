"""Across collector/, deploy/ and the docs: no secret in any file, every YAML parses, images pinned everywhere,
and the README says how to run the stack."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from agentwatch.tooling.generate import collector as col
from support.deploy_helpers import COLLECTOR, COMPOSE_DIR, K8S, KubeLoader, REPO, secret_findings, secret_value_findings

TEST_LAYER = "unit"  # every test here is unit unless marked otherwise (conftest.py)

# Configs and docs; not the Go module's sources (collector/**/*.go, go.mod, go.sum) nor its build output
# (collector/bin), whose identifiers and test data the config patterns misread as secrets.
SCANNED = [p for root in (COLLECTOR, REPO / "deploy", REPO / "docs") for p in sorted(root.rglob("*"))
           if p.is_file() and p.suffix not in (".go", ".mod", ".sum") and (COLLECTOR / "bin") not in p.parents]


def test_the_secret_scanner_sees_what_it_must():
    for leak in ("password: hunter2hunter2X", "api_key: " + "Zm9vOmJhcmJhemJhcg" + "==", "sk-" + "A1b2" * 6,
                 "https://hooks.slack.com/services/" + "T0123ABCD/B0123ABCD/abcdefABCDEF123456",
                 "postgres://admin:" + "S3cr3t@db:5432/x", "AKIA" + "ABCDEFGHIJKLMNOP"):
        assert secret_findings(leak), leak
    for fine in ("password: ${env:AGENTWATCH_ES_PASSWORD:-}", "key: pagerduty-routing-key", "api_key: ",
                 "routing_key_file: /etc/alertmanager/secrets/pagerduty-routing-key", "# the password: Elastic's",
                 "- sk-(?:ant-|proj-)?[A-Za-z0-9_\\-]{20,}", "--from-file=password=./es-password"):
        assert not secret_findings(fine), fine
    assert secret_value_findings({"es": {"password": "changeme"}, "x": [{"api_key": "abc"}]}) == [
        "es.password = changeme...", "x[0].api_key = abc..."]
    assert secret_value_findings({"password": "${env:P:-}", "token": "", "routing_key_file": "/run/x",
                                  "key": "password"}) == []


@pytest.mark.parametrize("path", SCANNED, ids=lambda p: str(p.relative_to(REPO)))
def test_no_secret_in_any_file(path):
    text = path.read_text(encoding="utf-8", errors="replace")
    assert secret_findings(text) == []


@pytest.mark.parametrize("path", [p for p in SCANNED if p.suffix in (".yaml", ".yml", ".json")],
                         ids=lambda p: str(p.relative_to(REPO)))
def test_every_file_parses(path):
    text = path.read_text(encoding="utf-8")
    docs = [json.loads(text)] if path.suffix == ".json" else list(yaml.load_all(text, Loader=KubeLoader))
    assert docs and all(d is not None for d in docs)
    for doc in docs:
        assert secret_value_findings(doc) == []


def test_compose_secret_placeholders_are_placeholders():
    for path in sorted((COMPOSE_DIR / "secrets").iterdir()):
        text = path.read_text().strip()
        assert "replace" in text.lower() and ".invalid" in text or text.startswith("REPLACE_ME"), path


def test_one_collector_version_everywhere():
    pinned = set()
    for path in [*SCANNED, REPO / "README.md"]:
        pinned |= set(re.findall(r"opentelemetry-collector-contrib:(\d+\.\d+\.\d+)", path.read_text(errors="replace")))
    assert pinned == {col.OTELCOL_VERSION}
    base = yaml.safe_load((K8S / "base" / "kustomization.yaml").read_text())
    assert {i["newTag"] for i in base["images"] if i["name"] == "otel/opentelemetry-collector-contrib"} == \
        {col.OTELCOL_VERSION}


def test_readme_says_how_to_run_the_stack():
    text = (REPO / "README.md").read_text()
    headings = re.findall(r"^## .+$", text, re.M)
    assert "## Deploying the stack" in headings
    assert headings[headings.index("## Deploying the stack") + 1] == "## Configuration"
    section = text.split("## Deploying the stack", 1)[1].split("\n## ", 1)[0]
    for needle in ("docker compose -f deploy/compose/docker-compose.yaml up", "http://localhost:3000",
                   "http://localhost:9090", "http://localhost:9093", "http://localhost:16686",
                   "OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318", "deploy/kubernetes/overlays",
                   "docs/scaling.md"):
        assert needle in section, needle


def test_scaling_doc_uses_the_generated_numbers():
    text = (REPO / "docs" / "scaling.md").read_text()
    from agentwatch.thresholds import load

    assert f"decision_wait` is {col.decision_wait_s(load())} s" in text
    assert "bench/telemetry_per_run.py" in text
    for heading in ("## What one agent run emits", "## Collector throughput", "## Label cardinality",
                    "## Many clusters"):
        assert heading in text, heading
