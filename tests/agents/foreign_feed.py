"""Feeds agentwatch's span processor with OpenAI spans from ANOTHER instrumentation library.

    python foreign_feed.py <mode> <stub_url> [openai|anthropic]

mode: one library (`official`, `openllmetry`) or several joined by `+` (`agentwatch+official`, ...), each
instrumenting the chosen client in that order.

Run by tests/test_foreign_instrumentations.py in a subprocess whose PYTHONPATH holds the side folder of the
chosen library (`.venv/extras/official` or `.venv/extras/openllmetry`), so each library is imported alone.

The process sets global tracer and meter providers (in-memory span exporter and metric reader) with
agentwatch's `AgentSpanProcessor`, instruments the `openai` SDK with the chosen library only, and inside
`agentwatch.agent_run("foreign-agent")` makes three chat calls to the stub server: a plain one, a streamed
one with `include_usage`, and one whose usage reports cached and reasoning tokens. It prints ONE JSON
document on stdout: the finished spans and the metric points.

Mixed modes also instrument with agentwatch's own instrumentor, in the order given: the library named
last wraps the SDK last, so its wrapper is the outer one. With `anthropic` the three calls are
`messages.create`, `messages.create(stream=True)` and the `messages.stream` helper, with the SDK's own
tracing left at its default (no option, no ANTHROPIC_OPEN_TELEMETRY).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from opentelemetry import _logs, metrics, trace
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import agentwatch
from agentwatch.runtime.processor import AgentSpanProcessor, ensure_processor
from agentwatch.runtime.runs import REGISTRY

LIBRARIES = ("official", "openllmetry", "agentwatch")
CACHED_TOKENS = 4
REASONING_TOKENS = 6


def instrumentor(name: str, client: str) -> Any:
    if client == "anthropic":
        if name == "official":
            from opentelemetry.instrumentation.genai.anthropic import AnthropicInstrumentor
        elif name == "openllmetry":
            from opentelemetry.instrumentation.anthropic import AnthropicInstrumentor
        else:
            from agentwatch.runtime.instrumentors.anthropic import AnthropicInstrumentor
        return AnthropicInstrumentor()
    if name == "official":
        from opentelemetry.instrumentation.genai.openai import OpenAIInstrumentor
    elif name == "openllmetry":
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor
    else:
        from agentwatch.runtime.instrumentors.openai import OpenAIInstrumentor
    return OpenAIInstrumentor()


def openai_calls(stub_url: str) -> None:
    import openai

    client = openai.OpenAI(base_url=stub_url + "/v1", api_key="sk-test-SECRETKEY0123456789", max_retries=0)
    messages = [{"role": "user", "content": "where is my order?"}]
    client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True,
                                            stream_options={"include_usage": True})
    streamed_usage = None
    for chunk in stream:
        if chunk.usage is not None:
            streamed_usage = chunk.usage
    assert streamed_usage is not None, "the stub sends a usage chunk when include_usage is set"
    client.chat.completions.create(
        model="o3-mini", messages=messages,
        extra_headers={"x-stub-cached-tokens": str(CACHED_TOKENS),
                       "x-stub-reasoning-tokens": str(REASONING_TOKENS)})


def anthropic_calls(stub_url: str) -> None:
    import anthropic

    client = anthropic.Anthropic(base_url=stub_url, api_key="sk-ant-SECRETKEY0123456789", max_retries=0)
    messages = [{"role": "user", "content": "where is my order?"}]
    client.messages.create(model="claude-haiku-4-5", max_tokens=64, messages=messages,
                           extra_headers={"x-stub-cached-tokens": str(CACHED_TOKENS)})
    for _event in client.messages.create(model="claude-haiku-4-5", max_tokens=64, messages=messages, stream=True):
        pass
    with client.messages.stream(model="claude-haiku-4-5", max_tokens=64, messages=messages) as stream:
        stream.get_final_message()


def value(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


def span_json(span: Any) -> dict[str, Any]:
    return {
        "name": span.name,
        "scope": span.instrumentation_scope.name if span.instrumentation_scope else None,
        "kind": span.kind.name,
        "span_id": format(span.context.span_id, "016x"),
        "parent_span_id": format(span.parent.span_id, "016x") if span.parent is not None else None,
        "trace_id": format(span.context.trace_id, "032x"),
        "status": span.status.status_code.name,
        "start": span.start_time,
        "end": span.end_time,
        "attributes": {k: value(v) for k, v in span.attributes.items()},
    }


def metrics_json(reader: InMemoryMetricReader) -> list[dict[str, Any]]:
    out = []
    data = reader.get_metrics_data()
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                points = []
                for p in metric.data.data_points:
                    point: dict[str, Any] = {"attributes": {k: value(v) for k, v in (p.attributes or {}).items()}}
                    for field in ("value", "sum", "count", "min", "max"):
                        if hasattr(p, field):
                            point[field] = getattr(p, field)
                    if hasattr(p, "explicit_bounds"):
                        point["explicit_bounds"] = list(p.explicit_bounds)
                    points.append(point)
                out.append({"name": metric.name, "scope": sm.scope.name, "unit": metric.unit, "points": points})
    return out


def main() -> None:
    mode, stub_url = sys.argv[1], sys.argv[2].rstrip("/")
    client = sys.argv[3] if len(sys.argv) > 3 else "openai"
    names = mode.split("+")
    if not set(names) <= set(LIBRARIES) or client not in ("openai", "anthropic"):
        raise SystemExit(f"mode: libraries of {LIBRARIES} joined by '+'; client: openai|anthropic")

    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    # ensure_processor() creates the AgentSpanProcessor and marks the provider as having one. Adding a
    # second AgentSpanProcessor() by hand would double-count: agent_run() and agentwatch's instrumentor
    # call ensure_processor() themselves, and it only recognises the processor it registered.
    processor = ensure_processor(tracer_provider)
    assert isinstance(processor, AgentSpanProcessor)
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    trace.set_tracer_provider(tracer_provider)
    reader = InMemoryMetricReader()
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    logs = InMemoryLogRecordExporter()
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs))
    _logs.set_logger_provider(logger_provider)

    for name in names:  # the one instrumented last wraps the SDK last: its wrapper is the outer one
        instrumentor(name, client).instrument(tracer_provider=tracer_provider,
                                              meter_provider=metrics.get_meter_provider())

    with agentwatch.agent_run("foreign-agent"):
        (anthropic_calls if client == "anthropic" else openai_calls)(stub_url)

    tracer_provider.force_flush()
    document = {
        "mode": mode,
        "client": client,
        "instrumentations": names,
        "spans": [span_json(s) for s in spans.get_finished_spans()],
        "metrics": metrics_json(reader),
        "registry_size": len(REGISTRY),
        "llm_logs": sorted(format(r.log_record.span_id, "016x") for r in logs.get_finished_logs()
                           if r.log_record.event_name == "gen_ai.client.inference"),
        "evicted_runs": processor.evicted_runs,
    }
    print(json.dumps(document, default=str))


if __name__ == "__main__":
    main()
