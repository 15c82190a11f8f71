"""End to end: `agentwatch es setup`, an unmodified agent under opentelemetry-instrument with AGENTWATCH_ES_URL,
then `agentwatch logs` reading its runs back from (the in-suite fake) Elasticsearch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from agentwatch.tooling import elastic
from agentwatch.tooling.cli import main
from support.fake_es import FakeElasticsearch

TEST_LAYER = "e2e"  # every test here is e2e unless marked otherwise (conftest.py)

HERE = Path(__file__).parent
BIN = Path(sys.executable).parent
API_KEY = "ZTJlLWlkOmUyZS1zZWNyZXQta2V5LXZhbHVl"


@pytest.fixture
def fake_es():
    with FakeElasticsearch() as server:
        yield server


def test_agent_records_land_in_elasticsearch_and_read_back_as_timelines(stub, fake_es):
    fake_es.require_auth(f"ApiKey {API_KEY}")
    auth_env = {"AGENTWATCH_ES_URL": fake_es.url, "AGENTWATCH_ES_API_KEY": API_KEY}
    setup = CliRunner().invoke(main, ["es", "setup"], env=auth_env)
    assert setup.exit_code == 0, setup.output

    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTWATCH_", "ANTHROPIC_"))}
    env.update(STUB_URL=stub.url, OTEL_SERVICE_NAME="api-agent", OTEL_TRACES_EXPORTER="none",
               OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none", ANTHROPIC_OPEN_TELEMETRY="false",
               **auth_env)
    agent = [str(BIN / "opentelemetry-instrument"), sys.executable, str(HERE / "agents" / "api_agent.py")]
    proc = subprocess.run(agent, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "agent done" in proc.stdout
    assert API_KEY not in proc.stdout + proc.stderr

    bulks = fake_es.bulk_requests()
    assert bulks, "the handler sent its records (at the latest when the agent exited)"
    for request in bulks:
        lines = request.ndjson()
        assert lines[0::2] == [{"create": {"_index": "logs-agentwatch-default"}}] * (len(lines) // 2)
    docs = fake_es.documents()
    kinds = Counter(d["event.action"] for d in docs)
    assert kinds == {"gen_ai.client.inference": 15, "gen_ai.invoke_agent": 8, "gen_ai.execute_tool": 7,
                     "agentwatch.budget.warning": 1}
    assert {d["service.name"] for d in docs} == {"api-agent"}

    # every field the records carry has an explicit mapping in the template (nothing left to dynamic guessing)
    mapped = set(elastic.FIELD_MAPPINGS) | {"data_stream.type", "data_stream.dataset", "data_stream.namespace"}
    assert {key for d in docs for key in d} - mapped == set()

    (billing,) = [d for d in docs
                  if d.get("gen_ai.agent.name") == "billing" and d["event.action"] == "gen_ai.invoke_agent"]
    result = CliRunner().invoke(main, ["logs", "--trace-id", billing["trace.id"]], env={**auth_env, "COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    out = result.output
    rows = [line for line in out.splitlines() if "│" in line]
    assert [r.split("│")[1].strip() for r in rows] == ["run", "llm", "tool"], out
    assert "billing" in rows[0] and "payment_failed" in rows[0] and "card declined" in rows[0]
    assert "chat gpt-4o-mini" in rows[1] and "ok" in rows[1]
    assert "charge_card" in rows[2] and "PermissionError" in rows[2]
    assert "1 LLM calls, 1 tool calls, 2 errors" in out

    result = CliRunner().invoke(main, ["logs", "--agent", "runaway", "--since", "1h", "--json"], env=auth_env)
    assert result.exit_code == 0, result.output
    (trace,) = json.loads(result.output)["traces"]
    assert trace["totals"]["llm_calls"] == 4 and trace["totals"]["agents"] == ["runaway"]
    (run,) = [e for e in trace["events"] if e["kind"] == "run"]
    assert run["outcome"] == "budget_exceeded"
    assert trace["totals"]["input_tokens"] == run["input_tokens"] > 0
    assert trace["totals"]["cost_usd"] > 0 and trace["totals"]["cost_unknown"] is False

    result = CliRunner().invoke(main, ["logs", "--agent", "worker", "--json"], env=auth_env)
    traces = json.loads(result.output)["traces"]
    assert sorted(t["totals"]["llm_calls"] for t in traces) == [1, 2, 3]
