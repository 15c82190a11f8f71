"""Feeds agentwatch's span processor with OpenAI spans from ANOTHER instrumentation library.

    python foreign_feed.py <official|openllmetry|agentwatch+official|official+agentwatch> <stub_url>

Run by tests/test_foreign_instrumentations.py in a subprocess whose PYTHONPATH holds the side folder of the
chosen library (`.venv/extras/official` or `.venv/extras/openllmetry`), so each library is imported alone.

The process sets global tracer and meter providers (in-memory span exporter and metric reader) with
agentwatch's `AgentSpanProcessor`, instruments the `openai` SDK with the chosen library only, and inside
`agentwatch.agent_run("foreign-agent")` makes three chat calls to the stub server: a plain one, a streamed
one with `include_usage`, and one whose usage reports cached and reasoning tokens. It prints ONE JSON
document on stdout: the finished spans and the metric points.

The two mixed modes also instrument with agentwatch's own OpenAIInstrumentor, in the order given: the
library named last wraps the SDK last, so its span is the outer one.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import agentwatch
from agentwatch.runtime.processor import AgentSpanProcessor, ensure_processor
from agentwatch.runtime.runs import REGISTRY

MODES = ("official", "openllmetry", "agentwatch+official", "official+agentwatch")
CACHED_TOKENS = 4
REASONING_TOKENS = 6


def instrumentor(name: str) -> Any:
    if name == "official":
        from opentelemetry.instrumentation.genai.openai import OpenAIInstrumentor
    elif name == "openllmetry":
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor
    elif name == "agentwatch":
        from agentwatch.runtime.instrumentors.openai import OpenAIInstrumentor
    else:
        raise SystemExit(f"unknown instrumentation {name!r}")
    return OpenAIInstrumentor()


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
    if mode not in MODES:
        raise SystemExit(f"mode must be one of {MODES}, not {mode!r}")

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

    names = mode.split("+")
    for name in names:  # the one instrumented last wraps the SDK last: its span is the outer one
        instrumentor(name).instrument(tracer_provider=tracer_provider, meter_provider=metrics.get_meter_provider())

    import openai

    client = openai.OpenAI(base_url=stub_url + "/v1", api_key="sk-test-SECRETKEY0123456789", max_retries=0)
    messages = [{"role": "user", "content": "where is my order?"}]
    with agentwatch.agent_run("foreign-agent"):
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

    tracer_provider.force_flush()
    document = {
        "mode": mode,
        "instrumentations": names,
        "spans": [span_json(s) for s in spans.get_finished_spans()],
        "metrics": metrics_json(reader),
        "registry_size": len(REGISTRY),
        "evicted_runs": processor.evicted_runs,
    }
    print(json.dumps(document, default=str))


if __name__ == "__main__":
    main()
