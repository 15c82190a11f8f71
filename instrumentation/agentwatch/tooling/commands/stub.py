"""`agentwatch stub`: serve the stub LLM server until Ctrl-C."""

from __future__ import annotations

import signal
import threading
from typing import Any

import click

from agentwatch.tooling.commands.common import fail


@click.command()
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
    from agentwatch.tooling.demo.stub import StubServer

    try:
        server = StubServer(host, port, latency=latency, chunk_delay=chunk_delay, failure_rate=failure_rate,
                            seed=seed).start()
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
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
