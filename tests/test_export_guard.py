"""A dead or hanging collector never holds the agent (issue 11 §2).

End to end: the same agent runs plain and under `opentelemetry-instrument` (and through `agentwatch.init()`)
against a collector that refuses connections and one that accepts and never answers. Its exit time is
measured from outside (the process's end minus the moment the agent's work ended), with the plain run as
the baseline: at most 3 s added when refused, at most the exit budget (the OTLP timeout, or
AGENTWATCH_EXIT_TIMEOUT_SECONDS) when hanging; the same output; one log line for the dropped batches and no
traceback. The bounds get a tolerance for a loaded machine; the real figures are in `bench/bench_startup.py`.

In process: the guarded session against the real OTLP/HTTP exporters: a healthy collector sees every
request, a dead one is not asked again until RETRY_AFTER_S, nothing is retried at exit.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agentwatch.runtime import export_guard
from agentwatch.runtime.export_guard import ExportGuard
from support.bad_collectors import HangingCollector, StatusCollector, refusing_endpoint
from support.otlp_receiver import OtlpReceiver

TEST_LAYER = "e2e"  # every test here is e2e unless marked otherwise (conftest.py)

AGENT = Path(__file__).parent / "agents" / "exit_agent.py"
BIN = Path(sys.executable).parent
# On top of each bound: an instrumented interpreter's own teardown (~0.4 s more than plain here) and the noise
# of a 2-core machine shared by several test suites (plain exit times vary by ±1 s under that load).
TOLERANCE_S = 2.5
LINE = re.compile(r"^agentwatch: \d+ telemetry export batch(es)? dropped \((traces|metrics|logs) \d+"
                  r"(, (metrics|logs) \d+)*\): ")


# --- end to end -----------------------------------------------------------------------------------------
def run_agent(stub, tmp_path, env: dict[str, str], *, instrument: bool = True) -> tuple[subprocess.CompletedProcess,
                                                                                      float]:
    """(the finished process, seconds from the end of the agent's work to the end of the process)."""
    mark = tmp_path / f"mark-{time.monotonic_ns()}"
    child = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTWATCH_"))}
    child.update(STUB_URL=stub.url, EXIT_AGENT_MARK=str(mark), OTEL_SERVICE_NAME="exit-agent",
                 OTEL_BSP_SCHEDULE_DELAY="200", OTEL_BLRP_SCHEDULE_DELAY="200", OTEL_METRIC_EXPORT_INTERVAL="500",
                 **env)
    command = [sys.executable, str(AGENT)]
    if instrument:
        command.insert(0, str(BIN / "opentelemetry-instrument"))
    proc = subprocess.run(command, env=child, capture_output=True, text=True, timeout=120)
    ended = time.time()
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc, ended - float(mark.read_text())


@pytest.fixture(scope="module")
def plain(stub, tmp_path_factory):
    """The same agent without any telemetry: its output and its own exit time."""
    return run_agent(stub, tmp_path_factory.mktemp("plain"), {}, instrument=False)


def assert_one_line_and_same_output(proc, plain_proc, cause: str) -> str:
    assert proc.stdout == plain_proc.stdout
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert "Traceback" not in proc.stderr
    assert len(lines) == 1, proc.stderr
    assert LINE.match(lines[0]) and cause in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("wiring", ["opentelemetry-instrument", "agentwatch.init"])
def test_refusing_collector_adds_at_most_3_s_at_exit(stub, tmp_path, plain, wiring):
    endpoint = refusing_endpoint()
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint}
    if wiring == "agentwatch.init":
        env["EXIT_AGENT_INIT"] = "1"
    proc, exit_s = run_agent(stub, tmp_path, env, instrument=wiring == "opentelemetry-instrument")
    line = assert_one_line_and_same_output(proc, plain[0], f"the collector at {endpoint} refused the connection")
    assert all(re.search(rf"\b{signal} [1-9]", line) for signal in ("traces", "metrics", "logs")), line  # each counted
    added = exit_s - plain[1]
    assert added < 3.0 + TOLERANCE_S, f"exit took {exit_s:.2f} s (plain {plain[1]:.2f} s)"


@pytest.mark.parametrize("wiring", ["opentelemetry-instrument", "agentwatch.init"])
def test_hanging_collector_adds_at_most_the_otlp_timeout(stub, tmp_path, plain, wiring):
    env = {"OTEL_EXPORTER_OTLP_TIMEOUT": "2"}
    if wiring == "agentwatch.init":
        env["EXIT_AGENT_INIT"] = "1"
    with HangingCollector() as collector:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = collector.endpoint
        proc, exit_s = run_agent(stub, tmp_path, env, instrument=wiring == "opentelemetry-instrument")
        accepted = list(collector.accepted)
    assert_one_line_and_same_output(proc, plain[0], f"the collector at {collector.endpoint} did not answer within 2 s")
    assert exit_s - plain[1] < 2.0 + TOLERANCE_S, f"exit took {exit_s:.2f} s (plain {plain[1]:.2f} s)"
    ended_work = time.time() - exit_s
    # What the process did: no request was sent after the exit budget, and none after the first request had
    # hung for the timeout (the endpoint was known hanging: each signal's next export ended without sending).
    # Every request the collector saw is one accepted connection (a hanging request keeps its own).
    assert accepted and max(accepted) < ended_work + 2.0 + 0.5, (accepted, ended_work)
    assert max(accepted) < min(accepted) + 2.0 + 0.5, accepted


def test_agentwatch_exit_budget_bounds_a_longer_otlp_timeout(stub, tmp_path, plain):
    with HangingCollector() as collector:
        proc, exit_s = run_agent(stub, tmp_path, {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
                                                  "OTEL_EXPORTER_OTLP_TIMEOUT": "30",
                                                  "AGENTWATCH_EXIT_TIMEOUT_SECONDS": "2"})
    assert_one_line_and_same_output(proc, plain[0], "did not answer within 2 s")
    assert exit_s - plain[1] < 2.0 + TOLERANCE_S, f"exit took {exit_s:.2f} s (plain {plain[1]:.2f} s)"


def test_healthy_collector_gets_everything_and_no_line(stub, tmp_path, plain):
    with OtlpReceiver() as receiver:
        proc, _exit_s = run_agent(stub, tmp_path, {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint})
        assert proc.stdout == plain[0].stdout and proc.stderr.strip() == ""
        assert len(receiver.spans_named("chat gpt-4o-mini")) == 3
        assert receiver.metric("gen_ai.client.operation.duration") is not None
        assert len(receiver.logs_with_event("gen_ai.client.inference")) == 3


# --- in process: the session against the real exporters -------------------------------------------------
@pytest.fixture
def spans():
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with provider.get_tracer("t").start_as_current_span("one"):
        pass
    return list(memory.get_finished_spans())


def exporter(guard: ExportGuard, endpoint: str, timeout: float = 5.0) -> OTLPSpanExporter:
    return OTLPSpanExporter(endpoint=endpoint + "/v1/traces", timeout=timeout, session=guard.session())


@pytest.mark.unit
def test_healthy_collector_sees_every_request(spans):
    guard = ExportGuard(exit_timeout=5)
    with OtlpReceiver() as receiver:
        for _ in range(3):
            assert exporter(guard, receiver.endpoint).export(spans) is SpanExportResult.SUCCESS
        assert len(receiver.spans()) == 3
    assert guard.dropped == {}


@pytest.mark.unit
def test_refused_export_ends_at_once_and_counts(spans, caplog):
    guard = ExportGuard(exit_timeout=5)
    endpoint = refusing_endpoint()
    started = time.monotonic()
    with caplog.at_level(logging.DEBUG):
        for _ in range(2):
            assert exporter(guard, endpoint).export(spans) is SpanExportResult.FAILURE
    assert time.monotonic() - started < 1.0  # no backoff (the exporter alone retries for ~7 s)
    assert guard.dropped == {"traces": 2}
    # the exporters' own failure lines are replaced by agentwatch's report
    assert not [r for r in caplog.records if r.name.startswith("opentelemetry.exporter")], caplog.text
    guard.report()
    (line,) = [r.getMessage() for r in caplog.records if r.name == "agentwatch"]
    assert line == f"agentwatch: 2 telemetry export batches dropped (traces 2): the collector at {endpoint} refused the connection"


@pytest.mark.unit
def test_hanging_collector_is_asked_once_then_again_after_retry_after(spans, monkeypatch):
    monkeypatch.setattr(export_guard, "RETRY_AFTER_S", 0.5)
    guard = ExportGuard(exit_timeout=5)
    with HangingCollector() as collector:
        started = time.monotonic()
        assert exporter(guard, collector.endpoint, timeout=0.5).export(spans) is SpanExportResult.FAILURE
        assert exporter(guard, collector.endpoint, timeout=0.5).export(spans) is SpanExportResult.FAILURE
        assert time.monotonic() - started < 0.5 + 0.8  # the second export did not wait for the collector
        assert len(collector.accepted) == 1
        time.sleep(0.6)
        assert exporter(guard, collector.endpoint, timeout=0.5).export(spans) is SpanExportResult.FAILURE
        assert len(collector.accepted) == 2  # tried again after RETRY_AFTER_S
    assert guard.dropped == {"traces": 3}


@pytest.mark.unit
def test_retry_later_is_retried_while_running_but_not_at_exit(spans):
    guard = ExportGuard(exit_timeout=5)
    with StatusCollector(503) as collector:
        assert exporter(guard, collector.endpoint, timeout=2.5).export(spans) is SpanExportResult.FAILURE
        assert len(collector.requests) >= 2  # the exporter's own backoff: the collector is alive
        assert guard.dropped == {}
        collector.requests.clear()
        guard.begin_exit()
        started = time.monotonic()
        assert exporter(guard, collector.endpoint, timeout=2.5).export(spans) is SpanExportResult.FAILURE
        assert time.monotonic() - started < 0.8 and len(collector.requests) == 1
    assert guard.dropped == {"traces": 1}


@pytest.mark.unit
def test_exit_budget_spent_sends_nothing(spans):
    guard = ExportGuard(exit_timeout=0.2)
    with OtlpReceiver() as receiver:
        guard.begin_exit()
        time.sleep(0.3)
        assert exporter(guard, receiver.endpoint).export(spans) is SpanExportResult.FAILURE
        assert receiver.requests == []
    assert guard.dropped == {"traces": 1}


@pytest.mark.unit
def test_dropped_batches_are_reported_at_most_once_a_minute_while_running(spans, monkeypatch, caplog):
    monkeypatch.setattr(export_guard, "REPORT_EVERY_S", 0.3)
    guard = ExportGuard(exit_timeout=5)
    endpoint = refusing_endpoint()
    with caplog.at_level(logging.WARNING, logger="agentwatch"):
        exporter(guard, endpoint).export(spans)
        exporter(guard, endpoint).export(spans)
        assert caplog.records == []  # within the window: counted, not yet reported
        time.sleep(0.35)
        exporter(guard, endpoint).export(spans)
        assert [r.getMessage().split(":")[1] for r in caplog.records] == [
            " 3 telemetry export batches dropped (traces 3) in the last 0 s"]
        exporter(guard, endpoint).export(spans)
        guard.report()  # at exit: only what was not reported yet
    assert "1 telemetry export batch dropped (traces 1): the collector" in caplog.records[-1].getMessage()
    assert guard.dropped == {"traces": 4}


@pytest.mark.unit
def test_signal_and_endpoint_from_the_url():
    assert export_guard._signal("http://c:4318/v1/metrics") == "metrics"
    assert export_guard._signal("http://c:4318/custom/path") == "other"
    assert export_guard._endpoint("https://user:secret@c.example:4318/v1/logs") == "https://c.example:4318"


@pytest.mark.unit
def test_exit_shuts_the_providers_down_once_in_data_order_within_the_budget():
    calls = []

    class Provider:
        def __init__(self, name, done=False):
            self.name, self._shutdown = name, done

        def shutdown(self):
            calls.append((self.name, None))

    class Meter(Provider):
        def shutdown(self, timeout_millis=30_000):
            calls.append((self.name, timeout_millis))

    guard = ExportGuard(exit_timeout=3)
    guard.own_shutdown([Provider("traces"), Meter("metrics"), Provider("logs"), Provider("shut down already", True)])
    guard.shutdown()
    guard.shutdown()  # at exit again (atexit) or from agentwatch.shutdown(): once only
    assert [name for name, _ in calls] == ["traces", "metrics", "logs"]
    assert 0 < calls[1][1] <= 3000  # the meter provider gets what is left of the budget
