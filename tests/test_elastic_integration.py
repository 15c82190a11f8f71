"""Against a real Elasticsearch cluster, when AGENTWATCH_TEST_ES_URL names one (8.x with elasticsearch<9, or 9.x).

Credentials and TLS come from the usual variables (AGENTWATCH_ES_API_KEY[_FILE], AGENTWATCH_ES_USERNAME with
AGENTWATCH_ES_PASSWORD[_FILE], AGENTWATCH_ES_CA_CERTS). Everything happens in a fresh namespace
(logs-agentwatch-awtest<random>), removed afterwards. Without the variable these tests are skipped, and the
skip reason says so; the fake-server tests (test_elastic.py, test_elastic_handler.py, test_elastic_e2e.py)
cover the same code.
"""

from __future__ import annotations

import os
import uuid

import pytest

from agentwatch.tooling import elastic
from agentwatch.runtime import elasticsearch as handler_module
from agentwatch.config import elasticsearch_settings

TEST_LAYER = "e2e"  # every test here is e2e unless marked otherwise (conftest.py)

URL = os.environ.get("AGENTWATCH_TEST_ES_URL", "").strip()
pytestmark = pytest.mark.skipif(
    not URL, reason="AGENTWATCH_TEST_ES_URL is not set: no real Elasticsearch cluster to test against "
                    "(the fake-server tests ran instead)")


@pytest.fixture(scope="module")
def cluster():
    settings = elasticsearch_settings(URL, namespace=f"awtest{uuid.uuid4().hex[:10]}")
    client = elastic.build_client(settings, request_timeout=30.0, max_retries=2)
    ds = elastic.data_stream_name(settings.namespace)
    yield settings, client, ds
    client.options(ignore_status=404).indices.delete_data_stream(name=ds)
    client.options(ignore_status=404).indices.delete_index_template(name=elastic.template_name(settings.namespace))
    client.options(ignore_status=404).ilm.delete_lifecycle(name=elastic.policy_name(settings.namespace))
    client.close()


def test_setup_is_idempotent_on_a_real_cluster(cluster):
    settings, client, ds = cluster
    first = elastic.setup(client, settings.namespace, 1)
    assert [c.action for c in first] == ["created", "created"]
    assert [c.action for c in elastic.setup(client, settings.namespace, 1)] == ["unchanged", "unchanged"]
    simulated = client.indices.simulate_index_template(name=ds).body["template"]
    assert simulated["settings"]["index"]["lifecycle"]["name"] == elastic.policy_name(settings.namespace)
    props = simulated["mappings"]["properties"]
    assert props["gen_ai"]["properties"]["usage"]["properties"]["input_tokens"]["type"] == "long"
    assert props["trace"]["properties"]["id"]["type"] == "keyword"


def test_handler_writes_and_logs_reads_back(cluster):
    settings, client, ds = cluster
    elastic.setup(client, settings.namespace, 1)
    handler = handler_module.open_handler(settings, flush_interval=0.1, register_atexit=False)
    trace = uuid.uuid4().hex
    base = {"@timestamp": "2030-01-01T00:00:00.000Z", "log.level": "info", "ecs.version": "8.11.0",
            "event.dataset": "agentwatch", "trace.id": trace, "span.id": "00f067aa0ba902b7", "service.name": "it"}
    records = [
        {**base, "message": "chat gpt-4o ok", "event.action": "gen_ai.client.inference", "event.outcome": "success",
         "event.duration": 800_000_000, "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o",
         "gen_ai.usage.input_tokens": 100, "gen_ai.usage.output_tokens": 20, "agentwatch.usage.cost_usd": 0.0004},
        {**base, "message": "tool", "event.action": "gen_ai.execute_tool", "event.outcome": "success",
         "event.duration": 1_000_000, "gen_ai.agent.name": "it", "gen_ai.tool.name": "lookup",
         "gen_ai.tool.call.arguments": '{"id": 1}', "gen_ai.tool.call.result": {"structured": ["ok"]}},
        {**base, "message": "malformed count", "event.action": "gen_ai.client.inference",
         "gen_ai.usage.input_tokens": "not-a-number"},  # ignore_malformed: the record is kept
    ]
    for r in records:
        handler.write(r)
    assert handler.flush(30)
    handler.close()
    assert handler.stats()["indexed"] == 3, handler.stats()
    client.indices.refresh(index=ds)
    docs = elastic.find_records(client, settings.namespace, trace_id=trace)
    assert len(docs) == 3
    (stream,) = client.indices.get_data_stream(name=ds).body["data_streams"]
    assert stream.get("ilm_policy") == elastic.policy_name(settings.namespace)
    (tl,) = elastic.build_timelines(docs)
    assert tl.llm_calls == 2 and tl.tool_calls == 1 and tl.input_tokens == 100
