"""`agentwatch check`: the threshold table evaluated against a live Prometheus, as a CI gate or smoke test."""

from __future__ import annotations

import json
import sys

import click

from agentwatch.tooling.commands.common import fail, load_thresholds, thresholds_option

ENV_PROMETHEUS_URL = "AGENTWATCH_PROMETHEUS_URL"
EXIT_OK, EXIT_CRITICAL, EXIT_ERROR = 0, 1, 2  # EXIT_ERROR: the check could not run (bad input, Prometheus unusable)


def _local_prometheus() -> str | None:
    from agentwatch.tooling import stack

    current = stack.status(stack.DEFAULT_STATE_DIR, check_health=False)
    return current.prometheus_url if current.prometheus.running else None


@click.command()
@click.option("--prometheus", "url", envvar=ENV_PROMETHEUS_URL, metavar="URL",
              help=f"Prometheus base URL (default: ${ENV_PROMETHEUS_URL}, else the local `agentwatch stack`); "
                   "e.g. --prometheus http://prometheus.example.com:9090.")
@click.option("--agent", "agents", multiple=True, metavar="NAME",
              help="Check only this agent (gen_ai.agent.name); repeat for several, e.g. --agent support --agent "
                   "flaky. A named agent without traffic is shown as no data.")
@thresholds_option
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=10.0, show_default=True,
              help="Seconds to wait for each Prometheus answer; e.g. --timeout 30.")
@click.option("--json", "as_json", is_flag=True, help="Print the table as JSON on stdout.")
def check(url: str | None, agents: tuple[str, ...], thresholds_file: str | None, timeout: float,
          as_json: bool) -> None:
    """Check a live fleet against the threshold table, through Prometheus.

    Evaluates each signal of the threshold table (success rate, steps, p99 latency, tokens and cost per
    run, tool error rate) with the same PromQL the generated alerts use, over each signal's window, and
    prints per agent and signal the measured value, the threshold and OK / BREACHED with its severity.
    Prometheus needs agentwatch's metrics, not its rules. An agent without traffic in a window has no data
    there, and no data never breaches.

    Exit status: 0 when no critical threshold is breached (warnings are shown, not fatal); 1 when a
    critical one is; 2 on usage errors or when the check cannot run (Prometheus unreachable, not
    Prometheus, a malformed thresholds file).

    \b
    Examples:
        agentwatch check --prometheus http://127.0.0.1:9090
        agentwatch check --prometheus http://prometheus:9090 --agent support-agent --json
        agentwatch check --prometheus "$PROM_URL" --thresholds staging-thresholds.yaml || exit 1
    """
    from rich.console import Console
    from rich.markup import escape

    from agentwatch.thresholds import SIGNALS
    from agentwatch.tooling import prometheus, verdicts

    if not url:
        url = _local_prometheus()
        if url is None:
            raise click.UsageError(f"Missing option '--prometheus' (or ${ENV_PROMETHEUS_URL}); no local stack runs "
                                   "in .agentwatch/stack (`agentwatch stack up` starts one)")
    try:
        base = prometheus.base_url(url)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    table = load_thresholds(thresholds_file, EXIT_ERROR)
    try:
        report = verdicts.from_prometheus(base, table, agents, timeout=timeout)
    except prometheus.PrometheusError as exc:
        fail(str(exc), EXIT_ERROR)
    code = EXIT_CRITICAL if report.critical_breached else EXIT_OK
    if as_json:
        click.echo(json.dumps({**report.to_dict(), "exit_code": code}, indent=2))
        sys.exit(code)
    console = Console() if sys.stdout.isatty() else Console(width=120)
    if not report.agents:
        console.print(f"No agent has agentwatch metrics at {base} (nothing to check).", highlight=False)
        sys.exit(code)
    windows: dict[str, list[str]] = {}
    for signal in SIGNALS:
        windows.setdefault(table[signal].window, []).append(verdicts.LABELS[signal])
    verdicts.render(report, console, title=f"Thresholds at {base} (thresholds: {report.thresholds})",
                    note="windows: " + "; ".join(f"{w} for {', '.join(s)}" for w, s in windows.items()))
    line = escape(verdicts.summary_line(report))
    if report.critical_breached:
        console.print(f"[bold red]CRITICAL[/] {line}", highlight=False, soft_wrap=True)
    elif report.breached:
        console.print(f"[yellow]WARNING[/] {line}", highlight=False, soft_wrap=True)
    else:
        console.print(f"[green]OK[/] {line}", highlight=False, soft_wrap=True)
    sys.exit(code)
