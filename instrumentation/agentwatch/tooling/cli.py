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

    Check a live fleet against the threshold table (exit 1 on a critical breach):

    \b
        agentwatch check --prometheus http://127.0.0.1:9090
    """


@main.command()
@click.option("--out-dir", type=click.Path(file_okay=False), default=".", show_default=True,
              help="Root the artifacts go under (alerts/..., dashboards/...); e.g. --out-dir /tmp/aw-artifacts.")
@click.option("--check", is_flag=True,
              help="Write nothing; exit 1 listing every file that is missing, differs or is stale.")
@click.option("--thresholds", "thresholds_file", type=click.Path(dir_okay=False),
              help="Threshold override file (default: $AGENTWATCH_THRESHOLDS_FILE, else the bundled table); "
                   "e.g. --thresholds my-thresholds.yaml.")
def generate(out_dir: str, check: bool, thresholds_file: str | None) -> None:
    """Generate the alert rules, Alertmanager routing, runbooks, dashboards and collector configs from the
    threshold table.

    Writes alerts/rules/*.yaml (recording rules and alerts), alerts/alertmanager/alertmanager.yml with its
    templates, alerts/runbooks/<AlertName>.md, dashboards/*.json and dashboards/provisioning/,
    collector/*.yaml (the tail sampler keeps runs over the latency and cost thresholds) and the generated
    parts of deploy/kubernetes under --out-dir. With --check, compares instead: CI runs it so the committed
    files never drift from the generators.

    \b
    Examples:
        agentwatch generate
        agentwatch generate --check
        agentwatch generate --thresholds my-thresholds.yaml --out-dir deploy/
    """
    from agentwatch.tooling import generate as gen
    from agentwatch.thresholds import ThresholdsError, load

    try:
        files = gen.artifacts(load(thresholds_file))
    except (ThresholdsError, ImportError) as exc:
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


_THRESHOLDS_HELP = ("Threshold override file (default: $AGENTWATCH_THRESHOLDS_FILE, else the bundled table); "
                    "e.g. --thresholds my-thresholds.yaml.")


def _dashboard_files(thresholds_file: str | None) -> dict[str, str]:
    from agentwatch.tooling.generate import dashboards
    from agentwatch.thresholds import ThresholdsError, load

    try:
        return dashboards.artifacts(load(thresholds_file))
    except (ThresholdsError, ImportError) as exc:
        _fail(str(exc))
    raise AssertionError("unreachable")


@main.group()
def dashboards() -> None:
    """Grafana dashboards: build the JSON, or push it to Grafana's HTTP API.

    The four dashboards (Agent overview, LLM calls, Tools, Cost) are generated with grafana-foundation-sdk
    from the telemetry contract and the threshold table; `agentwatch generate` builds them too.
    """


@dashboards.command("build")
@click.option("--out-dir", type=click.Path(file_okay=False), default=".", show_default=True,
              help="Root the dashboards/ folder goes under; e.g. --out-dir /tmp/aw.")
@click.option("--thresholds", "thresholds_file", type=click.Path(dir_okay=False), help=_THRESHOLDS_HELP)
def dashboards_build(out_dir: str, thresholds_file: str | None) -> None:
    """Write dashboards/*.json and dashboards/provisioning/ (file provider and datasource examples).

    \b
    Examples:
        agentwatch dashboards build
        agentwatch dashboards build --thresholds my-thresholds.yaml --out-dir deploy/
    """
    from agentwatch.tooling import generate as gen

    files = _dashboard_files(thresholds_file)
    try:
        changed = gen.write(out_dir, files, gen.DASHBOARDS_OWNED)
    except OSError as exc:
        _fail(f"cannot write under {out_dir}: {exc.strerror or exc}")
    for rel in changed:
        click.echo(f"updated {rel}")
    click.echo(f"{len(files)} dashboard files generated under {out_dir} ({len(changed)} changed)")


@dashboards.command("push")
@click.option("--url", required=True, help="Grafana's address; e.g. --url https://grafana.example.com.")
@click.option("--folder", default="agentwatch", show_default=True,
              help="Folder (title) to put the dashboards in, created when missing; --folder '' for General.")
@click.option("--overwrite", is_flag=True,
              help="Replace dashboards that exist in Grafana (else an existing one is a version conflict).")
@click.option("--token-file", type=click.Path(dir_okay=False),
              help="File holding the API token (default: $GRAFANA_API_TOKEN); e.g. --token-file ~/.grafana-token.")
@click.option("--thresholds", "thresholds_file", type=click.Path(dir_okay=False), help=_THRESHOLDS_HELP)
def dashboards_push(url: str, folder: str, overwrite: bool, token_file: str | None,
                    thresholds_file: str | None) -> None:
    """Upload the dashboards to Grafana (POST /api/dashboards/db), into --folder.

    Needs a service account token with the Editor role, from $GRAFANA_API_TOKEN or --token-file.

    \b
    Examples:
        GRAFANA_API_TOKEN=glsa_... agentwatch dashboards push --url http://localhost:3000
        agentwatch dashboards push --url https://grafana.example.com --token-file token --overwrite
    """
    import json

    from agentwatch.tooling.generate.dashboards import DASHBOARDS_DIR
    from agentwatch.tooling.generate.grafana import GrafanaClient, GrafanaError, read_token

    files = _dashboard_files(thresholds_file)
    boards = [json.loads(text) for rel, text in files.items()
              if rel.startswith(DASHBOARDS_DIR + "/") and rel.endswith(".json")]
    try:
        client = GrafanaClient(url, read_token(token_file))
        folder_uid = client.folder_uid(folder) if folder else None
        for board in boards:
            answer = client.push(board, folder_uid, overwrite)
            click.echo(f"pushed {board['title']} (version {answer.get('version', '?')}): "
                       f"{client.dashboard_url(answer)}")
    except GrafanaError as exc:
        _fail(str(exc))
    click.echo(f"{len(boards)} dashboards pushed to {folder or 'General'}")


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
    from agentwatch.tooling.demo.stub import StubServer

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


# Elasticsearch: `agentwatch es setup|collector-config` and `agentwatch logs` (agentwatch/commands/es.py)
from agentwatch.tooling.commands.es import es as _es_group, logs as _logs_command  # noqa: E402

main.add_command(_es_group)
main.add_command(_logs_command)


# `agentwatch demo`, `agentwatch check` and `agentwatch stack` (agentwatch/commands/{demo,check,stack}.py)
from agentwatch.tooling.commands.check import check as _check_command  # noqa: E402
from agentwatch.tooling.commands.demo import demo as _demo_command  # noqa: E402
from agentwatch.tooling.commands.stack import stack as _stack_group  # noqa: E402

main.add_command(_demo_command)
main.add_command(_check_command)
main.add_command(_stack_group)


if __name__ == "__main__":
    main()
