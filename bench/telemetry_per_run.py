"""What one agent run emits: spans, metric series and log records (and their OTLP bytes), per demo agent.

The numbers behind docs/scaling.md. Each demo agent runs as a real process under `opentelemetry-instrument`
against the stub LLM server, exporting traces, metrics and logs over OTLP/HTTP to an in-process receiver;
then, per agent:

* spans per run (by operation) and OTLP/protobuf bytes per span;
* log records per run and bytes per record (OTLP/protobuf, and as the ECS JSON line the agent writes);
* metric series: distinct (metric, attribute set) points, and the Prometheus series they become
  (a histogram point is len(bounds) + 1 `_bucket` series plus `_sum` and `_count`).

    python bench/telemetry_per_run.py [--runs 20] [--seed 7] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from otlp_receiver import OtlpReceiver  # noqa: E402

from agentwatch import config
from agentwatch import semconv as sc  # noqa: E402
from agentwatch.tooling.demo.agents import AGENTS  # noqa: E402
from agentwatch.tooling.demo.stub import StubServer  # noqa: E402

INSTRUMENT = Path(sys.executable).parent / "opentelemetry-instrument"


def _env(rx: OtlpReceiver, agent: str, log_file: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AGENTWATCH_"))}
    env.update(rx.otel_env())
    env.update({
        "OTEL_SERVICE_NAME": f"demo-{agent}",
        "OTEL_TRACES_EXPORTER": "otlp", "OTEL_METRICS_EXPORTER": "otlp", "OTEL_LOGS_EXPORTER": "otlp",
        "OTEL_METRIC_EXPORT_INTERVAL": "500",
        config.ENV_JSON_LOGS: str(log_file),
    })
    return env


def _prom_series(points: list) -> int:
    return sum(len(p.explicit_bounds) + 3 if p.explicit_bounds or p.bucket_counts else 1 for p in points)


def measure(agent: str, runs: int, seed: int, stub_url: str, tmp: Path) -> dict:
    log_file = tmp / f"{agent}.jsonl"
    with OtlpReceiver() as rx:
        subprocess.run([str(INSTRUMENT), sys.executable, "-m", "agentwatch.tooling.demo.agents", "--agent", agent,
                        "--runs", str(runs), "--seed", str(seed), "--stub-url", stub_url],
                       env=_env(rx, agent, log_file), check=True, capture_output=True, timeout=600)
        spans = rx.spans()
        logs = rx.logs()
        by_path: Counter[str] = Counter()
        for req in rx.requests:
            by_path[req.path] += req.size
        names = sorted(rx.metric_names())
        merged = [rx.metric(n) for n in names]
    runs_seen = sum(1 for s in spans if s.attributes.get(sc.GEN_AI_OPERATION_NAME) == sc.OP_INVOKE_AGENT) or runs
    ops = Counter(str(s.attributes.get(sc.GEN_AI_OPERATION_NAME, "other")) for s in spans)
    points = {m.name: len(m.points) for m in merged if m}
    prom = {m.name: _prom_series(m.points) for m in merged if m}
    json_lines = [ln for ln in log_file.read_text(encoding="utf-8").splitlines() if ln.strip()] \
        if log_file.exists() else []
    return {
        "agent": agent,
        "runs": runs_seen,
        "spans_per_run": round(len(spans) / runs_seen, 2),
        "spans_by_operation_per_run": {k: round(v / runs_seen, 2) for k, v in sorted(ops.items())},
        "otlp_trace_bytes_per_run": round(by_path["/v1/traces"] / runs_seen),
        "otlp_trace_bytes_per_span": round(by_path["/v1/traces"] / max(len(spans), 1)),
        "log_records_per_run": round(len(logs) / runs_seen, 2),
        "otlp_log_bytes_per_run": round(by_path["/v1/logs"] / runs_seen),
        "json_log_bytes_per_record": round(statistics.mean(len(ln) + 1 for ln in json_lines)) if json_lines else 0,
        "json_log_bytes_per_run": round(sum(len(ln) + 1 for ln in json_lines) / runs_seen),
        "metric_points": sum(points.values()),
        "prometheus_series": sum(prom.values()),
        "prometheus_series_by_metric": prom,
        "otlp_metric_bytes_total": by_path["/v1/metrics"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--agents", nargs="*", default=list(AGENTS), choices=AGENTS)
    parser.add_argument("--json", action="store_true", help="print the raw numbers as JSON")
    args = parser.parse_args()
    results = []
    with StubServer() as stub, tempfile.TemporaryDirectory() as tmp:
        url = stub.openai_base_url.rsplit("/v1", 1)[0]
        for agent in args.agents:
            results.append(measure(agent, args.runs, args.seed, url, Path(tmp)))
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"{'agent':<10} {'spans/run':>9} {'B/span':>7} {'trace B/run':>11} {'logs/run':>8} "
          f"{'log B/run':>9} {'json B/rec':>10} {'points':>7} {'prom series':>11}")
    for r in results:
        print(f"{r['agent']:<10} {r['spans_per_run']:>9} {r['otlp_trace_bytes_per_span']:>7} "
              f"{r['otlp_trace_bytes_per_run']:>11} {r['log_records_per_run']:>8} {r['otlp_log_bytes_per_run']:>9} "
              f"{r['json_log_bytes_per_record']:>10} {r['metric_points']:>7} {r['prometheus_series']:>11}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
