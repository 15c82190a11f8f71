"""`agentwatch stack up|down|status`: a local Prometheus + Alertmanager with agentwatch's rules and routing."""

from __future__ import annotations

import json
import sys
from typing import Any, Callable

import click

from agentwatch.tooling.commands.common import fail, load_thresholds, thresholds_option
from agentwatch.tooling.stack import DEFAULT_STATE_DIR, DEFAULT_TARGETS


def _state_dir_option(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--state-dir", type=click.Path(file_okay=False), default=DEFAULT_STATE_DIR,
                        show_default=True,
                        help="Where the config, generated rules, data, logs and pid files live; "
                             "e.g. --state-dir /tmp/aw-stack.")(command)


def _json_option(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "as_json", is_flag=True, help="Print the status as JSON on stdout.")(command)


def _print_status(current: Any, headline: str) -> None:
    click.echo(headline)
    for comp in current.components:
        if comp.running:
            health = "healthy" if comp.healthy else "NOT HEALTHY"
            click.echo(f"  {comp.name:<13} {comp.url:<24} running, {health} (pid {comp.pid}; log {comp.log})")
        else:
            click.echo(f"  {comp.name:<13} {'-':<24} stopped")
    if current.scrape_targets and not current.stopped:
        click.echo(f"  scraping {', '.join(current.scrape_targets)} every {current.scrape_interval or '?'}; "
                   f"rules from {current.thresholds or '?'}")


@click.group()
def stack() -> None:
    """Run Prometheus and Alertmanager locally, with agentwatch's rules and routing.

    Uses the installed binaries (Debian packages prometheus and prometheus-alertmanager, or
    $AGENTWATCH_PROMETHEUS_BIN / $AGENTWATCH_ALERTMANAGER_BIN), runs them in the background on free
    loopback ports, and keeps config, generated rules, data, logs and pid files in --state-dir.

    \b
    Examples:
        agentwatch stack up
        agentwatch demo && agentwatch check
        agentwatch stack status
        agentwatch stack down
    """


@stack.command("up")
@_state_dir_option
@click.option("--scrape", "targets", multiple=True, metavar="HOST:PORT",
              help=f"A metrics endpoint to scrape; repeat for several [default: {', '.join(DEFAULT_TARGETS)}: the "
                   "OpenTelemetry Prometheus exporter's default port and the demo's]. E.g. --scrape 127.0.0.1:9464.")
@click.option("--scrape-interval", default="5s", show_default=True,
              help="How often Prometheus scrapes and evaluates the rules; e.g. --scrape-interval 15s.")
@click.option("--prometheus-port", type=click.IntRange(0, 65535), default=0,
              help="Port for Prometheus [default: a free one]; e.g. --prometheus-port 9090.")
@click.option("--alertmanager-port", type=click.IntRange(0, 65535), default=0,
              help="Port for Alertmanager [default: a free one]; e.g. --alertmanager-port 9093.")
@thresholds_option
@_json_option
def up(state_dir: str, targets: tuple[str, ...], scrape_interval: str, prometheus_port: int,
       alertmanager_port: int, thresholds_file: str | None, as_json: bool) -> None:
    """Start Prometheus and Alertmanager in the background (or update a running stack).

    Generates the rules and Alertmanager routing from the threshold table into --state-dir, then starts
    both and waits until they are ready. Running it again is safe: a running stack keeps its ports and
    reloads only when the rules or scrape targets changed. Notifications go to the receivers of the
    generated routing, which need their secret files (see alerts/alertmanager); without them Alertmanager
    logs the failed sends and the alerts stay visible in its UI and API.

    Exit status: 0 when the stack runs; 1 when it cannot start (a binary missing, a port in use).

    \b
    Examples:
        agentwatch stack up
        agentwatch stack up --scrape 127.0.0.1:9464 --scrape 10.0.0.5:9464 --scrape-interval 15s
        agentwatch stack up --prometheus-port 9090 --alertmanager-port 9093 --state-dir /tmp/aw-stack
    """
    from agentwatch.tooling import stack as stk

    table = load_thresholds(thresholds_file)
    settings = stk.Settings(scrape_targets=tuple(targets) or DEFAULT_TARGETS, scrape_interval=scrape_interval,
                            evaluation_interval=scrape_interval, prometheus_port=prometheus_port,
                            alertmanager_port=alertmanager_port)
    try:
        current, action = stk.up(state_dir, table=table, settings=settings)
    except stk.StackError as exc:
        fail(str(exc))
    if as_json:
        click.echo(json.dumps({**current.to_dict(), "action": action}, indent=2))
        return
    _print_status(current, f"agentwatch stack {action} in {state_dir}")
    click.echo(f"Check the fleet: agentwatch check --prometheus {current.prometheus_url}")


@stack.command("down")
@_state_dir_option
def down(state_dir: str) -> None:
    """Stop Prometheus and Alertmanager (their data stays in --state-dir).

    Stopping a stack that is not running is not an error.

    \b
    Example:
        agentwatch stack down --state-dir .agentwatch/stack
    """
    from agentwatch.tooling import stack as stk

    try:
        stopped = stk.down(state_dir)
    except (stk.StackError, OSError) as exc:
        fail(str(exc))
    if stopped:
        click.echo(f"stopped {' and '.join(stopped)} ({state_dir})")
    else:
        click.echo(f"no stack running in {state_dir}")


@stack.command("status")
@_state_dir_option
@_json_option
def status(state_dir: str, as_json: bool) -> None:
    """Show whether Prometheus and Alertmanager run, their URLs and health.

    Exit status: 0 when both run and are healthy, 1 otherwise (stopped, half up, or not answering).

    \b
    Examples:
        agentwatch stack status
        agentwatch stack status --json
    """
    from agentwatch.tooling import stack as stk

    current = stk.status(state_dir)
    if as_json:
        click.echo(json.dumps(current.to_dict(), indent=2))
    elif current.stopped:
        click.echo(f"agentwatch stack: not running in {state_dir} (start it with `agentwatch stack up`)")
    else:
        _print_status(current, f"agentwatch stack in {state_dir}: "
                               f"{'healthy' if current.healthy else 'NOT HEALTHY'}")
    sys.exit(0 if current.healthy else 1)
