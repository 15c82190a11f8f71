"""Grafana dashboards as code (grafana-foundation-sdk), and the files that provision them and their datasources.

    artifacts(thresholds.load())  ->  {"dashboards/agent-overview.json": "...", "dashboards/provisioning/...": ...}

Four dashboards, with the UIDs alert links use (links.DASHBOARD_UIDS): Agent overview, LLM calls, Tools, Cost.
Every series and label name comes from semconv (through promql); every threshold from the threshold table. The
six threshold stat panels run the alerts' own queries (promql.signal_query) over the alerts' windows, so a
stat panel shows exactly the number its alert compares, coloured at the alert's threshold. Everything else
follows Grafana's conventions (grafana/dashboard-linter): one `datasource` variable that every panel uses,
`$__rate_interval` in every rate, counters only inside rate()/increase(), a unit and a description on every
panel. Panels link to the traces (Tempo, by TraceQL; exemplars go through the Prometheus datasource's
exemplar settings, to Tempo or Jaeger) and to the JSON logs (Elasticsearch) of failing runs, tools and calls.

Output is deterministic (sorted keys, fixed panel ids), so `agentwatch generate --check` compares text.
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable
from urllib.parse import quote

from agentwatch import semconv as sc
from agentwatch.tooling.generate import _yaml
from agentwatch.tooling.generate import promql as q
from agentwatch.tooling.generate.alerts import alert_names
from agentwatch.tooling.generate.links import DASHBOARD_UIDS
from agentwatch.thresholds import Threshold, Thresholds, duration_seconds

try:
    from grafana_foundation_sdk.builders import bargauge, gauge, stat, timeseries
    from grafana_foundation_sdk.builders import table as table_builders
    from grafana_foundation_sdk.builders import common as common_builders
    from grafana_foundation_sdk.builders import dashboard as builders
    from grafana_foundation_sdk.builders import prometheus as prom_builders
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.models import common
    from grafana_foundation_sdk.models import dashboard as models
    from grafana_foundation_sdk.models.prometheus import PromQueryFormat
except ImportError:  # pragma: no cover - the `dashboards` extra is not installed
    SDK_MISSING = True
else:
    SDK_MISSING = False

SDK_HINT = "the dashboards need grafana-foundation-sdk: pip install 'agentwatch[dashboards]'"

DASHBOARDS_DIR = "dashboards"
PROVISIONING_DIR = f"{DASHBOARDS_DIR}/provisioning"
FILES = {"agents": "agent-overview.json", "llm": "llm-calls.json", "tools": "tools.json", "cost": "cost.json"}
TAG = "agentwatch"
FOLDER = "agentwatch"
# Datasource UIDs of the provisioning examples; the dashboards pick their datasources through variables.
DATASOURCE_UIDS = {"prometheus": "agentwatch-prometheus", "tempo": "agentwatch-tempo",
                   "jaeger": "agentwatch-jaeger", "elasticsearch": "agentwatch-elasticsearch"}
LOGS_INDEX = "logs-agentwatch-*"  # ECS data stream logs-<event.dataset>-<namespace>
PROMETHEUS_SCRAPE_INTERVAL = "15s"  # the datasource's timeInterval: $__rate_interval is at least 4 x this

# Grafana's interval variables: every rate uses RATE; increase() over the panel's range or interval.
RATE = "$__rate_interval"
RANGE = "$__range"
INTERVAL = "$__interval"

# Label names (Prometheus labels are the OTel attribute names with "." -> "_").
JOB = "job"
AGENT = q.AGENT
TOOL = q.TOOL
PROVIDER = q.PROVIDER
ERROR = q.ERROR
MODEL = q.prom_label(sc.GEN_AI_REQUEST_MODEL)
TOKEN_TYPE = q.prom_label(sc.GEN_AI_TOKEN_TYPE)

# Variable matchers: `=~` with the variables' all-value ".*", which also matches a series without the label.
JOB_M = f'{JOB}=~"$job"'
AGENT_M = f'{AGENT}=~"$agent"'
MODEL_M = f'{MODEL}=~"$model"'
AGENT_WHERE = f"{JOB_M}, {AGENT_M}"  # agent-level series: runs, tools, cost and tokens per run
LLM_WHERE = f"{JOB_M}, {MODEL_M}"  # LLM-call series (they carry no agent label)

# Grafana unit ids for the threshold table's units.
UNITS = {"ratio": "percentunit", sc.UNIT_SECONDS: "s", sc.UNIT_USD: "currencyUSD", sc.UNIT_TOKEN: "short",
         sc.UNIT_INFERENCE_CALL: "short", sc.UNIT_TOOL_CALL: "short", sc.UNIT_CALL: "short"}
SEVERITY_COLORS = {"critical": "red", "warning": "orange", "info": "blue"}
SIGNAL_TITLES = {"success_rate": "Success rate", "steps_per_run": "Steps per run", "p99_latency": "P99 run latency",
                 "tokens_per_run": "Tokens per run", "cost_per_run": "Cost per run",
                 "tool_error_rate": "Tool-call error rate"}

# ECS fields of agentwatch's JSON log records (logs.py) that the log links search.
LOG_ACTION = "event.action"
LOG_OUTCOME = "event.outcome"
LOG_TRACE_ID = "trace.id"
_PLACEHOLDER = re.compile(r"\$\{[^}]+\}")


def _require_sdk() -> None:
    if SDK_MISSING:
        raise ImportError(SDK_HINT)


# --- small builders -----------------------------------------------------------------------------------
def _ds() -> "models.DataSourceRef":
    return models.DataSourceRef(type_val="prometheus", uid="${datasource}")


def _target(expr: str, legend: str | None = None, ref: str = "A", instant: bool = False,
            exemplar: bool = False, table_format: bool = False, heatmap: bool = False) -> Any:
    target = prom_builders.Dataquery().expr(expr.strip()).ref_id(ref).datasource(_ds())
    target = target.instant() if instant else target.range()
    if legend is not None:
        target = target.legend_format(legend)
    if exemplar:
        target = target.exemplar(True)
    if table_format:
        target = target.format(PromQueryFormat.TABLE)
    if heatmap:
        target = target.format(PromQueryFormat.HEATMAP)
    return target


def _sum(by: str, inner: str) -> str:
    return f"sum by ({by}) ({inner})" if by else f"sum({inner})"


def _sum_rate(series: str, by: str, *matchers: str, window: str = RATE) -> str:
    return _sum(by, f"rate({q.selector(series, *matchers)}[{window}])")


def _sum_increase(series: str, by: str, *matchers: str, window: str = RANGE) -> str:
    return _sum(by, f"increase({q.selector(series, *matchers)}[{window}])")


def _share(series: str, failed: str, where: str) -> str:
    """Fleet-wide share of `series` matching `failed`: 0 when nothing matches, NaN without traffic."""
    part = _sum_rate(series, "", failed, where)
    whole = _sum_rate(series, "", where)
    return f"(\n  {part}\n  or\n  0 * {whole}\n)\n/\n{whole}\n"


def _steps(threshold: Threshold) -> list["models.Threshold"]:
    bad = SEVERITY_COLORS[threshold.severity]
    if threshold.comparison == "<":
        return [models.Threshold(value=None, color=bad), models.Threshold(value=threshold.value, color="green")]
    return [models.Threshold(value=None, color="green"), models.Threshold(value=threshold.value, color=bad)]


def _thresholds(steps: list["models.Threshold"]) -> Any:
    return builders.ThresholdsConfig().mode(models.ThresholdsMode.ABSOLUTE).steps(steps)


def _budget_steps(limit: float, warning_at: float, critical_at: float) -> list["models.Threshold"]:
    return [models.Threshold(value=None, color="green"),
            models.Threshold(value=float(q.num(limit * warning_at)), color="orange"),
            models.Threshold(value=float(q.num(limit * critical_at)), color="red")]


def _explore_url(datasource_var: str, query: dict[str, Any]) -> str:
    """A link into Grafana Explore; `${...}` placeholders stay as they are for Grafana to fill in."""
    pane = {"agentwatch": {"datasource": "${%s}" % datasource_var, "queries": [query],
                           "range": {"from": "${__from}", "to": "${__to}"}}}
    text = json.dumps(pane, separators=(",", ":"), sort_keys=True)
    encoded = quote(text, safe="")
    for placeholder in sorted(set(_PLACEHOLDER.findall(text))):
        encoded = encoded.replace(quote(placeholder, safe=""), placeholder)
    return f"/explore?schemaVersion=1&orgId=1&panes={encoded}"


def _traces_link(title: str, traceql: str) -> Any:
    query = {"refId": "A", "datasource": {"type": "tempo", "uid": "${traces}"}, "queryType": "traceql",
             "query": traceql, "limit": 20}
    return builders.DashboardLink(title).url(_explore_url("traces", query)).target_blank(True)


def _logs_link(title: str, lucene: str) -> Any:
    query = {"refId": "A", "datasource": {"type": "elasticsearch", "uid": "${logs}"}, "query": lucene,
             "metrics": [{"id": "1", "type": "logs"}], "bucketAggs": [], "timeField": "@timestamp"}
    return builders.DashboardLink(title).url(_explore_url("logs", query)).target_blank(True)


def _field(label: str) -> str:
    return "${__field.labels.%s}" % label


def _run_links() -> list[Any]:
    """Failed runs of the agent under the cursor: traces (Tempo) and JSON logs (Elasticsearch)."""
    agent = _field(AGENT)
    return [
        _traces_link(f"Failed runs of {agent} (traces)",
                     f'{{ span.{sc.GEN_AI_OPERATION_NAME} = "{sc.OP_INVOKE_AGENT}" && '
                     f'span.{sc.GEN_AI_AGENT_NAME} = "{agent}" && status = error }}'),
        _logs_link(f"Failed runs of {agent} (logs)",
                   f'{LOG_ACTION}:"{sc.LOG_EVENT_AGENT_RUN}" AND {sc.GEN_AI_AGENT_NAME}:"{agent}" AND '
                   f'{LOG_OUTCOME}:"failure"'),
    ]


def _tool_links() -> list[Any]:
    tool = _field(TOOL)
    return [
        _traces_link(f"Failed calls of {tool} (traces)",
                     f'{{ span.{sc.GEN_AI_OPERATION_NAME} = "{sc.OP_EXECUTE_TOOL}" && '
                     f'span.{sc.GEN_AI_TOOL_NAME} = "{tool}" && status = error }}'),
        _logs_link(f"Failed calls of {tool} (logs)",
                   f'{LOG_ACTION}:"{sc.LOG_EVENT_TOOL_CALL}" AND {sc.GEN_AI_TOOL_NAME}:"{tool}" AND '
                   f'{LOG_OUTCOME}:"failure"'),
    ]


def _llm_links() -> list[Any]:
    model = _field(MODEL)
    return [
        _traces_link(f"Failed calls to {model} (traces)",
                     f'{{ span.{sc.GEN_AI_REQUEST_MODEL} = "{model}" && status = error }}'),
        _logs_link(f"Failed calls to {model} (logs)",
                   f'{LOG_ACTION}:"{sc.LOG_EVENT_LLM_CALL}" AND {sc.GEN_AI_REQUEST_MODEL}:"{model}" AND '
                   f'{LOG_OUTCOME}:"failure"'),
    ]


def _legend() -> Any:
    return (common_builders.VizLegendOptions().display_mode(common.LegendDisplayMode.TABLE)
            .placement(common.LegendPlacement.BOTTOM).show_legend(True).calcs(["mean", "lastNotNull", "max"]))


def _tooltip() -> Any:
    return common_builders.VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI).sort(common.SortOrder.DESCENDING)


def _timeseries(title: str, description: str, unit: str, targets: list[Any], *, width: int = 12,
                height: int = 8, threshold: Threshold | None = None, links: list[Any] | None = None,
                bars: bool = False, interval: str | None = None, min_val: float | None = 0,
                max_val: float | None = None, no_value: str | None = None, time_from: str | None = None) -> Any:
    panel = (timeseries.Panel().title(title).description(description).datasource(_ds()).unit(unit)
             .span(width).height(height).legend(_legend()).tooltip(_tooltip()).targets(targets))
    if min_val is not None:
        panel = panel.min(min_val)
    if max_val is not None:
        panel = panel.max(max_val)
    if threshold is not None:
        panel = (panel.thresholds(_thresholds(_steps(threshold)))
                 .thresholds_style(common_builders.GraphThresholdsStyleConfig()
                                   .mode(common.GraphThresholdsStyleMode.DASHED)))
    if links:
        panel = panel.data_links(links)
    if bars:
        panel = (panel.draw_style(common.GraphDrawStyle.BARS).fill_opacity(80)
                 .stacking(common_builders.StackingConfig().mode(common.StackingMode.NORMAL)))
    else:
        panel = panel.fill_opacity(10)
    if interval:
        panel = panel.interval(interval)
    if no_value is not None:
        panel = panel.no_value(no_value)
    if time_from:
        panel = panel.time_from(time_from)
    return panel


def _stat(title: str, description: str, unit: str, targets: list[Any], *, width: int = 4, height: int = 6,
          steps: list["models.Threshold"] | None = None, links: list[Any] | None = None,
          time_from: str | None = None, no_value: str | None = None, decimals: float | None = None) -> Any:
    panel = (stat.Panel().title(title).description(description).datasource(_ds()).unit(unit).span(width)
             .height(height).targets(targets)
             .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
             .color_mode(common.BigValueColorMode.BACKGROUND).graph_mode(common.BigValueGraphMode.NONE)
             .text_mode(common.BigValueTextMode.VALUE_AND_NAME).justify_mode(common.BigValueJustifyMode.AUTO)
             .orientation(common.VizOrientation.AUTO)
             .thresholds(_thresholds(steps or [models.Threshold(value=None, color="green")])))
    if links:
        panel = panel.data_links(links)
    if time_from:
        panel = panel.time_from(time_from)
    if no_value is not None:
        panel = panel.no_value(no_value)
    if decimals is not None:
        panel = panel.decimals(decimals)
    return panel


def _bars(title: str, description: str, unit: str, targets: list[Any], *, width: int = 12, height: int = 8,
          no_value: str | None = None, time_from: str | None = None) -> Any:
    panel = (bargauge.Panel().title(title).description(description).datasource(_ds()).unit(unit).span(width)
             .height(height).targets(targets).display_mode(common.BarGaugeDisplayMode.GRADIENT)
             .orientation(common.VizOrientation.HORIZONTAL).min(0)
             .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
             .thresholds(_thresholds([models.Threshold(value=None, color="blue")])))
    if no_value is not None:
        panel = panel.no_value(no_value)
    if time_from:
        panel = panel.time_from(time_from)
    return panel


def _row(title: str) -> Any:
    return builders.Row(title)


def _quantiles(histogram: str, where: str, by: str = "", phis: tuple[float, ...] = (0.5, 0.95, 0.99),
               exemplar: bool = True) -> list[Any]:
    targets = []
    for i, phi in enumerate(phis):
        legend = f"p{q.num(phi * 100)}" + (" " + " · ".join("{{%s}}" % b.strip() for b in by.split(",")) if by else "")
        targets.append(_target(q.quantile(phi, histogram, RATE, by, where), legend, ref=chr(ord("A") + i),
                               exemplar=exemplar))
    return targets


# --- variables ----------------------------------------------------------------------------------------
def _query_variable(name: str, label: str, description: str, query: str) -> Any:
    return (builders.QueryVariable(name).label(label).description(description).datasource(_ds()).query(query)
            .refresh(models.VariableRefresh.ON_TIME_RANGE_CHANGED).sort(models.VariableSort.ALPHABETICAL_ASC)
            .multi(True).include_all(True).all_value(".*")
            .current(models.VariableOption(text="All", value="$__all")))


def _variables(kinds: tuple[str, ...]) -> list[Any]:
    runs = sc.PROM_INVOKE_AGENT_DURATION + sc.PROM_COUNT_SUFFIX
    calls = sc.PROM_CLIENT_OPERATION_DURATION + sc.PROM_COUNT_SUFFIX
    out = [builders.DatasourceVariable("datasource").label("Prometheus").type("prometheus")
           .description("The Prometheus (or Mimir, Thanos) datasource that scrapes the agents.")]
    if "job" in kinds:
        out.append(_query_variable("job", "Job", "Prometheus job (scrape target group) of the agents.",
                                   f'label_values({{__name__=~"{runs}|{calls}"}}, {JOB})'))
    if "agent" in kinds:
        out.append(_query_variable("agent", "Agent", "Agent name (gen_ai.agent.name) of the runs and tool calls.",
                                   f"label_values({runs}{{{JOB_M}}}, {AGENT})"))
    if "model" in kinds:
        out.append(_query_variable("model", "Model", "Requested model (gen_ai.request.model) of the LLM calls.",
                                   f"label_values({calls}{{{JOB_M}}}, {MODEL})"))
    out.append(builders.DatasourceVariable("traces").label("Traces").type("tempo")
               .description("Tempo datasource the panel links open failing runs, tools and calls in."))
    out.append(builders.DatasourceVariable("logs").label("Logs").type("elasticsearch")
               .description("Elasticsearch datasource with agentwatch's JSON (ECS) log records."))
    return out


def _dashboard(key: str, title: str, description: str, variables: tuple[str, ...],
               items: list[Any]) -> "models.Dashboard":
    board = (builders.Dashboard(title).uid(DASHBOARD_UIDS[key]).description(description).tags([TAG])
             .time("now-6h", "now").refresh("1m").timezone("browser").editable()
             .tooltip(models.DashboardCursorSync.CROSSHAIR).variables(_variables(variables))
             .link(builders.DashboardLink("agentwatch dashboards").type(models.DashboardLinkType.DASHBOARDS)
                   .tags([TAG]).as_dropdown(True).include_vars(True).keep_time(True)))
    for panel_id, item in enumerate(items, start=1):
        item = item.id(panel_id)
        board = board.with_row(item) if isinstance(item, builders.Row) else board.with_panel(item)
    return board.build()


def _generated(text: str) -> str:
    return (f"{text} Generated by `agentwatch generate` from the telemetry contract and the threshold table; "
            "change thresholds.yaml (or your override) and regenerate rather than editing it in Grafana.")


# --- Agent overview -----------------------------------------------------------------------------------
def signal_stat(table: Thresholds, signal: str) -> Any:
    """The stat panel of one threshold signal: the alert's query and window, coloured at its threshold."""
    t = table[signal]
    legend = "{{%s}}" % AGENT if signal != "tool_error_rate" else "{{%s}} · {{%s}}" % (AGENT, TOOL)
    word = "below" if t.comparison == "<" else "above"
    description = (f"{t.description}, per agent{' and tool' if signal == 'tool_error_rate' else ''}, over the "
                   f"last {t.window}: the number alert {t.alert} compares. It fires ({t.severity}) when the value "
                   f"stays {word} {t.display} for {t.for_}; the colour changes at that threshold "
                   "(thresholds.yaml or your override).")
    return _stat(SIGNAL_TITLES[signal], description, UNITS[t.unit],
                 [_target(q.signal_query(signal, t.window, AGENT_WHERE), legend, instant=True)],
                 steps=_steps(t), links=_tool_links() if signal == "tool_error_rate" else _run_links())


def signal_expr(table: Thresholds, signal: str) -> str:
    """The query of a threshold stat panel (for checks): the alert's expression narrowed by the variables."""
    return q.signal_query(signal, table[signal].window, AGENT_WHERE).strip()


def agents_dashboard(table: Thresholds) -> "models.Dashboard":
    runs_m = q.RUNS
    alerts = "|".join(alert_names(table))
    items: list[Any] = [_row("Threshold signals (the alerts' own queries and windows)")]
    items += [signal_stat(table, s) for s in ("success_rate", "steps_per_run", "p99_latency", "tokens_per_run",
                                              "cost_per_run", "tool_error_rate")]
    items += [
        _row("Runs"),
        _timeseries(
            "Runs per second by agent",
            "Agent runs (invoke_agent spans) ended per second, per agent; below, the failed ones by error.type.",
            "ops",
            [_target(q.expr_runs_rate(RATE, AGENT_WHERE), "{{%s}}" % AGENT),
             _target(_sum_rate(runs_m, f"{AGENT}, {ERROR}", q.FAILED, AGENT_WHERE),
                     "{{%s}} failed: {{%s}}" % (AGENT, ERROR), ref="B")],
            links=_run_links()),
        _timeseries(
            "Success rate by agent",
            f"Share of runs that ended without error.type, per agent. The dashed line is the success-rate "
            f"threshold ({table['success_rate'].display}); alert {table['success_rate'].alert} uses a "
            f"{table['success_rate'].window} window.",
            "percentunit", [_target(q.expr_success_ratio(RATE, AGENT_WHERE), "{{%s}}" % AGENT)],
            threshold=table["success_rate"], links=_run_links(), max_val=1),
        _timeseries(
            "Run latency p50 / p95 / p99",
            f"Percentiles of run duration over the selected agents, from the histogram buckets (every threshold "
            f"is a bucket boundary). The dashed line is the p99 threshold ({table['p99_latency'].display}). "
            "Exemplars link to the run's trace where the metrics carry them (OpenTelemetry Collector).",
            "s", _quantiles(sc.PROM_INVOKE_AGENT_DURATION, AGENT_WHERE), threshold=table["p99_latency"]),
        _timeseries(
            "Cost per run by agent",
            f"Average cost in USD of the runs that ended, per agent (runs with a known cost). The dashed line "
            f"is the cost-per-run threshold ({table['cost_per_run'].display}).",
            "currencyUSD", [_target(q.expr_cost_mean(RATE, AGENT_WHERE), "{{%s}}" % AGENT)],
            threshold=table["cost_per_run"], links=_run_links()),
        _timeseries(
            "Steps per run by agent",
            f"Average LLM calls (steps) per run, per agent. The dashed line is the steps-per-run threshold "
            f"({table['steps_per_run'].display}).",
            "short", [_target(q.expr_steps_mean(RATE, AGENT_WHERE), "{{%s}}" % AGENT)],
            threshold=table["steps_per_run"], links=_run_links()),
        _timeseries(
            "Tokens per run by agent",
            f"Average input + output tokens per run, per agent. The dashed line is the tokens-per-run threshold "
            f"({table['tokens_per_run'].display}).",
            "short", [_target(q.expr_tokens_mean(RATE, AGENT_WHERE), "{{%s}}" % AGENT)],
            threshold=table["tokens_per_run"], links=_run_links()),
        _timeseries(
            "Tool-call error rate by agent and tool",
            f"Share of tool calls that failed, per agent and tool. The dashed line is the tool-error-rate "
            f"threshold ({table['tool_error_rate'].display}).",
            "percentunit", [_target(q.expr_tool_error_ratio(RATE, AGENT_WHERE), "{{%s}} · {{%s}}" % (AGENT, TOOL))],
            threshold=table["tool_error_rate"], links=_tool_links(), max_val=1, no_value="No tool calls"),
        _row("Alerts"),
        _alerts_table(table, alerts),
    ]
    return _dashboard("agents", "agentwatch / Agent overview",
                      _generated("Agent runs: the six threshold signals per agent, runs, success, latency, cost, "
                                 "steps, tokens, tool errors and the agentwatch alerts firing now."),
                      ("job", "agent"), items)


def _alerts_table(table: Thresholds, alerts: str) -> Any:
    runbook = table.alerting.runbook_url.replace("{alert}", "${__data.fields.alertname}")
    expr = (f"sum by (alertname, severity, {AGENT}, {TOOL}, {PROVIDER}) "
            f'({sc.PROM_ALERTS}{{alertstate="firing", alertname=~"{alerts}", {AGENT_M}}})')
    return _table(
        "Firing agentwatch alerts",
        "agentwatch alerts firing now (Prometheus' ALERTS series; needs agentwatch's rules loaded, see "
        "alerts/rules). Watchdog always fires: it proves the alerting pipeline works. Click an alert for its "
        "runbook.",
        [_target(expr, instant=True, table_format=True)],
        links=[builders.DashboardLink("Runbook for ${__data.fields.alertname}").url(runbook).target_blank(True)],
        no_value="No agentwatch alerts firing (are the rules loaded?)")


def _table(title: str, description: str, targets: list[Any], *, links: list[Any] | None = None,
           no_value: str | None = None, unit: str = "short", width: int = 24, height: int = 8) -> Any:
    panel = (table_builders.Panel().title(title).description(description).datasource(_ds()).unit(unit).span(width)
             .height(height).targets(targets)
             .with_transformation(models.DataTransformerConfig(
                 id_val="organize", options={"excludeByName": {"Time": True}, "indexByName": {},
                                             "renameByName": {"Value": "Count"}})))
    if links:
        panel = panel.data_links(links)
    if no_value is not None:
        panel = panel.no_value(no_value)
    return panel


# --- LLM calls ----------------------------------------------------------------------------------------
def llm_dashboard(table: Thresholds) -> "models.Dashboard":
    calls = q.LLM_CALLS
    provider = table.fleet["provider_errors"]
    provider_threshold = Threshold(
        signal="provider_errors", alert=provider.alert, description="", comparison=provider.comparison or ">",
        value=provider.value if provider.value is not None else 0.95, unit="ratio", severity=provider.severity)
    by_pm = f"{PROVIDER}, {MODEL}"
    pm_legend = "{{%s}} {{%s}}" % (PROVIDER, MODEL)
    items: list[Any] = [
        _row("Calls and errors"),
        _stat("LLM calls per second", "LLM calls (chat, embeddings, ...) per second over the selected models.",
              "ops", [_target(_sum_rate(calls, "", LLM_WHERE), "calls/s", instant=True)], width=6, height=5),
        _stat("Failed LLM calls",
              f"Share of LLM calls that failed (any error.type: HTTP errors, rate limits, timeouts, abandoned "
              f"streams). Alert {provider.alert} fires per provider above {q.num(provider_threshold.value * 100)}%.",
              "percentunit", [_target(_share(calls, q.FAILED, LLM_WHERE), "failed", instant=True)],
              steps=_steps(provider_threshold),
              width=6, height=5, no_value="0%"),
        _stat("Unpriced calls in range",
              "LLM calls whose model has no known price in the time range: their cost is unknown, not zero. "
              "Add the model to an AGENTWATCH_PRICES_FILE override.",
              "short", [_target(_sum_increase(sc.PROM_PRICING_UNPRICED_CALLS, "", LLM_WHERE), "unpriced",
                                instant=True)],
              steps=[models.Threshold(value=None, color="green"), models.Threshold(value=1, color="orange")],
              width=6, height=5, no_value="0", decimals=0),
        _stat("Spend in range", "LLM spend in USD over the selected models in the time range.",
              "currencyUSD", [_target(_sum_increase(sc.PROM_LLM_COST, "", LLM_WHERE), "spend", instant=True)],
              width=6, height=5),
        _timeseries("Calls per second by provider and model",
                    "LLM calls per second, per provider and requested model.", "ops",
                    [_target(_sum_rate(calls, by_pm, LLM_WHERE), pm_legend)], links=_llm_links()),
        _timeseries("Errors per second by provider, model and error type",
                    "Failed LLM calls per second, per provider, requested model and error.type (exception class "
                    "or HTTP status).", "ops",
                    [_target(_sum_rate(calls, f"{by_pm}, {ERROR}", q.FAILED, LLM_WHERE),
                             "{{%s}} {{%s}}: {{%s}}" % (PROVIDER, MODEL, ERROR))],
                    links=_llm_links(), no_value="No failed calls"),
        _timeseries("Error ratio by provider",
                    f"Share of the LLM calls to each provider that failed; the dashed line is the threshold of "
                    f"alert {provider.alert} (over {provider.window or '5m'}).",
                    "percentunit", [_target(q.expr_provider_error_ratio(RATE, LLM_WHERE), "{{%s}}" % PROVIDER)],
                    threshold=provider_threshold, max_val=1, width=24),
        _row("Latency"),
        _timeseries("LLM call latency p50 / p95 / p99",
                    "Percentiles of LLM call duration (to the end of the stream when streamed) over the selected "
                    "models. Exemplars link to the call's trace where the metrics carry them.",
                    "s", _quantiles(sc.PROM_CLIENT_OPERATION_DURATION, LLM_WHERE)),
        _timeseries("LLM call latency p95 by model", "95th percentile of LLM call duration per requested model.",
                    "s", _quantiles(sc.PROM_CLIENT_OPERATION_DURATION, LLM_WHERE, MODEL, (0.95,)),
                    links=_llm_links()),
        _timeseries("Time to first chunk p50 / p95 by model",
                    "Time from the request to the first chunk of a streamed response, per requested model "
                    "(streamed calls only).",
                    "s", _quantiles(sc.PROM_CLIENT_TIME_TO_FIRST_CHUNK, LLM_WHERE, MODEL, (0.5, 0.95)), width=24,
                    no_value="No streamed calls"),
        _row("Tokens"),
        _timeseries("Input tokens per second by model",
                    "Input tokens (including cached ones) per second, per requested model.", "short",
                    [_target(_sum_rate(sc.PROM_CLIENT_TOKEN_USAGE + sc.PROM_SUM_SUFFIX, MODEL,
                                       f'{TOKEN_TYPE}="{sc.TOKEN_TYPE_INPUT}"', LLM_WHERE), "{{%s}}" % MODEL)]),
        _timeseries("Output tokens per second by model",
                    "Output tokens (including reasoning ones) per second, per requested model.", "short",
                    [_target(_sum_rate(sc.PROM_CLIENT_TOKEN_USAGE + sc.PROM_SUM_SUFFIX, MODEL,
                                       f'{TOKEN_TYPE}="{sc.TOKEN_TYPE_OUTPUT}"', LLM_WHERE), "{{%s}}" % MODEL)]),
        _row("Spend"),
        _timeseries("Spend per model per hour", "LLM spend in USD per hour, per requested model.", "currencyUSD",
                    [_target(_sum_increase(sc.PROM_LLM_COST, MODEL, LLM_WHERE, window=INTERVAL), "{{%s}}" % MODEL)],
                    bars=True, interval="1h"),
        _timeseries("Spend per model per day", "LLM spend in USD per day, per requested model.", "currencyUSD",
                    [_target(_sum_increase(sc.PROM_LLM_COST, MODEL, LLM_WHERE, window=INTERVAL), "{{%s}}" % MODEL)],
                    bars=True, interval="1d", time_from="7d"),
        _bars("Unpriced calls by model in range",
              "LLM calls without a known price in the time range, per provider and requested model: their cost "
              "is unknown (not zero) and missing from every spend panel.", "short",
              [_target(_sum_increase(sc.PROM_PRICING_UNPRICED_CALLS, by_pm, LLM_WHERE), pm_legend, instant=True)],
              width=24, height=6, no_value="0"),
    ]
    return _dashboard("llm", "agentwatch / LLM calls",
                      _generated("LLM calls by provider and model: calls, errors, latency, time to first chunk, "
                                 "tokens, spend and unpriced calls. LLM-call metrics carry no agent label: filter "
                                 "by job or model."),
                      ("job", "model"), items)


# --- Tools --------------------------------------------------------------------------------------------
def tools_dashboard(table: Thresholds) -> "models.Dashboard":
    tools = q.TOOL_CALLS
    at = "{{%s}} · {{%s}}" % (AGENT, TOOL)
    threshold = table["tool_error_rate"]
    items: list[Any] = [
        _row("Tool calls"),
        signal_stat(table, "tool_error_rate").span(8).height(8),
        _timeseries("Tool calls per second by tool", "Tool calls (execute_tool spans) per second, per agent and tool.",
                    "ops", [_target(q.expr_tool_calls_rate(RATE, AGENT_WHERE), at)], width=16,
                    links=_tool_links()),
        _timeseries("Tool-call error rate by tool",
                    f"Share of the calls of each tool that failed, per agent. The dashed line is the tool-error-rate "
                    f"threshold ({threshold.display}); alert {threshold.alert} uses a {threshold.window} window.",
                    "percentunit", [_target(q.expr_tool_error_ratio(RATE, AGENT_WHERE), at)],
                    threshold=threshold, links=_tool_links(), max_val=1),
        _timeseries("Failed tool calls per second by error type",
                    "Failed tool calls per second, per agent, tool and error.type (the exception class).", "ops",
                    [_target(_sum_rate(tools, f"{AGENT}, {TOOL}, {ERROR}", q.FAILED, AGENT_WHERE),
                             "{{%s}} · {{%s}}: {{%s}}" % (AGENT, TOOL, ERROR))],
                    links=_tool_links(), no_value="No failed tool calls"),
        _row("Latency"),
        _timeseries("Tool latency p95 by tool", "95th percentile of tool call duration, per agent and tool.", "s",
                    _quantiles(sc.PROM_EXECUTE_TOOL_DURATION, AGENT_WHERE, f"{AGENT}, {TOOL}", (0.95,)),
                    links=_tool_links()),
        _timeseries("Tool latency p50 / p95 / p99",
                    "Percentiles of tool call duration over the selected agents' tools. Exemplars link to the "
                    "call's trace where the metrics carry them.",
                    "s", _quantiles(sc.PROM_EXECUTE_TOOL_DURATION, AGENT_WHERE)),
        _row("Failing tools"),
        _table("Tools failing most in range",
               "The ten agent / tool / error.type combinations with the most failed calls in the time range. "
               "Click a row for its failed calls' traces and logs.",
               [_target(f"topk(10, {_sum_increase(tools, f'{AGENT}, {TOOL}, {ERROR}', q.FAILED, AGENT_WHERE)})",
                        instant=True, table_format=True)],
               links=_tool_links(), no_value="No failed tool calls in range"),
    ]
    return _dashboard("tools", "agentwatch / Tools",
                      _generated("Tool calls per agent and tool: calls, error rate against the threshold, latency "
                                 "and the tools failing most."),
                      ("job", "agent"), items)


# --- Cost ---------------------------------------------------------------------------------------------
def cost_dashboard(table: Thresholds) -> "models.Dashboard":
    spend = table.fleet["daily_spend"]
    budget = spend.budget_usd or 0.0
    warning_at = spend.warning_at if spend.warning_at is not None else 0.8
    critical_at = spend.critical_at if spend.critical_at is not None else 1.0
    cost_threshold = table["cost_per_run"]
    agent_cost_sum = sc.PROM_AGENT_COST + sc.PROM_SUM_SUFFIX
    budget_text = (f"the daily budget of {q.num(budget)} USD (thresholds.yaml fleet.daily_spend; alert "
                   f"{spend.alert} at {q.num(warning_at * 100)}% / {q.num(critical_at * 100)}% of it over a "
                   f"rolling {q.SPEND_WINDOW} window)")
    if not budget:
        budget_text = "no daily budget (fleet.daily_spend.budget_usd is 0)"
    day_steps = _budget_steps(budget, warning_at, critical_at) if budget else None
    day = f"{duration_seconds(q.SPEND_WINDOW) / 3600:g} h"
    items: list[Any] = [
        _row("Spend against the budget"),
        _stat("Spend today", f"LLM spend in USD since midnight (dashboard time zone), against {budget_text}.",
              "currencyUSD", [_target(_sum_increase(sc.PROM_LLM_COST, "", LLM_WHERE), "today", instant=True)],
              steps=day_steps, time_from="now/d", width=6),
        _stat("Spend this month", "LLM spend in USD since the first of the month.", "currencyUSD",
              [_target(_sum_increase(sc.PROM_LLM_COST, "", LLM_WHERE), "this month", instant=True)],
              time_from="now/M", width=6),
    ]
    if budget:
        items += [
            _gauge(f"Last {day} against the daily budget",
                   f"LLM spend over the rolling {day}: with all jobs and models selected, exactly the "
                   f"number alert {spend.alert} compares with {budget_text}.", "currencyUSD",
                   [_target(q.expr_spend(LLM_WHERE), f"last {day}", instant=True)], max_val=budget,
                   steps=_budget_steps(budget, warning_at, critical_at)),
            _gauge("This month against the monthly budget",
                   f"Share of this month's budget spent: spend since the first of the month divided by the daily "
                   f"budget ({q.num(budget)} USD) times the days of this month.", "percentunit",
                   [_target(f"{_sum_increase(sc.PROM_LLM_COST, '', LLM_WHERE)}\n/\n"
                            f"({q.num(budget)} * days_in_month())", "of the month's budget", instant=True)],
                   max_val=1.0, steps=_budget_steps(1.0, warning_at, critical_at), time_from="now/M"),
        ]
    forecast = (f"clamp_min(\n  predict_linear({q.expr_spend(LLM_WHERE)}[6h:], 86400),\n  0\n)")
    items += [
        _stat(f"Forecast: {day} spend a day from now",
              f"predict_linear over the last 6 h of the rolling {day} spend: what it will be in 24 h if the "
              f"trend holds, against {budget_text}.", "currencyUSD",
              [_target(forecast, "forecast", instant=True)], steps=day_steps, width=6 if not budget else 24,
              height=6 if not budget else 4),
        _row("By agent and model"),
        _timeseries("Spend per hour by agent",
                    "Cost in USD of the runs that ended, per hour and agent (runs with a known cost).",
                    "currencyUSD", [_target(_sum_increase(agent_cost_sum, AGENT, AGENT_WHERE, window=INTERVAL),
                                            "{{%s}}" % AGENT)], bars=True, interval="1h", links=_run_links()),
        _timeseries("Spend per hour by model", "LLM spend in USD per hour, per requested model.", "currencyUSD",
                    [_target(_sum_increase(sc.PROM_LLM_COST, MODEL, LLM_WHERE, window=INTERVAL), "{{%s}}" % MODEL)],
                    bars=True, interval="1h", links=_llm_links()),
        _bars("Spend in range by agent", "Cost in USD of the runs that ended in the time range, per agent.",
              "currencyUSD", [_target(_sum_increase(agent_cost_sum, AGENT, AGENT_WHERE), "{{%s}}" % AGENT,
                                      instant=True)]),
        _bars("Spend in range by model", "LLM spend in USD in the time range, per requested model.", "currencyUSD",
              [_target(_sum_increase(sc.PROM_LLM_COST, MODEL, LLM_WHERE), "{{%s}}" % MODEL, instant=True)]),
        _row("Cost per run"),
        _bars("Cost-per-run distribution",
              "Runs that ended in the time range, per cost bucket (upper bound in USD; every threshold is a "
              "bucket boundary).", "short",
              [_target(_sum_increase(sc.PROM_AGENT_COST + sc.PROM_BUCKET_SUFFIX, "le", AGENT_WHERE), "{{le}}",
                       instant=True, heatmap=True)], width=8),
        _timeseries("Cost per run by agent",
                    f"Average cost in USD per run, per agent. The dashed line is the cost-per-run threshold "
                    f"({cost_threshold.display}).", "currencyUSD",
                    [_target(q.expr_cost_mean(RATE, AGENT_WHERE), "{{%s}}" % AGENT)], threshold=cost_threshold,
                    width=8, links=_run_links()),
        _timeseries("Cost per run p50 / p95 / p99", "Percentiles of the cost per run over the selected agents.",
                    "currencyUSD", _quantiles(sc.PROM_AGENT_COST, AGENT_WHERE), width=8),
    ]
    return _dashboard("cost", "agentwatch / Cost",
                      _generated("Spend today and this month against the budget, by agent and model, the "
                                 "cost-per-run distribution and a forecast."),
                      ("job", "agent", "model"), items)


def _gauge(title: str, description: str, unit: str, targets: list[Any], *, max_val: float,
           steps: list["models.Threshold"], time_from: str | None = None) -> Any:
    panel = (gauge.Panel().title(title).description(description).datasource(_ds()).unit(unit).span(6).height(6)
             .targets(targets).min(0).max(max_val).thresholds(_thresholds(steps))
             .show_threshold_markers(True).show_threshold_labels(False)
             .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False)))
    if time_from:
        panel = panel.time_from(time_from)
    return panel


# --- provisioning -------------------------------------------------------------------------------------
def provisioning(table: Thresholds) -> dict[str, str]:
    """Grafana provisioning: the dashboards folder (file provider) and example datasources."""
    uids = DATASOURCE_UIDS
    provider = {"apiVersion": 1, "providers": [{
        "name": "agentwatch", "orgId": 1, "folder": FOLDER, "folderUid": FOLDER, "type": "file",
        "disableDeletion": False, "allowUiUpdates": False, "updateIntervalSeconds": 60,
        "options": {"path": "/var/lib/grafana/dashboards/agentwatch", "foldersFromFilesStructure": False},
    }]}
    trace_to_logs = {"datasourceUid": uids["elasticsearch"], "spanStartTimeShift": "-5m", "spanEndTimeShift": "5m",
                     "filterByTraceID": False, "filterBySpanID": False, "customQuery": True,
                     "query": f'{LOG_TRACE_ID}:"${{__trace.traceId}}"'}
    prometheus = {"apiVersion": 1, "datasources": [{
        "name": "Prometheus (agentwatch)", "uid": uids["prometheus"], "type": "prometheus", "access": "proxy",
        "url": "http://prometheus:9090",
        "jsonData": {
            "httpMethod": "POST",
            "timeInterval": PROMETHEUS_SCRAPE_INTERVAL,
            "exemplarTraceIdDestinations": [
                {"name": "trace_id", "datasourceUid": uids["tempo"], "urlDisplayLabel": "Trace (Tempo)"},
            ],
        },
    }]}
    tempo = {"apiVersion": 1, "datasources": [{
        "name": "Tempo (agentwatch)", "uid": uids["tempo"], "type": "tempo", "access": "proxy",
        "url": "http://tempo:3200",
        "jsonData": {
            "tracesToLogsV2": trace_to_logs,
            "serviceMap": {"datasourceUid": uids["prometheus"]},
            "nodeGraph": {"enabled": True},
            "search": {"hide": False},
        },
    }]}
    jaeger = {"apiVersion": 1, "datasources": [{
        "name": "Jaeger (agentwatch)", "uid": uids["jaeger"], "type": "jaeger", "access": "proxy",
        "url": "http://jaeger:16686",
        "jsonData": {"tracesToLogsV2": trace_to_logs, "nodeGraph": {"enabled": True}},
    }]}
    elasticsearch = {"apiVersion": 1, "datasources": [{
        "name": "Elasticsearch (agentwatch logs)", "uid": uids["elasticsearch"], "type": "elasticsearch",
        "access": "proxy", "url": "http://elasticsearch:9200",
        "jsonData": {
            "index": LOGS_INDEX, "timeField": "@timestamp", "logMessageField": "message",
            "logLevelField": "log.level", "maxConcurrentShardRequests": 5,
            "dataLinks": [{"field": LOG_TRACE_ID, "url": "${__value.raw}", "datasourceUid": uids["tempo"]}],
        },
    }]}
    header = ("Generated by `agentwatch generate`; do not edit by hand.\n"
              "Copy into Grafana's provisioning directory (e.g. /etc/grafana/provisioning/{kind}/) and adapt.")
    notes = {
        "dashboards/agentwatch.yaml": (provider, "dashboards",
                                       "Copy dashboards/*.json to the path below (e.g. a mounted volume)."),
        "datasources/prometheus.yaml": (prometheus, "datasources",
                                        "Set url to your Prometheus and timeInterval to its scrape interval.\n"
                                        "Exemplars (OpenMetrics, e.g. from the OpenTelemetry Collector's "
                                        "prometheus exporter with\nenable_open_metrics) link to the traces "
                                        f"datasource {uids['tempo']}; use {uids['jaeger']} for Jaeger."),
        "datasources/tempo.yaml": (tempo, "datasources",
                                   "Traces backend (Tempo): from a span to the run's JSON logs by trace.id."),
        "datasources/jaeger.yaml": (jaeger, "datasources",
                                    "Traces backend (Jaeger), instead of Tempo: from a span to the run's logs."),
        "datasources/elasticsearch.yaml": (elasticsearch, "datasources",
                                           "agentwatch's ECS JSON log records; trace.id links to the trace."),
    }
    out = {}
    for rel, (data, kind, note) in notes.items():
        out[f"{PROVISIONING_DIR}/{rel}"] = _yaml.dump(data, header.format(kind=kind) + "\n" + note)
    return out


# --- output -------------------------------------------------------------------------------------------
BUILDERS: dict[str, Callable[[Thresholds], Any]] = {
    "agents": agents_dashboard, "llm": llm_dashboard, "tools": tools_dashboard, "cost": cost_dashboard,
}


def to_json(board: Any) -> str:
    """Deterministic JSON of a dashboard model (or a plain dict)."""
    return json.dumps(board, cls=JSONEncoder, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def artifacts(table: Thresholds) -> dict[str, str]:
    """Every file this generator owns, by path relative to the output directory."""
    _require_sdk()
    out = {f"{DASHBOARDS_DIR}/{FILES[key]}": to_json(build(table)) for key, build in BUILDERS.items()}
    out.update(provisioning(table))
    return out
