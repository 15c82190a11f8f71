"""Runbooks, `alerts/runbooks/<AlertName>.md`: what an alert means, where to look, what to do.

The prose lives in markdown templates shipped with the package (`templates/<signal or fleet key>.md`, shared
pieces in `templates/partials/`). A template has two kinds of tags:

    {{name}}        a value: a number from the threshold table, a telemetry name from semconv, or a PromQL
                    query built with promql (so it has the selector and labels of thresholds.yaml `queries`)
    {{> partial}}   the text of templates/partials/partial.md, rendered with the same values

A line holding only a tag that renders empty is dropped. An unknown tag is an error, so a template never
ships with a hole in it; the numbers and series therefore never disagree with the rule that links to it.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Callable

from agentwatch import semconv as sc
from agentwatch.tooling.generate import promql as q
from agentwatch.tooling.generate.alertmanager import CHAT, DEADMAN, NULL, PAGER
from agentwatch.tooling.generate.links import DASHBOARD_UIDS, dashboard_url
from agentwatch.thresholds import FLEET_ALERTS, SIGNALS, FleetAlert, Threshold, Thresholds, format_value

TEMPLATES = resources.files(__name__).joinpath("templates")
_TAG = re.compile(r"\{\{(>)?\s*([a-z][a-z0-9_-]*)\s*\}\}")
_ROUTE = {"critical": f"pages on-call (receiver `{PAGER}`)", "warning": f"posts to team chat (receiver `{CHAT}`)",
          "info": f"goes nowhere (receiver `{NULL}`)"}
_DASHBOARD_TITLES = {"agents": "Agent overview", "llm": "LLM calls", "tools": "Tools", "cost": "Cost"}
Values = dict[str, str]


class TemplateError(ValueError):
    """A runbook template names a value or partial that does not exist."""


def _template(name: str) -> str:
    return TEMPLATES.joinpath(f"{name}.md").read_text(encoding="utf-8")


def fill(text: str, values: Values, where: str) -> str:
    """The template text with its tags replaced (see the module docstring)."""

    def one(match: re.Match[str]) -> str:
        partial, key = match.groups()
        if partial:
            try:
                body = _template(f"partials/{key}")
            except FileNotFoundError:
                raise TemplateError(f"{where}: no partial templates/partials/{key}.md") from None
            return fill(body, values, f"partials/{key}.md").rstrip("\n")
        if key not in values:
            raise TemplateError(f"{where}: unknown value {{{{{key}}}}}; known: {', '.join(sorted(values))}")
        return values[key]

    out = []
    for line in text.splitlines(keepends=True):
        rendered = _TAG.sub(one, line)
        if _TAG.fullmatch(line.strip()) and not rendered.strip():
            continue
        out.append(rendered)
    return "".join(out)


# --- the values every template may use ------------------------------------------------------------------
def _code(names: list[str]) -> str:
    return ", ".join(f"`{n}`" for n in names)


def _sum_rate(by: str, series: str, window: str, *matchers: str) -> str:
    return f"sum by ({by}) (rate({q.selector(series, *matchers)}[{window}]))"


def _common(table: Thresholds) -> Values:
    """Telemetry names, alert names and scope-dependent phrases shared by all runbooks."""
    scope = q.Scope.of(table)
    values = {
        "agent_label": q.AGENT, "tool_label": q.TOOL, "provider_label": q.PROVIDER,
        "agent_attr": sc.GEN_AI_AGENT_NAME, "tool_name_attr": sc.GEN_AI_TOOL_NAME, "error_attr": sc.ERROR_TYPE,
        "response_model_attr": sc.GEN_AI_RESPONSE_MODEL, "inference_calls_attr": sc.GEN_AI_INVOKE_AGENT_INFERENCE_CALLS_ATTR,
        "input_tokens_attr": sc.GEN_AI_USAGE_INPUT_TOKENS, "cost_attr": sc.AGENTWATCH_COST_USD,
        "failure_reason_attr": sc.AGENTWATCH_RUN_FAILURE_REASON, "run_event": sc.LOG_EVENT_AGENT_RUN,
        "tool_event": sc.LOG_EVENT_TOOL_CALL, "runs_series": q.RUNS, "run_duration_series": sc.PROM_INVOKE_AGENT_DURATION,
        "llm_cost_series": sc.PROM_LLM_COST, "unpriced_series": sc.PROM_PRICING_UNPRICED_CALLS, "deadman": DEADMAN,
        "silence_labels": _code([*scope.labels, q.AGENT]),
    }
    values.update({f"alert_{key}": table[key].alert for key in SIGNALS})
    values.update({f"alert_{key}": table.fleet[key].alert for key in FLEET_ALERTS})
    return values


def _narrow(table: Thresholds) -> list[str]:
    """Matchers that narrow a diagnosis query to the alert's scope: the selector and one placeholder value per
    aggregation label (`cluster="<cluster>"`), like the `<agent>` the reader fills in."""
    scope = q.Scope.of(table)
    return [scope.selector, *(f'{label}="<{label}>"' for label in scope.labels)]


def _alert_values(table: Thresholds, alert: Threshold | FleetAlert, key: str, labels: list[str],
                  dashboard: str | None, silence: bool) -> Values:
    values = {
        "alert": alert.alert, "summary": alert.summary, "severity": alert.severity,
        "routing": f"{alert.severity}: {_ROUTE[alert.severity]}", "for": alert.for_ or "",
        "labels": _code(labels + ["severity"]), "source": key, "dashboard_link": "",
        "silence_hint": "",
    }
    if dashboard:
        values["dashboard_link"] = (f"[{_DASHBOARD_TITLES[dashboard]}]({dashboard_url(table, dashboard)}) "
                                    f"(uid `{DASHBOARD_UIDS[dashboard]}`)")
    if silence:
        values["silence_hint"] = (" To silence one agent during planned work, add an Alertmanager silence on "
                                  f"{_common(table)['silence_labels']} rather than changing the threshold.")
    return values


# --- per alert ------------------------------------------------------------------------------------------
def _signal_queries(table: Thresholds, signal: str, window: str) -> Values:
    narrow = _narrow(table)
    agent = f'{q.AGENT}="<agent>"'
    if signal == "success_rate":
        return {"failures_by_error": _sum_rate(q.ERROR, q.RUNS, window, *narrow, agent, q.FAILED)}
    if signal == "steps_per_run":
        return {"steps_p99": q.quantile(0.99, sc.PROM_INVOKE_AGENT_INFERENCE_CALLS, window, "",
                                        q.labels(*narrow, agent))}
    if signal == "p99_latency":
        return {"provider_latency_p99": q.quantile(0.99, sc.PROM_CLIENT_OPERATION_DURATION, window, q.PROVIDER,
                                                   q.labels(*narrow)),
                "tool_latency_p99": q.quantile(0.99, sc.PROM_EXECUTE_TOOL_DURATION, window, q.TOOL,
                                               q.labels(*narrow, agent))}
    if signal == "tokens_per_run":
        return {"tokens_by_type": _sum_rate(q.prom_label(sc.GEN_AI_TOKEN_TYPE), sc.PROM_CLIENT_TOKEN_USAGE + "_sum",
                                            window, *narrow)}
    if signal == "cost_per_run":
        return {"cost_by_model": _sum_rate(q.prom_label(sc.GEN_AI_RESPONSE_MODEL), sc.PROM_LLM_COST, window,
                                           *narrow)}
    return {"tool_failures_by_error": _sum_rate(q.ERROR, q.TOOL_CALLS, window, *narrow, agent,
                                                f'{q.TOOL}="<tool>"', q.FAILED)}


def signal_values(table: Thresholds, signal: str) -> Values:
    t = table[signal]
    series, guard, labels = q.SIGNAL_SERIES[signal]
    dashboard = "tools" if signal == "tool_error_rate" else "agents"
    label_list = [*table.queries.aggregation_labels, *(x.strip() for x in labels.split(","))]
    return {
        **_alert_values(table, t, f"signals.{signal}", label_list, dashboard, silence=True),
        "threshold": t.display, "window": t.window, "word": "below" if t.comparison == "<" else "above",
        "signal_description": t.description.lower(), "recorded": series(t.window), "guard": guard(t.window),
        **_signal_queries(table, signal, t.window),
    }


def telemetry_absent_values(table: Thresholds) -> Values:
    a = table.fleet["telemetry_absent"]
    window = a.window or "1d"
    return {**_alert_values(table, a, "fleet.telemetry_absent", [*table.queries.aggregation_labels, q.AGENT],
                            "agents", silence=True),
            "window": window, "absent_expr": q.Scope.of(table).telemetry_absent(window).strip()}


def provider_errors_values(table: Thresholds) -> Values:
    a = table.fleet["provider_errors"]
    window = a.window or "5m"
    return {**_alert_values(table, a, "fleet.provider_errors", [*table.queries.aggregation_labels, q.PROVIDER],
                            "llm", silence=False),
            "threshold": format_value(a.value if a.value is not None else 0.95, "ratio"), "window": window,
            "provider_failures_by_error": _sum_rate(q.ERROR, q.LLM_CALLS, window, *_narrow(table),
                                                    f'{q.PROVIDER}="<provider>"', q.FAILED)}


def daily_spend_values(table: Thresholds) -> Values:
    a = table.fleet["daily_spend"]
    scope = q.Scope.of(table)
    model = q.prom_label(sc.GEN_AI_RESPONSE_MODEL)
    values = _alert_values(table, a, "fleet.daily_spend", [], "cost", silence=False)
    values.update({
        "labels": "`severity` (fleet-wide)",
        "budget": format_value(a.budget_usd or 0, "USD"), "warning_at": format_value(a.warning_at or 0, "ratio"),
        "critical_at": format_value(a.critical_at or 0, "ratio"), "route_warning": _ROUTE["warning"],
        "route_critical": _ROUTE["critical"],
        "spend_by_model": (f"sort_desc(sum by ({scope.by(q.PROVIDER, model)}) "
                           f"(increase({scope.select(sc.PROM_LLM_COST)}[{q.SPEND_WINDOW}])))"),
        "spend_by_agent": (f"sort_desc(sum by ({scope.by(q.AGENT)}) "
                           f"(increase({scope.select(sc.PROM_AGENT_COST + '_sum')}[{q.SPEND_WINDOW}])))"),
    })
    return values


def watchdog_values(table: Thresholds) -> Values:
    a = table.fleet["watchdog"]
    return {**_alert_values(table, a, "fleet.watchdog", [], None, silence=False),
            "deadman_repeat_interval": table.alertmanager.deadman_repeat_interval}


_FLEET_VALUES: dict[str, Callable[[Thresholds], Values]] = {
    "telemetry_absent": telemetry_absent_values, "provider_errors": provider_errors_values,
    "daily_spend": daily_spend_values, "watchdog": watchdog_values,
}


def render(table: Thresholds, alert_name: str) -> str:
    """The runbook of an alert (by its configured name)."""
    for signal in SIGNALS:
        if table[signal].alert == alert_name:
            return fill(_template(signal), {**_common(table), **signal_values(table, signal)}, f"{signal}.md")
    for key, values in _FLEET_VALUES.items():
        if table.fleet[key].alert == alert_name:
            return fill(_template(key), {**_common(table), **values(table)}, f"{key}.md")
    raise KeyError(alert_name)
