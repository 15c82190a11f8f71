"""Panel builders every dashboard shares (grafana-foundation-sdk): targets, the panel kinds with agentwatch's
defaults (legend, tooltip, thresholds, units), and the data links to traces (Tempo, by TraceQL) and JSON logs
(Elasticsearch) of failing runs, tools and calls.

Every panel reads the one `datasource` variable; nothing here knows a dashboard or a query's scope.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

from agentwatch import semconv as sc
from agentwatch.tooling.generate import promql as q
from agentwatch.thresholds import Threshold

try:
    from grafana_foundation_sdk.builders import bargauge, gauge, stat, timeseries
    from grafana_foundation_sdk.builders import table as table_builders
    from grafana_foundation_sdk.builders import common as common_builders
    from grafana_foundation_sdk.builders import dashboard as builders
    from grafana_foundation_sdk.builders import prometheus as prom_builders
    from grafana_foundation_sdk.models import common
    from grafana_foundation_sdk.models import dashboard as models
    from grafana_foundation_sdk.models.prometheus import PromQueryFormat
except ImportError:  # pragma: no cover - the `dashboards` extra is not installed
    SDK_MISSING = True  # the modules still import; building a dashboard raises SDK_HINT (require_sdk)
    bargauge = gauge = stat = timeseries = table_builders = common_builders = builders = prom_builders = None
    common = models = PromQueryFormat = None
else:
    SDK_MISSING = False

SDK_HINT = "the dashboards need grafana-foundation-sdk: pip install 'agentwatch[dashboards]'"

# Grafana's interval variables: every rate uses RATE; increase() over the panel's range or interval.
RATE = "$__rate_interval"
RANGE = "$__range"
INTERVAL = "$__interval"

# Label names (Prometheus labels are the OTel attribute names with "." -> "_").
AGENT = q.AGENT
TOOL = q.TOOL
PROVIDER = q.PROVIDER
ERROR = q.ERROR
MODEL = q.prom_label(sc.GEN_AI_REQUEST_MODEL)
TOKEN_TYPE = q.prom_label(sc.GEN_AI_TOKEN_TYPE)

# Grafana unit ids for the threshold table's units.
UNITS = {"ratio": "percentunit", sc.UNIT_SECONDS: "s", sc.UNIT_USD: "currencyUSD", sc.UNIT_TOKEN: "short",
         sc.UNIT_INFERENCE_CALL: "short", sc.UNIT_TOOL_CALL: "short", sc.UNIT_CALL: "short"}
SEVERITY_COLORS = {"critical": "red", "warning": "orange", "info": "blue"}

# ECS fields of agentwatch's JSON log records (logs.py) that the log links search.
LOG_ACTION = "event.action"
LOG_OUTCOME = "event.outcome"
LOG_TRACE_ID = "trace.id"
_PLACEHOLDER = re.compile(r"\$\{[^}]+\}")


def require_sdk() -> None:
    if SDK_MISSING:
        raise ImportError(SDK_HINT)


# --- targets and thresholds ---------------------------------------------------------------------------
def datasource() -> "models.DataSourceRef":
    return models.DataSourceRef(type_val="prometheus", uid="${datasource}")


def target(expr: str, legend: str | None = None, ref: str = "A", instant: bool = False,
           exemplar: bool = False, table_format: bool = False, heatmap: bool = False) -> Any:
    out = prom_builders.Dataquery().expr(expr.strip()).ref_id(ref).datasource(datasource())
    out = out.instant() if instant else out.range()
    if legend is not None:
        out = out.legend_format(legend)
    if exemplar:
        out = out.exemplar(True)
    if table_format:
        out = out.format(PromQueryFormat.TABLE)
    if heatmap:
        out = out.format(PromQueryFormat.HEATMAP)
    return out


def quantile_targets(histogram: str, where: str, by: str = "", phis: tuple[float, ...] = (0.5, 0.95, 0.99),
                     exemplar: bool = True) -> list[Any]:
    """One target per percentile of a histogram (base name) over `where`, per `by` ("" for one line each)."""
    targets = []
    for i, phi in enumerate(phis):
        legend = f"p{q.num(phi * 100)}" + (" " + " · ".join("{{%s}}" % b.strip() for b in by.split(",")) if by else "")
        targets.append(target(q.quantile(phi, histogram, RATE, by, where), legend, ref=chr(ord("A") + i),
                              exemplar=exemplar))
    return targets


def steps(threshold: Threshold) -> list["models.Threshold"]:
    """Green on the good side of the threshold, the severity's colour on the bad side."""
    bad = SEVERITY_COLORS[threshold.severity]
    if threshold.comparison == "<":
        return [models.Threshold(value=None, color=bad), models.Threshold(value=threshold.value, color="green")]
    return [models.Threshold(value=None, color="green"), models.Threshold(value=threshold.value, color=bad)]


def thresholds_config(levels: list["models.Threshold"]) -> Any:
    return builders.ThresholdsConfig().mode(models.ThresholdsMode.ABSOLUTE).steps(levels)


def budget_steps(limit: float, warning_at: float, critical_at: float) -> list["models.Threshold"]:
    return [models.Threshold(value=None, color="green"),
            models.Threshold(value=float(q.num(limit * warning_at)), color="orange"),
            models.Threshold(value=float(q.num(limit * critical_at)), color="red")]


# --- links to traces and logs -------------------------------------------------------------------------
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


def run_links() -> list[Any]:
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


def tool_links() -> list[Any]:
    tool = _field(TOOL)
    return [
        _traces_link(f"Failed calls of {tool} (traces)",
                     f'{{ span.{sc.GEN_AI_OPERATION_NAME} = "{sc.OP_EXECUTE_TOOL}" && '
                     f'span.{sc.GEN_AI_TOOL_NAME} = "{tool}" && status = error }}'),
        _logs_link(f"Failed calls of {tool} (logs)",
                   f'{LOG_ACTION}:"{sc.LOG_EVENT_TOOL_CALL}" AND {sc.GEN_AI_TOOL_NAME}:"{tool}" AND '
                   f'{LOG_OUTCOME}:"failure"'),
    ]


def llm_links() -> list[Any]:
    model = _field(MODEL)
    return [
        _traces_link(f"Failed calls to {model} (traces)",
                     f'{{ span.{sc.GEN_AI_REQUEST_MODEL} = "{model}" && status = error }}'),
        _logs_link(f"Failed calls to {model} (logs)",
                   f'{LOG_ACTION}:"{sc.LOG_EVENT_LLM_CALL}" AND {sc.GEN_AI_REQUEST_MODEL}:"{model}" AND '
                   f'{LOG_OUTCOME}:"failure"'),
    ]


# --- panels -------------------------------------------------------------------------------------------
def _legend() -> Any:
    return (common_builders.VizLegendOptions().display_mode(common.LegendDisplayMode.TABLE)
            .placement(common.LegendPlacement.BOTTOM).show_legend(True).calcs(["mean", "lastNotNull", "max"]))


def _tooltip() -> Any:
    return common_builders.VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI).sort(common.SortOrder.DESCENDING)


def _last_value() -> Any:
    return common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False)


def row(title: str) -> Any:
    return builders.Row(title)


def timeseries_panel(title: str, description: str, unit: str, targets: list[Any], *, width: int = 12,
                     height: int = 8, threshold: Threshold | None = None, links: list[Any] | None = None,
                     bars: bool = False, interval: str | None = None, min_val: float | None = 0,
                     max_val: float | None = None, no_value: str | None = None, time_from: str | None = None) -> Any:
    panel = (timeseries.Panel().title(title).description(description).datasource(datasource()).unit(unit)
             .span(width).height(height).legend(_legend()).tooltip(_tooltip()).targets(targets))
    if min_val is not None:
        panel = panel.min(min_val)
    if max_val is not None:
        panel = panel.max(max_val)
    if threshold is not None:
        panel = (panel.thresholds(thresholds_config(steps(threshold)))
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


def stat_panel(title: str, description: str, unit: str, targets: list[Any], *, width: int = 4, height: int = 6,
               levels: list["models.Threshold"] | None = None, links: list[Any] | None = None,
               time_from: str | None = None, no_value: str | None = None, decimals: float | None = None) -> Any:
    panel = (stat.Panel().title(title).description(description).datasource(datasource()).unit(unit).span(width)
             .height(height).targets(targets).reduce_options(_last_value())
             .color_mode(common.BigValueColorMode.BACKGROUND).graph_mode(common.BigValueGraphMode.NONE)
             .text_mode(common.BigValueTextMode.VALUE_AND_NAME).justify_mode(common.BigValueJustifyMode.AUTO)
             .orientation(common.VizOrientation.AUTO)
             .thresholds(thresholds_config(levels or [models.Threshold(value=None, color="green")])))
    if links:
        panel = panel.data_links(links)
    if time_from:
        panel = panel.time_from(time_from)
    if no_value is not None:
        panel = panel.no_value(no_value)
    if decimals is not None:
        panel = panel.decimals(decimals)
    return panel


def bars_panel(title: str, description: str, unit: str, targets: list[Any], *, width: int = 12, height: int = 8,
               no_value: str | None = None, time_from: str | None = None) -> Any:
    panel = (bargauge.Panel().title(title).description(description).datasource(datasource()).unit(unit)
             .span(width).height(height).targets(targets).display_mode(common.BarGaugeDisplayMode.GRADIENT)
             .orientation(common.VizOrientation.HORIZONTAL).min(0).reduce_options(_last_value())
             .thresholds(thresholds_config([models.Threshold(value=None, color="blue")])))
    if no_value is not None:
        panel = panel.no_value(no_value)
    if time_from:
        panel = panel.time_from(time_from)
    return panel


def gauge_panel(title: str, description: str, unit: str, targets: list[Any], *, max_val: float,
                levels: list["models.Threshold"], time_from: str | None = None) -> Any:
    panel = (gauge.Panel().title(title).description(description).datasource(datasource()).unit(unit).span(6)
             .height(6).targets(targets).min(0).max(max_val).thresholds(thresholds_config(levels))
             .show_threshold_markers(True).show_threshold_labels(False).reduce_options(_last_value()))
    if time_from:
        panel = panel.time_from(time_from)
    return panel


def table_panel(title: str, description: str, targets: list[Any], *, links: list[Any] | None = None,
                no_value: str | None = None, unit: str = "short", width: int = 24, height: int = 8) -> Any:
    panel = (table_builders.Panel().title(title).description(description).datasource(datasource()).unit(unit)
             .span(width).height(height).targets(targets)
             .with_transformation(models.DataTransformerConfig(
                 id_val="organize", options={"excludeByName": {"Time": True}, "indexByName": {},
                                             "renameByName": {"Value": "Count"}})))
    if links:
        panel = panel.data_links(links)
    if no_value is not None:
        panel = panel.no_value(no_value)
    return panel
