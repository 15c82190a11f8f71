"""`agentwatch demo`: the built-in demo agents, their threshold table and (optionally) their alerts."""

from __future__ import annotations

import json
import signal
import sys
from typing import Any

import click

from agentwatch.tooling.commands.common import fail


@click.command()
@click.option("--runs", type=click.IntRange(min=1), default=None,
              help="Runs per demo agent [default: 20, or what --duration and --rate imply]; e.g. --runs 5 for a "
                   "quick look, --runs 200 for fuller dashboards.")
@click.option("--duration", type=click.FloatRange(min=0, min_open=True), default=None, metavar="SECONDS",
              help="Run for this long: with --rate, ceil(duration x rate) runs per agent paced over it; with "
                   "--runs, those runs spread over it; alone, back-to-back runs until it is over. E.g. --duration 60.")
@click.option("--rate", type=click.FloatRange(min=0, min_open=True), default=None, metavar="RUNS_PER_S",
              help="Runs per second per agent (paced); e.g. --rate 0.5 --duration 120. At most two of --runs, "
                   "--duration and --rate.")
@click.option("--seed", type=int, default=7, show_default=True,
              help="Seed for every random choice (agents and stub); same seed, same calls. E.g. --seed 42.")
@click.option("--failure-rate", type=click.FloatRange(0.0, 1.0), default=0.3, show_default=True,
              help="Share of the flaky agent's tool calls and LLM calls that fail, 0..1; e.g. --failure-rate 0.5.")
@click.option("--prometheus-port", type=click.IntRange(1, 65535), default=9464, show_default=True,
              help="First of four consecutive ports for the agents' Prometheus endpoints (one per agent "
                   "process); e.g. --prometheus-port 19464 when 9464 is taken.")
@click.option("--out-dir", type=click.Path(file_okay=False), default=".agentwatch/demo", show_default=True,
              help="Where the JSON logs, span files and summary.json go; e.g. --out-dir /tmp/aw-demo.")
@click.option("--with-prometheus", is_flag=True,
              help="Also start a local Prometheus + Alertmanager (installed binaries; state in <out-dir>/prometheus) "
                   "with the generated rules and routing, scrape the agents, and print the alerts that fired. "
                   "Without the binaries: one line, and the demo goes on without them.")
@click.option("--keep-prometheus", is_flag=True,
              help="Leave that Prometheus + Alertmanager running after the demo (implies --with-prometheus), "
                   "e.g. for `agentwatch check`; stop them with `agentwatch stack down --state-dir "
                   "<out-dir>/prometheus`.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the result (per-model calls and cost, the threshold table, alerts) as JSON on stdout; "
                   "progress and tables go to stderr.")
def demo(runs: int | None, duration: float | None, rate: float | None, seed: int, failure_rate: float,
         prometheus_port: int, out_dir: str, with_prometheus: bool, keep_prometheus: bool, as_json: bool) -> None:
    """Run four demo agents, zero-code instrumented, against a local stub LLM server.

    Each agent (support, research, flaky, costly) is an ordinary OpenAI / Anthropic SDK program started
    as its own process under opentelemetry-instrument. You get live progress, a table of calls, errors,
    tokens, cost and latency per agent and model, then the threshold table: per agent and signal (success
    rate, steps, p99 latency, tokens and cost per run, tool error rate) the measured value, the threshold
    and OK / WOULD FIRE, all computed from the JSON log records agentwatch wrote. With the defaults the
    flaky agent's tool error rate would page on-call and every other agent is OK.
    Spans go to <out-dir>/<agent>.spans.json, or over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set.

    Exit status: 0 when the demo ran (whatever the table says), 1 when it could not (a port in use, an
    agent that crashed), 2 on usage errors.

    \b
    Examples:
        agentwatch demo
        agentwatch demo --runs 5 --seed 42 --failure-rate 0.5
        agentwatch demo --duration 60 --rate 0.5 --with-prometheus
        agentwatch demo --json > demo.json
        OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 agentwatch demo --prometheus-port 19464
    """
    from agentwatch.tooling.demo.runner import DemoError, make_console, run_demo

    if runs is not None and duration is not None and rate is not None:
        raise click.UsageError("give at most two of --runs, --duration and --rate (the third follows from them)")

    def _terminate(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt  # the runner's cleanup stops the agents, the stub and Prometheus

    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        result = run_demo(runs=runs, duration=duration, rate=rate, seed=seed, failure_rate=failure_rate,
                          prometheus_port=prometheus_port, out_dir=out_dir,
                          with_prometheus=with_prometheus or keep_prometheus, keep_prometheus=keep_prometheus,
                          console=make_console(stderr=as_json))
    except DemoError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        click.echo("agentwatch: interrupted", err=True)
        sys.exit(130)
    except OSError as exc:
        fail(f"{type(exc).__name__}: {exc}")
    finally:
        signal.signal(signal.SIGTERM, previous)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
