"""What agentwatch's wiring adds to the SDK it configures (distro/configurator under `opentelemetry-instrument`,
and `agentwatch.init()`):

* the resource attribute `agentwatch.metrics.in_process=true` when metrics are exported from the process, and
  none when they are not (OTEL_METRICS_EXPORTER=none): the collector's connector then makes them from spans;
* a guarded session for the OTLP/HTTP exporters only, never over a credential provider's own session.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from agentwatch import semconv as sc
from agentwatch.runtime import distro
from agentwatch.runtime.export_guard import ExportGuard, GuardedSession
from support.otlp_receiver import OtlpReceiver

TEST_LAYER = "e2e"  # every test here is e2e unless marked otherwise (conftest.py)

HERE = Path(__file__).parent
BIN = Path(sys.executable).parent
MARKER = sc.AGENTWATCH_RESOURCE_METRICS_IN_PROCESS


def run(agent: Path, receiver: OtlpReceiver, stub, env: dict[str, str], *, instrument: bool) -> None:
    child = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTWATCH_"))}
    child.update(STUB_URL=stub.url, EXIT_AGENT_MARK=os.devnull, OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
                 OTEL_BSP_SCHEDULE_DELAY="50", OTEL_METRIC_EXPORT_INTERVAL="200", EXIT_AGENT_PAUSE_S="0", **env)
    command = [sys.executable, str(agent)]
    if instrument:
        command.insert(0, str(BIN / "opentelemetry-instrument"))
    proc = subprocess.run(command, env=child, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.parametrize("metrics_exporter, in_process", [(None, True), ("otlp", True), ("none", False)])
def test_resource_says_whether_metrics_are_exported_in_process(stub, metrics_exporter, in_process):
    env = {"OTEL_METRICS_EXPORTER": metrics_exporter} if metrics_exporter else {}
    with OtlpReceiver() as receiver:
        run(HERE / "agents" / "exit_agent.py", receiver, stub, env, instrument=True)
        spans = receiver.spans_named("chat gpt-4o-mini")
        assert len(spans) == 3
        markers = {s.resource_attributes.get(MARKER) for s in spans}
        assert markers == ({True} if in_process else {None})
        assert (receiver.metric("gen_ai.client.operation.duration") is not None) is in_process


def test_init_marks_the_resource_it_builds(stub):
    with OtlpReceiver() as receiver:
        run(HERE / "agents" / "exit_agent.py", receiver, stub, {"EXIT_AGENT_INIT": "1"}, instrument=False)
        spans = receiver.spans_named("chat gpt-4o-mini")
        assert len(spans) == 3 and {s.resource_attributes.get(MARKER) for s in spans} == {True}
        assert {s.resource_attributes["service.name"] for s in spans} == {"exit-agent"}


@pytest.mark.unit
def test_guarded_sessions_only_for_otlp_http_and_never_over_a_credential_provider(monkeypatch):
    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "console")
    monkeypatch.setenv("OTEL_LOGS_EXPORTER", "otlp_proto_http")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    classes = distro.otlp_http_exporter_classes()
    assert sorted(classes) == ["logs", "traces"]
    args = distro._with_guarded_sessions({}, classes, ExportGuard(exit_timeout=1))
    assert all(isinstance(a["session"], GuardedSession) for a in args.values()) and len(args) == 2

    monkeypatch.setenv("OTEL_PYTHON_EXPORTER_OTLP_HTTP_LOGS_CREDENTIAL_PROVIDER", "my-provider")
    args = distro._with_guarded_sessions({}, classes, ExportGuard(exit_timeout=1))
    assert list(args) == [classes["traces"]]  # the logs exporter keeps the provider's session

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc")
    assert sorted(distro.otlp_http_exporter_classes()) == ["logs"]
