"""The `agentwatch` command line."""

from __future__ import annotations

import signal
import sys
import threading
from typing import Any

import click

from agentwatch import __version__


def _fail(message: str) -> None:
    """One clear error line on stderr, exit status 1."""
    click.echo(f"agentwatch: error: {message}", err=True)
    sys.exit(1)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", "-V", prog_name="agentwatch", message="%(prog)s %(version)s")
def main() -> None:
    """agentwatch: OpenTelemetry spans, metrics, JSON logs and token cost for LLM agents.

    Instrument an existing agent without changing its code:

    \b
        opentelemetry-instrument python my_agent.py

    See it work end to end on the built-in demo (no API key, no network):

    \b
        agentwatch demo
    """


@main.command()
@click.option("--runs", type=click.IntRange(min=1), default=20, show_default=True,
              help="Runs per demo agent; e.g. --runs 5 for a quick look, --runs 200 for fuller dashboards.")
@click.option("--seed", type=int, default=7, show_default=True,
              help="Seed for every random choice (agents and stub); same seed, same calls. E.g. --seed 42.")
@click.option("--failure-rate", type=click.FloatRange(0.0, 1.0), default=0.3, show_default=True,
              help="Share of the flaky agent's tool calls and LLM calls that fail, 0..1; e.g. --failure-rate 0.5.")
@click.option("--prometheus-port", type=click.IntRange(1, 65535), default=9464, show_default=True,
              help="First of four consecutive ports for the agents' Prometheus endpoints (one per agent "
                   "process); e.g. --prometheus-port 19464 when 9464 is taken.")
@click.option("--out-dir", type=click.Path(file_okay=False), default=".agentwatch/demo", show_default=True,
              help="Where the JSON logs, span files and summary.json go; e.g. --out-dir /tmp/aw-demo.")
def demo(runs: int, seed: int, failure_rate: float, prometheus_port: int, out_dir: str) -> None:
    """Run four demo agents, zero-code instrumented, against a local stub LLM server.

    Each agent (support, research, flaky, costly) is an ordinary OpenAI / Anthropic SDK program started
    as its own process under opentelemetry-instrument. You get live progress, then a table of calls, errors,
    tokens, cost and latency per agent and model, computed from the JSON log records agentwatch wrote.
    Spans go to <out-dir>/<agent>.spans.json, or over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set.

    \b
    Examples:
        agentwatch demo
        agentwatch demo --runs 5 --seed 42 --failure-rate 0.5
        OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 agentwatch demo --prometheus-port 19464
    """
    from agentwatch.demo.runner import DemoError, run_demo

    def _terminate(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt  # the runner's cleanup stops the agents and the stub

    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        run_demo(runs=runs, seed=seed, failure_rate=failure_rate, prometheus_port=prometheus_port, out_dir=out_dir)
    except DemoError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        click.echo("agentwatch: interrupted", err=True)
        sys.exit(130)
    except OSError as exc:
        _fail(f"{type(exc).__name__}: {exc}")
    finally:
        signal.signal(signal.SIGTERM, previous)


@main.command()
@click.option("--out-dir", type=click.Path(file_okay=False), default=".", show_default=True,
              help="Root the artifacts go under (alerts/...); e.g. --out-dir /tmp/aw-artifacts.")
@click.option("--check", is_flag=True,
              help="Write nothing; exit 1 listing every file that is missing, differs or is stale.")
@click.option("--thresholds", "thresholds_file", type=click.Path(dir_okay=False),
              help="Threshold override file (default: $AGENTWATCH_THRESHOLDS_FILE, else the bundled table); "
                   "e.g. --thresholds my-thresholds.yaml.")
def generate(out_dir: str, check: bool, thresholds_file: str | None) -> None:
    """Generate the alert rules, Alertmanager routing and runbooks from the threshold table.

    Writes alerts/rules/*.yaml (recording rules and alerts), alerts/alertmanager/alertmanager.yml with its
    templates, and alerts/runbooks/<AlertName>.md under --out-dir. With --check, compares instead: CI runs
    it so the committed files never drift from the generators.

    \b
    Examples:
        agentwatch generate
        agentwatch generate --check
        agentwatch generate --thresholds my-thresholds.yaml --out-dir deploy/
    """
    from agentwatch import generate as gen
    from agentwatch.thresholds import ThresholdsError, load

    try:
        files = gen.artifacts(load(thresholds_file))
    except ThresholdsError as exc:
        _fail(str(exc))
    if check:
        problems = gen.drift(out_dir, files)
        if problems:
            click.echo(f"agentwatch: {len(problems)} generated file(s) out of date under {out_dir}:", err=True)
            for problem in problems:
                click.echo(f"  {problem}", err=True)
            click.echo("run `agentwatch generate` and commit the result", err=True)
            sys.exit(1)
        click.echo(f"{len(files)} generated files up to date under {out_dir}")
        return
    try:
        changed = gen.write(out_dir, files)
    except OSError as exc:
        _fail(f"cannot write under {out_dir}: {exc.strerror or exc}")
    for rel in changed:
        click.echo(f"updated {rel}")
    click.echo(f"{len(files)} files generated under {out_dir} ({len(changed)} changed)")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind; e.g. --host 0.0.0.0.")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True,
              help="Port to listen on (0 picks a free one); e.g. --port 9000.")
@click.option("--latency", type=click.FloatRange(min=0.0), default=0.0, show_default=True,
              help="Seconds added to every request; e.g. --latency 0.2.")
@click.option("--chunk-delay", type=click.FloatRange(min=0.0), default=0.0, show_default=True,
              help="Seconds between streamed chunks; e.g. --chunk-delay 0.01.")
@click.option("--failure-rate", type=click.FloatRange(0.0, 1.0), default=0.0, show_default=True,
              help="Probability that a request fails with HTTP 500; e.g. --failure-rate 0.1.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for answers and failures; e.g. --seed 7.")
def stub(host: str, port: int, latency: float, chunk_delay: float, failure_rate: float, seed: int) -> None:
    """Serve the stub OpenAI + Anthropic API until Ctrl-C.

    Point any SDK at it (any API key works) and control each request with x-stub-* headers
    (x-stub-status, x-stub-delay, x-stub-cached-tokens, x-stub-output-words, ...).

    \b
    Example:
        agentwatch stub --port 8765 --latency 0.05 --failure-rate 0.1
        OPENAI_BASE_URL=http://127.0.0.1:8765/v1 OPENAI_API_KEY=x \\
          opentelemetry-instrument python my_agent.py
    """
    from agentwatch.demo.stub import StubServer

    try:
        server = StubServer(host, port, latency=latency, chunk_delay=chunk_delay, failure_rate=failure_rate,
                            seed=seed).start()
    except OSError as exc:
        _fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    done = threading.Event()

    def _stop(signum: int, frame: Any) -> None:
        done.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    click.echo(f"stub LLM server listening on {server.url}  (Ctrl-C to stop)")
    click.echo(f"  OPENAI_BASE_URL={server.openai_base_url}")
    click.echo(f"  ANTHROPIC_BASE_URL={server.anthropic_base_url}")
    try:
        while not done.wait(0.5):
            pass
    finally:
        server.stop()
    click.echo("stub stopped")


if __name__ == "__main__":
    main()
