"""Soak benchmark of the AgentSpanProcessor: 1,000,000 LLM-call spans through 100,000 agent runs.

Each run is an `invoke_agent` span with 10 child `chat` spans (created directly with a tracer, no HTTP)
that carry gen_ai.* usage attributes and, like agentwatch's own spans, `agentwatch.usage.cost_usd`. They
go through a real SDK `TracerProvider` with the processor and a BatchSpanProcessor whose exporter drops
everything; the agent metrics go to a real MeterProvider (in-memory reader) and the run log records to a
real LoggerProvider (batch processor, dropping exporter). Reported:

1. overhead: the processor's cost per span on top of the SDK, from the same workload on a provider with and
   one without the processor, in alternating blocks (median of the blocks' CPU time per span on the calling
   thread, where the processor does all its work; the wall-time difference is shown too). Measured for
   spans that carry their cost, and for spans that carry none (as other instrumentations emit; the
   processor then prices them and writes the cost onto the span), and split into the per-span path and the
   run-end work (agent metrics, run log record) by turning those steps off on extra processor instances;
2. soak: RSS growth (VmRSS of /proc/self/status) from after warm-up to the end of N runs, throughput, and
   the processor's live registry size once every span has ended (must be 0);
3. leak: the soak again with 1 % of runs whose `invoke_agent` span never ends and a short TTL: the sweep
   evicts them, the registry stays small and RSS stays flat.

    python bench/bench_processor_soak.py [--runs 100000] [--calls-per-run 10] [--blocks 21] [--profile] [--strict]

AGENTWATCH_* variables are ignored (removed from the environment) so that the figures are comparable.
Targets: RSS growth < 20 MB, overhead < 5 µs per span, registry 0 at the end.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import statistics
import sys
import time
from typing import Any, Callable

for _key in [k for k in os.environ if k.startswith("AGENTWATCH_")]:
    del os.environ[_key]
# the batch span processor drops spans when its queue is full (the dropping exporter's thread cannot keep up
# with a tight loop); both variants drop alike, and the warning would only clutter the table
logging.getLogger("opentelemetry.sdk._shared_internal").setLevel(logging.ERROR)

from opentelemetry import _logs, metrics, trace  # noqa: E402
from opentelemetry.sdk._logs import LoggerProvider  # noqa: E402
from opentelemetry.sdk._logs.export import (  # noqa: E402
    BatchLogRecordProcessor,
    LogRecordExporter,
    LogRecordExportResult,
)
from opentelemetry.sdk.metrics import MeterProvider  # noqa: E402
from opentelemetry.sdk.metrics.export import InMemoryMetricReader  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult  # noqa: E402
from opentelemetry.trace import SpanKind  # noqa: E402

from agentwatch import semconv as sc  # noqa: E402
from agentwatch.runtime.processor import AgentSpanProcessor  # noqa: E402
from agentwatch.runtime.runs import REGISTRY  # noqa: E402

RSS_TARGET_MB = 20.0
OVERHEAD_TARGET_US = 5.0

RUN_NAME = "invoke_agent soak-agent"
RUN_ATTRS = {sc.GEN_AI_OPERATION_NAME: sc.OP_INVOKE_AGENT, sc.GEN_AI_AGENT_NAME: "soak-agent"}
CHAT_NAME = "chat gpt-4o-mini"
CHAT_START_ATTRS = {sc.GEN_AI_OPERATION_NAME: sc.OP_CHAT, sc.GEN_AI_PROVIDER_NAME: sc.PROVIDER_OPENAI,
                    sc.GEN_AI_REQUEST_MODEL: "gpt-4o-mini", sc.SERVER_ADDRESS: "api.openai.com"}
# set when the response arrives, as an instrumentation does
USAGE_ATTRS = {sc.GEN_AI_RESPONSE_MODEL: "gpt-4o-mini-2024-07-18", sc.GEN_AI_RESPONSE_ID: "chatcmpl-soak",
               sc.GEN_AI_RESPONSE_FINISH_REASONS: ("stop",), sc.GEN_AI_USAGE_INPUT_TOKENS: 120,
               sc.GEN_AI_USAGE_OUTPUT_TOKENS: 40}
USAGE_WITH_COST = {**USAGE_ATTRS, sc.AGENTWATCH_COST_USD: 0.000042}


class DropSpans(SpanExporter):
    def export(self, spans: Any) -> SpanExportResult:
        return SpanExportResult.SUCCESS


class DropLogs(LogRecordExporter):
    def export(self, batch: Any) -> LogRecordExportResult:
        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def rss_mb(field: str = "VmRSS") -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError(f"no {field} in /proc/self/status")


def settled_rss() -> float:
    gc.collect()
    return rss_mb()


def provider(processor: AgentSpanProcessor | None) -> TracerProvider:
    tp = TracerProvider()
    if processor is not None:
        tp.add_span_processor(processor)
    tp.add_span_processor(BatchSpanProcessor(DropSpans()))
    return tp


def workload(tracer: trace.Tracer, runs: int, calls: int, usage: dict, leak_every: int = 0,
             first: int = 0) -> int:
    """`runs` runs of `calls` LLM-call spans each; every `leak_every`-th run span is never ended.
    Returns the number of spans started."""
    set_in_context = trace.set_span_in_context
    for i in range(first, first + runs):
        run = tracer.start_span(RUN_NAME, kind=SpanKind.INTERNAL, attributes=RUN_ATTRS)
        ctx = set_in_context(run)
        for _ in range(calls):
            span = tracer.start_span(CHAT_NAME, context=ctx, kind=SpanKind.CLIENT, attributes=CHAT_START_ATTRS)
            span.set_attributes(usage)
            span.end()
        if leak_every and i % leak_every == 0:
            continue  # this run's span never ends: only the TTL sweep frees its state
        run.end()
    return runs * (calls + 1)


def timed_block(fn: Callable[[], int]) -> tuple[float, float]:
    """(CPU seconds of the calling thread, wall seconds) per span over one block. The processor does all its
    work on the calling thread, so its CPU time is the figure that other processes on the machine disturb
    least; the wall time is shown too."""
    c0, t0 = time.thread_time_ns(), time.perf_counter_ns()
    spans = fn()
    t1, c1 = time.perf_counter_ns(), time.thread_time_ns()
    return (c1 - c0) / 1e9 / spans, (t1 - t0) / 1e9 / spans


# --- 1. overhead ----------------------------------------------------------------------------------------
def _without(processor: AgentSpanProcessor, method: str) -> AgentSpanProcessor:
    """The processor with one of its (private) steps turned into a no-op, to split its cost into parts."""
    if not hasattr(processor, method):
        raise AttributeError(method)
    setattr(processor, method, lambda *args, **kwargs: None)
    return processor


def overhead(args: argparse.Namespace) -> tuple[list[tuple[str, float, float, float]], dict[str, float]]:
    """Rows (workload, SDK-only median, SDK+processor median, wall-time overhead) in CPU s/span of the
    calling thread, and the breakdown of the cost-attribute workload {part: CPU s/span}."""
    variants: dict[str, AgentSpanProcessor | None] = {"sdk": None, "processor": AgentSpanProcessor()}
    try:  # breakdown: the same processor without its run-end log record / without its whole run-end step
        variants["no run log"] = _without(AgentSpanProcessor(), "_log")
        variants["no run end"] = _without(AgentSpanProcessor(), "_run_ended")
    except AttributeError:
        pass  # the processor's internals changed: no breakdown
    providers = {name: provider(p) for name, p in variants.items()}
    tracers = {name: tp.get_tracer("soak") for name, tp in providers.items()}
    workloads = {"spans with a cost attribute": USAGE_WITH_COST, "spans without cost (priced here)": USAGE_ATTRS}
    n, calls = args.block_runs, args.calls_per_run

    for tracer in tracers.values():  # warm up every path (price memo, instruments, label caches)
        for usage in workloads.values():
            workload(tracer, 2000, calls, usage)

    plan = [(w, v) for w in workloads for v in ("sdk", "processor")]
    plan += [(next(iter(workloads)), v) for v in variants if v not in ("sdk", "processor")]
    cpu: dict[tuple[str, str], list[float]] = {key: [] for key in plan}
    wall: dict[tuple[str, str], list[float]] = {key: [] for key in plan}
    for b in range(args.blocks):
        for w, v in (plan if b % 2 == 0 else reversed(plan)):
            tracer, usage = tracers[v], workloads[w]
            c, t = timed_block(lambda: workload(tracer, n, calls, usage))
            cpu[(w, v)].append(c)
            wall[(w, v)].append(t)

    if args.profile:
        profile(tracers["processor"], calls)

    med = {key: statistics.median(values) for key, values in cpu.items()}
    rows = []
    for w in workloads:
        wall_extra = statistics.median(wall[(w, "processor")]) - statistics.median(wall[(w, "sdk")])
        rows.append((w, med[(w, "sdk")], med[(w, "processor")], wall_extra))
    first = next(iter(workloads))
    breakdown = {}
    if (first, "no run end") in med:
        base = med[(first, "sdk")]
        breakdown = {
            "per-span path (on_start, _on_ending, on_end)": med[(first, "no run end")] - base,
            "run end: agent metrics, totals, message": med[(first, "no run log")] - med[(first, "no run end")],
            "run end: the run's log record": med[(first, "processor")] - med[(first, "no run log")],
        }
    for tp in providers.values():
        tp.shutdown()
    assert len(REGISTRY) == 0, f"{len(REGISTRY)} spans left in the registry after the overhead blocks"
    return rows, breakdown


def profile(tracer: trace.Tracer, calls: int) -> None:
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    workload(tracer, 5000, calls, USAGE_WITH_COST)
    profiler.disable()
    print("\ncProfile of 5,000 runs with the processor (cost attribute present), by own time:")
    stats = pstats.Stats(profiler, stream=sys.stdout)
    stats.sort_stats("tottime").print_stats(25)
    print("the processor's own functions, cumulative:")
    stats.sort_stats("cumulative").print_stats(r"agentwatch/(processor|runs|telemetry|logs)\.py", 25)


def evicted_metric(reader: InMemoryMetricReader) -> float:
    data = reader.get_metrics_data()
    total = 0.0
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name == sc.METRIC_EVICTED_RUNS:
                    total += sum(p.value for p in metric.data.data_points)
    return total


# --- 2. soak / 3. leak ------------------------------------------------------------------------------------
def soak(runs: int, calls: int, reader: InMemoryMetricReader, *, leak_every: int = 0, ttl: float | None = None,
         samples: int = 10) -> dict[str, Any]:
    processor = AgentSpanProcessor(run_ttl_seconds=ttl)
    tp = provider(processor)
    tracer = tp.get_tracer("soak")
    workload(tracer, 5000, calls, USAGE_WITH_COST, leak_every=leak_every)  # warm-up
    if leak_every:
        time.sleep((ttl or 0) * 1.1)
        processor.sweep_now()  # warm-up leftovers out, so the measured part starts from the same state
    evicted_before = processor.evicted_runs
    evicted_metric_before = evicted_metric(reader)
    rss_start = settled_rss()
    series = []
    max_registry = 0
    step = max(runs // samples, 1)
    done = 0
    t0 = time.perf_counter()
    while done < runs:
        chunk = min(step, runs - done)
        # sub-chunks so that the registry size is seen between sweeps, not only at the sample points
        for first in range(done, done + chunk, 1000):
            workload(tracer, min(1000, done + chunk - first), calls, USAGE_WITH_COST, leak_every=leak_every,
                     first=first + 1)
            max_registry = max(max_registry, len(REGISTRY))
        done += chunk
        series.append((done, rss_mb(), len(REGISTRY)))
    elapsed = time.perf_counter() - t0
    registry_before_final_sweep = len(REGISTRY)
    if leak_every:
        time.sleep((ttl or 0) * 1.1)
        processor.sweep_now()
    tp.force_flush()
    rss_end = settled_rss()
    leaked = sum(1 for i in range(1, runs + 1) if i % leak_every == 0) if leak_every else 0
    result = {
        "runs": runs, "spans": runs * (calls + 1), "llm_spans": runs * calls, "seconds": elapsed,
        "rss_start": rss_start, "rss_end": rss_end, "series": series, "registry_end": len(REGISTRY),
        "registry_before_final_sweep": registry_before_final_sweep, "max_registry": max_registry,
        "leaked": leaked, "evicted": processor.evicted_runs - evicted_before,
        "evicted_metric": evicted_metric(reader) - evicted_metric_before,
    }
    tp.shutdown()
    return result


def verdict(ok: bool) -> str:
    return "OK" if ok else "OVER TARGET"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000, help="runs in the soak (default 100000)")
    parser.add_argument("--calls-per-run", type=int, default=10)
    parser.add_argument("--blocks", type=int, default=21, help="alternating blocks per variant (overhead)")
    parser.add_argument("--block-runs", type=int, default=500, help="runs per overhead block")
    parser.add_argument("--leak-percent", type=float, default=1.0)
    parser.add_argument("--ttl", type=float, default=1.0, help="run TTL (s) in the leak variant")
    parser.add_argument("--profile", action="store_true", help="cProfile the processor's path")
    parser.add_argument("--strict", action="store_true", help="exit with status 1 when a target is missed")
    args = parser.parse_args()
    calls = args.calls_per_run

    reader = InMemoryMetricReader()
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(BatchLogRecordProcessor(DropLogs()))
    _logs.set_logger_provider(logger_provider)

    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs; runs of 1 invoke_agent + {calls} chat spans")
    t_start = time.perf_counter()

    rows, breakdown = overhead(args)
    spans_per_run = calls + 1
    print(f"\n1. processor overhead per span: {args.blocks} alternating blocks of {args.block_runs} runs "
          f"({args.block_runs * spans_per_run:,} spans) per variant; medians of the blocks' CPU time on the "
          f"calling thread")
    print(f"   {'workload':34} {'SDK only':>9} {'SDK+proc':>9} {'overhead':>9} {'per run':>9} "
          f"{'/LLM span':>9} {'wall':>8}   target < {OVERHEAD_TARGET_US:g} µs/span")
    worst = 0.0
    for name, sdk, with_proc, wall_extra in rows:
        extra = (with_proc - sdk) * 1e6
        worst = max(worst, extra)
        print(f"   {name:34} {sdk * 1e6:7.2f}µs {with_proc * 1e6:7.2f}µs {extra:7.2f}µs "
              f"{extra * spans_per_run:7.1f}µs {extra * spans_per_run / calls:7.2f}µs {wall_extra * 1e6:6.2f}µs"
              f"   {verdict(extra < OVERHEAD_TARGET_US)}")
    if breakdown:
        print("   where it goes (spans with a cost attribute):")
        for part, seconds in breakdown.items():
            print(f"     {part:46} {seconds * 1e6:6.2f} µs/span  ({seconds * 1e6 * spans_per_run:6.1f} µs/run)")

    main_soak = soak(args.runs, calls, reader)
    leak_every = max(int(round(100 / args.leak_percent)), 1) if args.leak_percent > 0 else 0
    leak = soak(args.runs, calls, reader, leak_every=leak_every, ttl=args.ttl)

    for title, r in ((f"2. soak: {main_soak['runs']:,} runs, {main_soak['llm_spans']:,} LLM-call spans "
                      f"({main_soak['spans']:,} spans)", main_soak),
                     (f"3. leak: {leak['runs']:,} runs, 1 in {leak_every} never ended, TTL {args.ttl:g} s", leak)):
        growth = r["rss_end"] - r["rss_start"]
        print(f"\n{title}")
        print(f"   {'throughput':36} {r['spans'] / r['seconds']:10,.0f} spans/s ({r['seconds']:.1f} s)")
        print(f"   {'RSS after warm-up':36} {r['rss_start']:10.1f} MB")
        print(f"   {'RSS at the end':36} {r['rss_end']:10.1f} MB")
        print(f"   {'RSS growth':36} {growth:10.2f} MB   target < {RSS_TARGET_MB:g} MB: "
              f"{verdict(growth < RSS_TARGET_MB)}")
        print(f"   {'RSS over the runs (MB)':36} " + " ".join(f"{rss:.0f}" for _, rss, _ in r["series"]))
        if r["leaked"]:
            print(f"   {'runs never ended':36} {r['leaked']:10,}")
            print(f"   {'evicted by the TTL sweep':36} {r['evicted']:10,}   "
                  f"{'OK' if r['evicted'] == r['leaked'] else 'MISMATCH'}")
            print(f"   {'registry size, max seen':36} {r['max_registry']:10,}   "
                  f"(without eviction it would end at {r['leaked']:,})")
            print(f"   {'registry before the final sweep':36} {r['registry_before_final_sweep']:10,}")
            print(f"   {'registry over the runs':36} " + " ".join(str(n) for _, _, n in r["series"]))
            print(f"   {'agentwatch.processor.evicted_runs':36} {r['evicted_metric']:10,.0f}")
        print(f"   {'live registry at the end':36} {r['registry_end']:10,}   must be 0: "
              f"{'OK' if r['registry_end'] == 0 else 'FAIL'}")

    logger_provider.shutdown()
    print(f"\npeak RSS {rss_mb('VmHWM'):.1f} MB, total time {time.perf_counter() - t_start:.0f} s")
    ok = (worst < OVERHEAD_TARGET_US and main_soak["rss_end"] - main_soak["rss_start"] < RSS_TARGET_MB
          and leak["rss_end"] - leak["rss_start"] < RSS_TARGET_MB and main_soak["registry_end"] == 0
          and leak["registry_end"] == 0 and leak["evicted"] == leak["leaked"])
    print("all targets met" if ok else "SOME TARGETS MISSED")
    sys.exit(1 if args.strict and not ok else 0)


if __name__ == "__main__":
    main()
