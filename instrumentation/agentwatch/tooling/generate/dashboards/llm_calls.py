"""agentwatch / LLM calls: calls, errors, latency, time to first chunk, tokens, spend and unpriced calls by
provider and model. LLM-call metrics carry no agent label: the dashboard filters by job (and the aggregation
labels) and model."""

from __future__ import annotations

from typing import Any

from agentwatch import semconv as sc
from agentwatch.tooling.generate import promql as q
from agentwatch.tooling.generate.dashboards.common import (Context, dashboard, generated, or_zero, share,
                                                           sum_increase, sum_rate)
from agentwatch.tooling.generate.dashboards.panels import (ERROR, INTERVAL, MODEL, PROVIDER, RATE, TOKEN_TYPE,
                                                           bars_panel, llm_links, models, quantile_targets, row,
                                                           stat_panel, steps, target, timeseries_panel)
from agentwatch.thresholds import Threshold


def build(ctx: Context) -> Any:
    calls, where = q.LLM_CALLS, ctx.llm_where
    provider = ctx.table.fleet["provider_errors"]
    provider_threshold = Threshold(
        signal="provider_errors", alert=provider.alert, description="", comparison=provider.comparison or ">",
        value=provider.value if provider.value is not None else 0.95, unit="ratio", severity=provider.severity)
    by_pm = ctx.by(PROVIDER, MODEL)
    pm_legend = ctx.legend("{{%s}} {{%s}}" % (PROVIDER, MODEL))
    model = ctx.legend("{{%s}}" % MODEL)
    items: list[Any] = [
        row("Calls and errors"),
        stat_panel("LLM calls per second", "LLM calls (chat, embeddings, ...) per second over the selected models.",
                   "ops", [target(sum_rate(calls, "", where), "calls/s", instant=True)], width=6, height=5),
        stat_panel("Failed LLM calls",
                   f"Share of LLM calls that failed (any error.type: HTTP errors, rate limits, timeouts, abandoned "
                   f"streams). Alert {provider.alert} fires per provider above "
                   f"{q.num(provider_threshold.value * 100)}%.",
                   "percentunit", [target(share(calls, q.FAILED, where), "failed", instant=True)],
                   levels=steps(provider_threshold), width=6, height=5, no_value="0%"),
        stat_panel("Unpriced calls in range",
                   "LLM calls whose model has no known price in the time range: their cost is unknown, not zero. "
                   "Add the model to an AGENTWATCH_PRICES_FILE override.",
                   "short", [target(or_zero(sum_increase(sc.PROM_PRICING_UNPRICED_CALLS, "", where),
                                            sum_increase(calls, "", where), ""), "unpriced", instant=True)],
                   levels=[models.Threshold(value=None, color="green"), models.Threshold(value=1, color="orange")],
                   width=6, height=5, no_value="0", decimals=0),
        stat_panel("Spend in range", "LLM spend in USD over the selected models in the time range.",
                   "currencyUSD", [target(sum_increase(sc.PROM_LLM_COST, "", where), "spend", instant=True)],
                   width=6, height=5),
        timeseries_panel("Calls per second by provider and model",
                         "LLM calls per second, per provider and requested model.", "ops",
                         [target(sum_rate(calls, by_pm, where), pm_legend)], links=llm_links()),
        timeseries_panel("Errors per second by provider, model and error type",
                         "Failed LLM calls per second, per provider, requested model and error.type (exception "
                         "class or HTTP status); 0 for a provider and model without failed calls.", "ops",
                         [target(or_zero(sum_rate(calls, ctx.by(PROVIDER, MODEL, ERROR), q.FAILED, where),
                                         sum_rate(calls, by_pm, where), by_pm),
                                 ctx.legend("{{%s}} {{%s}} {{%s}}" % (PROVIDER, MODEL, ERROR)))],
                         links=llm_links(), no_value="No LLM calls"),
        timeseries_panel("Error ratio by provider",
                         f"Share of the LLM calls to each provider that failed; the dashed line is the threshold "
                         f"of alert {provider.alert} (over {provider.window or '5m'}).",
                         "percentunit", [target(ctx.scope.provider_error_ratio(RATE, where),
                                                ctx.legend("{{%s}}" % PROVIDER))],
                         threshold=provider_threshold, max_val=1, width=24),
        row("Latency"),
        timeseries_panel("LLM call latency p50 / p95 / p99",
                         "Percentiles of LLM call duration (to the end of the stream when streamed) over the "
                         "selected models. Exemplars link to the call's trace where the metrics carry them.",
                         "s", quantile_targets(sc.PROM_CLIENT_OPERATION_DURATION, where)),
        timeseries_panel("LLM call latency p95 by model",
                         "95th percentile of LLM call duration per requested model.",
                         "s", quantile_targets(sc.PROM_CLIENT_OPERATION_DURATION, where, ctx.by(MODEL), (0.95,)),
                         links=llm_links()),
        timeseries_panel("Time to first chunk p50 / p95 by model",
                         "Time from the request to the first chunk of a streamed response, per requested model "
                         "(streamed calls only).",
                         "s", quantile_targets(sc.PROM_CLIENT_TIME_TO_FIRST_CHUNK, where, ctx.by(MODEL), (0.5, 0.95)),
                         width=24, no_value="No streamed calls"),
        row("Tokens"),
        timeseries_panel("Input tokens per second by model",
                         "Input tokens (including cached ones) per second, per requested model.", "short",
                         [target(sum_rate(sc.PROM_CLIENT_TOKEN_USAGE + sc.PROM_SUM_SUFFIX, ctx.by(MODEL),
                                          f'{TOKEN_TYPE}="{sc.TOKEN_TYPE_INPUT}"', where), model)]),
        timeseries_panel("Output tokens per second by model",
                         "Output tokens (including reasoning ones) per second, per requested model.", "short",
                         [target(sum_rate(sc.PROM_CLIENT_TOKEN_USAGE + sc.PROM_SUM_SUFFIX, ctx.by(MODEL),
                                          f'{TOKEN_TYPE}="{sc.TOKEN_TYPE_OUTPUT}"', where), model)]),
        row("Spend"),
        timeseries_panel("Spend per model per hour", "LLM spend in USD per hour, per requested model.",
                         "currencyUSD",
                         [target(sum_increase(sc.PROM_LLM_COST, ctx.by(MODEL), where, window=INTERVAL), model)],
                         bars=True, interval="1h"),
        timeseries_panel("Spend per model per day", "LLM spend in USD per day, per requested model.",
                         "currencyUSD",
                         [target(sum_increase(sc.PROM_LLM_COST, ctx.by(MODEL), where, window=INTERVAL), model)],
                         bars=True, interval="1d", time_from="7d"),
        bars_panel("Unpriced calls by model in range",
                   "LLM calls without a known price in the time range, per provider and requested model (0 for "
                   "a priced one): their cost is unknown (not zero) and missing from every spend panel.", "short",
                   [target(or_zero(sum_increase(sc.PROM_PRICING_UNPRICED_CALLS, by_pm, where),
                                   sum_increase(calls, by_pm, where), by_pm), pm_legend, instant=True)],
                   width=24, height=6, no_value="0"),
    ]
    return dashboard(ctx, "llm", "agentwatch / LLM calls",
                     generated("LLM calls by provider and model: calls, errors, latency, time to first chunk, "
                               "tokens, spend and unpriced calls. LLM-call metrics carry no agent label: filter "
                               "by job or model."),
                     ("model",), items)
