"""agentwatch / Cost: spend today and this month against the budget, by agent and model, the cost-per-run
distribution and a forecast."""

from __future__ import annotations

from typing import Any

from agentwatch import semconv as sc
from agentwatch.tooling.generate import promql as q
from agentwatch.tooling.generate.dashboards.common import Context, dashboard, generated, sum_increase
from agentwatch.tooling.generate.dashboards.panels import (AGENT, INTERVAL, MODEL, RATE, bars_panel, budget_steps,
                                                           gauge_panel, llm_links, quantile_targets, row, run_links,
                                                           stat_panel, target, timeseries_panel)
from agentwatch.thresholds import duration_seconds


def build(ctx: Context) -> Any:
    table, agents, llm = ctx.table, ctx.agent_where, ctx.llm_where
    spend = table.fleet["daily_spend"]
    budget = spend.budget_usd or 0.0
    warning_at = spend.warning_at if spend.warning_at is not None else 0.8
    critical_at = spend.critical_at if spend.critical_at is not None else 1.0
    cost_threshold = table["cost_per_run"]
    agent_cost_sum = sc.PROM_AGENT_COST + sc.PROM_SUM_SUFFIX
    agent, model = ctx.legend("{{%s}}" % AGENT), ctx.legend("{{%s}}" % MODEL)
    budget_text = (f"the daily budget of {q.num(budget)} USD (thresholds.yaml fleet.daily_spend; alert "
                   f"{spend.alert} at {q.num(warning_at * 100)}% / {q.num(critical_at * 100)}% of it over a "
                   f"rolling {q.SPEND_WINDOW} window)")
    if not budget:
        budget_text = "no daily budget (fleet.daily_spend.budget_usd is 0)"
    day_steps = budget_steps(budget, warning_at, critical_at) if budget else None
    day = f"{duration_seconds(q.SPEND_WINDOW) / 3600:g} h"
    items: list[Any] = [
        row("Spend against the budget"),
        stat_panel("Spend today", f"LLM spend in USD since midnight (dashboard time zone), against {budget_text}.",
                   "currencyUSD", [target(sum_increase(sc.PROM_LLM_COST, "", llm), "today", instant=True)],
                   levels=day_steps, time_from="now/d", width=6),
        stat_panel("Spend this month", "LLM spend in USD since the first of the month.", "currencyUSD",
                   [target(sum_increase(sc.PROM_LLM_COST, "", llm), "this month", instant=True)],
                   time_from="now/M", width=6),
    ]
    if budget:
        items += [
            gauge_panel(f"Last {day} against the daily budget",
                        f"LLM spend over the rolling {day}: with all jobs and models selected, exactly the "
                        f"number alert {spend.alert} compares with {budget_text}.", "currencyUSD",
                        [target(ctx.scope.spend(llm), f"last {day}", instant=True)], max_val=budget,
                        levels=budget_steps(budget, warning_at, critical_at)),
            gauge_panel("This month against the monthly budget",
                        f"Share of this month's budget spent: spend since the first of the month divided by the "
                        f"daily budget ({q.num(budget)} USD) times the days of this month.", "percentunit",
                        [target(f"{sum_increase(sc.PROM_LLM_COST, '', llm)}\n/\n"
                                f"({q.num(budget)} * days_in_month())", "of the month's budget", instant=True)],
                        max_val=1.0, levels=budget_steps(1.0, warning_at, critical_at), time_from="now/M"),
        ]
    forecast = f"clamp_min(\n  predict_linear({ctx.scope.spend(llm)}[6h:], 86400),\n  0\n)"
    items += [
        stat_panel(f"Forecast: {day} spend a day from now",
                   f"predict_linear over the last 6 h of the rolling {day} spend: what it will be in 24 h if the "
                   f"trend holds, against {budget_text}.", "currencyUSD",
                   [target(forecast, "forecast", instant=True)], levels=day_steps, width=6 if not budget else 24,
                   height=6 if not budget else 4),
        row("By agent and model"),
        timeseries_panel("Spend per hour by agent",
                         "Cost in USD of the runs that ended, per hour and agent (runs with a known cost).",
                         "currencyUSD",
                         [target(sum_increase(agent_cost_sum, ctx.by(AGENT), agents, window=INTERVAL), agent)],
                         bars=True, interval="1h", links=run_links()),
        timeseries_panel("Spend per hour by model", "LLM spend in USD per hour, per requested model.", "currencyUSD",
                         [target(sum_increase(sc.PROM_LLM_COST, ctx.by(MODEL), llm, window=INTERVAL), model)],
                         bars=True, interval="1h", links=llm_links()),
        bars_panel("Spend in range by agent", "Cost in USD of the runs that ended in the time range, per agent.",
                   "currencyUSD", [target(sum_increase(agent_cost_sum, ctx.by(AGENT), agents), agent, instant=True)]),
        bars_panel("Spend in range by model", "LLM spend in USD in the time range, per requested model.",
                   "currencyUSD", [target(sum_increase(sc.PROM_LLM_COST, ctx.by(MODEL), llm), model, instant=True)]),
        row("Cost per run"),
        bars_panel("Cost-per-run distribution",
                   "Runs that ended in the time range, per cost bucket (upper bound in USD; every threshold is a "
                   "bucket boundary).", "short",
                   [target(sum_increase(sc.PROM_AGENT_COST + sc.PROM_BUCKET_SUFFIX, "le", agents), "{{le}}",
                           instant=True, heatmap=True)], width=8),
        timeseries_panel("Cost per run by agent",
                         f"Average cost in USD per run, per agent. The dashed line is the cost-per-run threshold "
                         f"({cost_threshold.display}).", "currencyUSD",
                         [target(ctx.scope.cost_mean(RATE, agents), agent)], threshold=cost_threshold,
                         width=8, links=run_links()),
        timeseries_panel("Cost per run p50 / p95 / p99", "Percentiles of the cost per run over the selected agents.",
                         "currencyUSD", quantile_targets(sc.PROM_AGENT_COST, agents), width=8),
    ]
    return dashboard(ctx, "cost", "agentwatch / Cost",
                     generated("Spend today and this month against the budget, by agent and model, the "
                               "cost-per-run distribution and a forecast."),
                     ("agent", "model"), items)
