"""agentwatch.init(): the programmatic path for agents not started under opentelemetry-instrument."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from support.otlp_receiver import OtlpReceiver

TEST_LAYER = "e2e"  # every test here is e2e unless marked otherwise (conftest.py)

SCRIPT = Path(__file__).parent / "agents" / "init_agent.py"


def run(stub, receiver, mode):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTWATCH_"))}
    env.update(STUB_URL=stub.url, RECEIVER=receiver.endpoint, ANTHROPIC_OPEN_TELEMETRY="false")
    proc = subprocess.run([sys.executable, str(SCRIPT), mode], env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_init_sets_up_all_three_signals_and_is_idempotent(stub):
    with OtlpReceiver() as receiver:
        run(stub, receiver, "fresh")
        spans = receiver.spans()
        names = sorted(s.name for s in spans)
        assert names == ["chat gpt-4o-mini", "invoke_agent init-agent"]
        assert {s.resource_attributes["service.name"] for s in spans} == {"init-agent"}
        (run_span,) = [s for s in spans if s.name.startswith("invoke_agent")]
        assert run_span.attributes["gen_ai.invoke_agent.inference_calls"] == 1
        assert receiver.metric("gen_ai.client.operation.duration") is not None
        assert receiver.metric("gen_ai.invoke_agent.duration") is not None
        assert receiver.logs_with_event("gen_ai.client.inference")


def test_init_keeps_the_applications_own_tracer_provider(stub):
    with OtlpReceiver() as receiver:
        proc = run(stub, receiver, "own-provider")
        assert receiver.spans() == [], "spans go to the application's own provider, not a second one"
        assert '"name": "invoke_agent init-agent"' in proc.stdout
        assert '"gen_ai.invoke_agent.inference_calls": 1' in proc.stdout
        assert receiver.metric("gen_ai.client.operation.duration") is not None, "missing meter provider added"
