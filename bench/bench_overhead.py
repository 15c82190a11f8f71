"""Per-call overhead of agentwatch on an OpenAI chat call, in one process.

The SDK talks to an in-process transport (no sockets), so what is measured is the SDK's own work plus
whatever the instrumentation adds: span, metrics, cost and the log record, with the real OpenTelemetry SDK
pipeline behind them (batch span and log processors with exporters that drop, a metric reader).

Blocks of calls alternate between uninstrumented, a bare hand-written span (the floor any tracing pays) and
agentwatch; each block's median per-call time is taken, and the medians of the blocks are compared, so
drift in machine speed hits every variant alike.

    python bench/bench_overhead.py [--calls 2000] [--blocks 7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import httpx2
import openai
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from agentwatch.runtime import telemetry
from agentwatch.runtime.instrumentors.openai import OpenAIInstrumentor

BODY = json.dumps({
    "id": "chatcmpl-bench", "object": "chat.completion", "created": 1700000000, "model": "gpt-4o-mini-2024-07-18",
    "choices": [{"index": 0, "finish_reason": "stop",
                 "message": {"role": "assistant", "content": "Paris is the capital of France."}}],
    "usage": {"prompt_tokens": 12, "completion_tokens": 8, "total_tokens": 20,
              "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0}},
}).encode()
MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]


class DropSpans(SpanExporter):
    def export(self, spans):
        return SpanExportResult.SUCCESS


class DropLogs(LogRecordExporter):
    def export(self, batch):
        return LogRecordExportResult.SUCCESS

    def shutdown(self):
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def make_client() -> openai.OpenAI:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=BODY, headers={"content-type": "application/json"})

    http_client = httpx2.Client(transport=httpx2.MockTransport(handler))
    return openai.OpenAI(api_key="sk-bench", base_url="http://bench.invalid/v1", http_client=http_client,
                         max_retries=0)


def block(fn, calls: int) -> float:
    """Median seconds per call over one block."""
    samples = []
    for _ in range(calls):
        t0 = time.perf_counter_ns()
        fn()
        samples.append(time.perf_counter_ns() - t0)
    return statistics.median(samples) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--blocks", type=int, default=7)
    args = parser.parse_args()

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(DropSpans(), max_queue_size=65536))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(BatchLogRecordProcessor(DropLogs(), max_queue_size=65536))
    tracer = tracer_provider.get_tracer("bench")
    client = make_client()
    instrumentor = OpenAIInstrumentor()

    def call():
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    def call_in_bare_span():
        with tracer.start_as_current_span("chat gpt-4o-mini"):
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    def instrument():
        instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider,
                                logger_provider=logger_provider)

    def uninstrument():
        instrumentor.uninstrument()
        telemetry.reset_telemetry()

    # warm up all paths (imports, price lookup memo, connection-free transport)
    for _ in range(300):
        call()
    instrument()
    for _ in range(300):
        call()
    uninstrument()

    base, bare, instrumented = [], [], []
    for _ in range(args.blocks):
        base.append(block(call, args.calls))
        bare.append(block(call_in_bare_span, args.calls))
        instrument()
        instrumented.append(block(call, args.calls))
        uninstrument()

    b, s, i = statistics.median(base), statistics.median(bare), statistics.median(instrumented)
    print(f"calls per block: {args.calls}, blocks: {args.blocks}")
    print(f"uninstrumented        {b * 1e6:8.1f} µs/call")
    print(f"bare hand-written span {s * 1e6:8.1f} µs/call   (+{(s - b) * 1e6:.1f} µs)")
    print(f"agentwatch            {i * 1e6:8.1f} µs/call   (+{(i - b) * 1e6:.1f} µs, ratio {i / b:.3f})")
    tracer_provider.shutdown()
    logger_provider.shutdown()


if __name__ == "__main__":
    main()
