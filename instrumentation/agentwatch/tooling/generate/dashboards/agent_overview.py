"""agentwatch / Agent overview: the six threshold signals per agent (the alerts' own queries and windows),
then runs, success, latency, cost, steps, tokens, tool errors and the agentwatch alerts firing now."""

from __future__ import annotations

from typing import Any

from agentwatch import semconv as sc
from agentwatch.tooling.generate import promql as q
from agentwatch.tooling.generate.alerts import alert_names
from agentwatch.tooling.generate.dashboards.common import Context, dashboard, generated, matcher, or_zero, sum_rate
from agentwatch.tooling.generate.dashboards.panels import (AGENT, ERROR, PROVIDER, RATE, TOOL, UNITS, builders,
                                                           quantile_targets, row, run_links, stat_panel, steps,
                                                           table_panel, target, timeseries_panel, tool_links)
from agentwatch.thresholds import SIGNALS

SIGNAL_TITLES = {"success_rate": "Success rate", "steps_per_run": "Steps per run", "p99_latency": "P99 run latency",
                 "tokens_per_run": "Tokens per run", "cost_per_run": "Cost per run",
                 "tool_error_rate": "Tool-call error rate"}


def signal_expr(ctx: Context, signal: str) -> str:
    """The query of a threshold stat panel: the alert's expression (its window and scope) narrowed by the
    dashboard's variables."""
    return ctx.scope.signal_query(signal, ctx.table[signal].window, ctx.agent_where).strip()


def signal_stat(ctx: Context, signal: str) -> Any:
    """The stat panel of one threshold signal: the alert's query and window, coloured at its threshold."""
    t = ctx.table[signal]
    legend = ctx.legend("{{%s}}" % AGENT if signal != "tool_error_rate" else "{{%s}} · {{%s}}" % (AGENT, TOOL))
    word = "below" if t.comparison == "<" else "above"
    description = (f"{t.description}, per agent{' and tool' if signal == 'tool_error_rate' else ''}, over the "
                   f"last {t.window}: the number alert {t.alert} compares. It fires ({t.severity}) when the value "
                   f"stays {word} {t.display} for {t.for_}; the colour changes at that threshold "
                   "(thresholds.yaml or your override).")
    return stat_panel(SIGNAL_TITLES[signal], description, UNITS[t.unit],
                      [target(signal_expr(ctx, signal), legend, instant=True)],
                      levels=steps(t), links=tool_links() if signal == "tool_error_rate" else run_links())


def _alerts_table(ctx: Context) -> Any:
    table = ctx.table
    alerts = "|".join(alert_names(table))
    runbook = table.alerting.runbook_url.replace("{alert}", "${__data.fields.alertname}")
    where = q.labels(*(matcher(v) for v in ctx.scope.labels), matcher("agent"))
    expr = (f"sum by (alertname, severity, {ctx.by(AGENT, TOOL, PROVIDER)}) "
            f'({sc.PROM_ALERTS}{{alertstate="firing", alertname=~"{alerts}", {where}}})')
    return table_panel(
        "Firing agentwatch alerts",
        "agentwatch alerts firing now (Prometheus' ALERTS series; needs agentwatch's rules loaded, see "
        "alerts/rules). Watchdog always fires: it proves the alerting pipeline works. Click an alert for its "
        "runbook.",
        [target(expr, instant=True, table_format=True)],
        links=[builders.DashboardLink("Runbook for ${__data.fields.alertname}").url(runbook).target_blank(True)],
        no_value="No agentwatch alerts firing (are the rules loaded?)")


def build(ctx: Context) -> Any:
    table, scope, where = ctx.table, ctx.scope, ctx.agent_where
    agent = ctx.legend("{{%s}}" % AGENT)
    items: list[Any] = [row("Threshold signals (the alerts' own queries and windows)")]
    items += [signal_stat(ctx, s) for s in SIGNALS]
    items += [
        row("Runs"),
        timeseries_panel(
            "Runs per second by agent",
            "Agent runs (invoke_agent spans) ended per second, per agent; below, the failed ones by error.type "
            "(0 for an agent whose runs all succeed).",
            "ops",
            [target(scope.runs_rate(RATE, where), agent),
             target(or_zero(sum_rate(q.RUNS, ctx.by(AGENT, ERROR), q.FAILED, where),
                            sum_rate(q.RUNS, ctx.by(AGENT), where), ctx.by(AGENT)),
                    ctx.legend("{{%s}} failed {{%s}}" % (AGENT, ERROR)), ref="B")],
            links=run_links()),
        timeseries_panel(
            "Success rate by agent",
            f"Share of runs that ended without error.type, per agent. The dashed line is the success-rate "
            f"threshold ({table['success_rate'].display}); alert {table['success_rate'].alert} uses a "
            f"{table['success_rate'].window} window.",
            "percentunit", [target(scope.success_ratio(RATE, where), agent)],
            threshold=table["success_rate"], links=run_links(), max_val=1),
        timeseries_panel(
            "Run latency p50 / p95 / p99",
            f"Percentiles of run duration over the selected agents, from the histogram buckets (every threshold "
            f"is a bucket boundary). The dashed line is the p99 threshold ({table['p99_latency'].display}). "
            "Exemplars link to the run's trace where the metrics carry them (OpenTelemetry Collector).",
            "s", quantile_targets(sc.PROM_INVOKE_AGENT_DURATION, where), threshold=table["p99_latency"]),
        timeseries_panel(
            "Cost per run by agent",
            f"Average cost in USD of the runs that ended, per agent (runs with a known cost). The dashed line "
            f"is the cost-per-run threshold ({table['cost_per_run'].display}).",
            "currencyUSD", [target(scope.cost_mean(RATE, where), agent)],
            threshold=table["cost_per_run"], links=run_links()),
        timeseries_panel(
            "Steps per run by agent",
            f"Average LLM calls (steps) per run, per agent. The dashed line is the steps-per-run threshold "
            f"({table['steps_per_run'].display}).",
            "short", [target(scope.steps_mean(RATE, where), agent)],
            threshold=table["steps_per_run"], links=run_links()),
        timeseries_panel(
            "Tokens per run by agent",
            f"Average input + output tokens per run, per agent. The dashed line is the tokens-per-run threshold "
            f"({table['tokens_per_run'].display}).",
            "short", [target(scope.tokens_mean(RATE, where), agent)],
            threshold=table["tokens_per_run"], links=run_links()),
        timeseries_panel(
            "Tool-call error rate by agent and tool",
            f"Share of tool calls that failed, per agent and tool. The dashed line is the tool-error-rate "
            f"threshold ({table['tool_error_rate'].display}).",
            "percentunit", [target(scope.tool_error_ratio(RATE, where), ctx.legend("{{%s}} · {{%s}}" % (AGENT, TOOL)))],
            threshold=table["tool_error_rate"], links=tool_links(), max_val=1, no_value="No tool calls"),
        row("Alerts"),
        _alerts_table(ctx),
    ]
    return dashboard(ctx, "agents", "agentwatch / Agent overview",
                     generated("Agent runs: the six threshold signals per agent, runs, success, latency, cost, "
                               "steps, tokens, tool errors and the agentwatch alerts firing now."),
                     ("agent",), items)
