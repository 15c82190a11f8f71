"""What the demo prints: the LLM calls per agent and model, where the records and spans went, the threshold
table with its WOULD FIRE lines, and (--with-prometheus) the alerts at the end of the demo."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from agentwatch.tooling import verdicts
from agentwatch.tooling.demo.results import REQUIRED_SERIES, DemoResult, PrometheusRun


def _usd(value: float, unknown: bool = False) -> Text:
    if value >= 100:
        text = f"${value:,.2f}"
    elif value >= 0.01 or value == 0:
        text = f"${value:.4f}"
    else:  # two significant digits of a fraction of a cent
        text = f"${value:.{1 - math.floor(math.log10(value))}f}"
    return Text(text + ("*" if unknown else ""), style="yellow" if unknown else "")


def plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _ms(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 else f"{value:.1f}"


def _runs_text(result: DemoResult) -> str:
    counts = sorted({a.runs for a in result.agents.values()})
    if len(counts) == 1:
        return plural(counts[0], "run", "runs") + " per agent"
    return f"{counts[0]}–{counts[-1]} runs per agent"


def print_summary(console: Console, result: DemoResult) -> None:
    table = Table(title=f"LLM calls per agent and model ({_runs_text(result)}; from the JSON log records)",
                  title_justify="left", title_style="bold", header_style="bold", show_footer=True,
                  footer_style="bold", box=box.ROUNDED)
    columns = [("Agent", "left"), ("Model", "left"), ("Calls", "right"), ("Errors", "right"),
               ("Tokens in", "right"), ("Tokens out", "right"), ("Cost", "right"), ("Cost/run", "right"),
               ("p50 / p99 ms", "right")]
    models = result.models
    total_runs = sum(a.runs for a in result.agents.values())
    any_unpriced = any(m.unpriced_calls for m in models)
    footers = ["Total", f"{len(result.agents)} agents", f"{sum(m.calls for m in models):,}",
               f"{sum(m.errors for m in models):,}", f"{sum(m.input_tokens for m in models):,}",
               f"{sum(m.output_tokens for m in models):,}", _usd(result.total_cost_usd, any_unpriced),
               _usd(result.total_cost_usd / total_runs if total_runs else 0.0, any_unpriced), ""]
    for (name, justify), footer in zip(columns, footers):
        table.add_column(name, justify=justify, footer=footer, no_wrap=True)  # type: ignore[arg-type]
    for agent_name, agent in result.agents.items():
        rows = [m for m in models if m.agent == agent_name]
        if not rows:
            table.add_row(agent_name, "-", "0", "0", "0", "0", "-", "-", "-", end_section=True)
            continue
        for i, m in enumerate(rows):
            errors = Text(f"{m.errors:,}", style="bold red" if m.errors else "")
            table.add_row(
                Text(agent_name, style="bold") if i == 0 else "",
                m.model, f"{m.calls:,}", errors, f"{m.input_tokens:,}", f"{m.output_tokens:,}",
                _usd(m.cost_usd, not m.cost_known),
                _usd(m.cost_usd / agent.runs if agent.runs else 0.0, not m.cost_known),
                f"{_ms(m.p50_ms)} / {_ms(m.p99_ms)}",
                end_section=i == len(rows) - 1,
            )
    console.print()
    console.print(table)
    if any(m.unpriced_calls for m in result.models):
        unpriced = ", ".join(sorted({m.model for m in result.models if m.unpriced_calls}))
        console.print(f"[yellow]*[/] cost unknown for some calls of: {unpriced} (no price known; counted as "
                      f"unknown, not $0)", highlight=False)
    for agent in result.agents.values():
        notes = []
        kinds = Counter()
        for m in result.models:
            if m.agent == agent.name:
                kinds.update(m.error_types)
        if kinds:
            notes.append("LLM errors " + ", ".join(f"{n}x {k}" for k, n in kinds.most_common()))
        if agent.retries:
            notes.append(plural(agent.retries, "retry", "retries"))
        if agent.tool_errors:
            notes.append(f"{agent.tool_errors} of {agent.tool_calls} tool calls raised (caught by the agent)")
        if agent.failed_runs:
            notes.append(f"{agent.failed_runs} of {agent.runs} runs gave up after retries")
        if notes:
            console.print(f"{agent.name}: " + "; ".join(notes), highlight=False, soft_wrap=True)

    console.print()
    console.print("JSON log records (one per LLM call, run and tool call, with trace.id and span.id) and "
                  "console-exported spans:" if result.traces_to == "console" else
                  "JSON log records (one per LLM call, run and tool call, with trace.id and span.id); spans and OTel "
                  "logs went over OTLP:", highlight=False, soft_wrap=True)
    width = max(len(a.log_file) for a in result.agents.values())
    for agent in result.agents.values():
        spans = agent.spans_file or f"spans -> OTLP {result.traces_to}"
        console.print(f"  [bold]{agent.service_name:<14}[/] {agent.log_file:<{width}}  {spans}", highlight=False,
                      soft_wrap=True)
    low, high = result.prometheus_ports
    served = f":{low}" if low == high else f":{low}–{high}"
    present = all(all(a.prometheus_found.values()) for a in result.agents.values())
    console.print(f"Prometheus metrics served on {served}: {result.prometheus_series:,} series "
                  f"({' and '.join(REQUIRED_SERIES)} {'present' if present else 'MISSING'})", highlight=False,
                  soft_wrap=True)
    if result.report is not None:
        _print_thresholds(console, result.report)
    if result.prometheus is not None:
        _print_alerts(console, result.prometheus)
    console.print(f"Summary: {Path(result.out_dir) / 'summary.json'}  ·  finished in {result.wall_time_s:.1f} s",
                  highlight=False)


_ROUTES = {"critical": "pages on-call", "warning": "team chat", "info": "no notification"}


def _print_thresholds(console: Console, report: verdicts.Report) -> None:
    console.print()
    verdicts.render(report, console, breached_word="WOULD FIRE",
                    title=f"Threshold table (from the JSON run and tool records; thresholds: {report.thresholds})")
    if not report.breached:
        console.print("[green]No threshold breached:[/] no alert would fire.", highlight=False)
    for v in report.breached:
        where = f"{v.agent} / {v.tool}" if v.tool else v.agent
        console.print(f"[bold red]WOULD FIRE[/] {v.threshold.alert} for {where}: {v.label} "
                      f"{verdicts.format_measured(v.measured, v.threshold.unit)} {v.threshold.comparison} "
                      f"{v.threshold.display} ({v.threshold.severity}: {_ROUTES.get(v.threshold.severity, '?')})",
                      highlight=False, soft_wrap=True)


def _print_alerts(console: Console, prom: PrometheusRun) -> None:
    console.print()
    if prom.skipped:
        console.print(f"[yellow]Alerts not checked:[/] {prom.skipped}", highlight=False, soft_wrap=True)
        return
    console.print(f"[bold]Alerts at the end of the demo[/] (Prometheus {prom.prometheus_url}/alerts, Alertmanager "
                  f"{prom.alertmanager_url}; rules with windows {prom.window}, for {prom.for_}):", highlight=False,
                  soft_wrap=True)
    if not prom.alerts:
        console.print("  none", highlight=False)
    for a in prom.alerts:
        where = " / ".join(x for x in (a.agent, a.tool) if x) or "-"
        routed = f"-> {', '.join(a.receivers)}" if a.receivers else "(not in Alertmanager)"
        note = "  (always firing: proves Prometheus -> Alertmanager works)" if a.alert == "Watchdog" else ""
        style = ("bold red" if a.severity == "critical" else "yellow") if a.state == "firing" else "default"
        console.print(f"  [{style}]{a.state:<8}[/] {a.alert:<24} {where:<26} {a.severity:<9} {routed}{note}",
                      highlight=False, soft_wrap=True)
    if prom.predicted and not prom.missing:
        console.print("[green]Every WOULD FIRE row of the threshold table fired.[/]", highlight=False)
    elif prom.missing:
        missing = ", ".join(f"{alert} for {agent}" for alert, agent in prom.missing)
        console.print(f"[yellow]Predicted but not firing (yet):[/] {missing}", highlight=False, soft_wrap=True)
    if prom.kept_running:
        console.print(f"Still running: agentwatch check --prometheus {prom.prometheus_url}   ·   stop with: "
                      f"agentwatch stack down --state-dir {prom.state_dir}", highlight=False, soft_wrap=True)
