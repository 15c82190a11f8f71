"""agentwatch / Tools: tool calls per agent and tool, the error rate against its threshold, latency and the
tools failing most."""

from __future__ import annotations

from typing import Any

from agentwatch import semconv as sc
from agentwatch.tooling.generate import promql as q
from agentwatch.tooling.generate.dashboards.agent_overview import signal_stat
from agentwatch.tooling.generate.dashboards.common import (Context, dashboard, generated, or_zero, sum_increase,
                                                           sum_rate)
from agentwatch.tooling.generate.dashboards.panels import (AGENT, ERROR, RATE, TOOL, quantile_targets, row,
                                                           table_panel, target, timeseries_panel, tool_links)


def build(ctx: Context) -> Any:
    tools, where = q.TOOL_CALLS, ctx.agent_where
    at = ctx.legend("{{%s}} · {{%s}}" % (AGENT, TOOL))
    threshold = ctx.table["tool_error_rate"]
    failed_by, tool_by = ctx.by(AGENT, TOOL, ERROR), ctx.by(AGENT, TOOL)
    items: list[Any] = [
        row("Tool calls"),
        signal_stat(ctx, "tool_error_rate").span(8).height(8),
        timeseries_panel("Tool calls per second by tool",
                         "Tool calls (execute_tool spans) per second, per agent and tool.",
                         "ops", [target(ctx.scope.tool_calls_rate(RATE, where), at)], width=16, links=tool_links()),
        timeseries_panel("Tool-call error rate by tool",
                         f"Share of the calls of each tool that failed, per agent. The dashed line is the "
                         f"tool-error-rate threshold ({threshold.display}); alert {threshold.alert} uses a "
                         f"{threshold.window} window.",
                         "percentunit", [target(ctx.scope.tool_error_ratio(RATE, where), at)],
                         threshold=threshold, links=tool_links(), max_val=1),
        timeseries_panel("Failed tool calls per second by error type",
                         "Failed tool calls per second, per agent, tool and error.type (the exception class); 0 "
                         "for a tool without failed calls.", "ops",
                         [target(or_zero(sum_rate(tools, failed_by, q.FAILED, where),
                                         sum_rate(tools, tool_by, where), tool_by),
                                 ctx.legend("{{%s}} · {{%s}} {{%s}}" % (AGENT, TOOL, ERROR)))],
                         links=tool_links(), no_value="No tool calls"),
        row("Latency"),
        timeseries_panel("Tool latency p95 by tool", "95th percentile of tool call duration, per agent and tool.",
                         "s", quantile_targets(sc.PROM_EXECUTE_TOOL_DURATION, where, ctx.by(AGENT, TOOL), (0.95,)),
                         links=tool_links()),
        timeseries_panel("Tool latency p50 / p95 / p99",
                         "Percentiles of tool call duration over the selected agents' tools. Exemplars link to "
                         "the call's trace where the metrics carry them.",
                         "s", quantile_targets(sc.PROM_EXECUTE_TOOL_DURATION, where)),
        row("Failing tools"),
        table_panel("Tools failing most in range",
                    "The ten agent / tool / error.type combinations with the most failed calls in the time range "
                    "(tools without failed calls fill the rest, at 0). Click a row for its failed calls' traces "
                    "and logs.",
                    [target("topk(10,\n" + or_zero(sum_increase(tools, failed_by, q.FAILED, where),
                                                    sum_increase(tools, tool_by, where), tool_by) + ")",
                            instant=True, table_format=True)],
                    links=tool_links(), no_value="No tool calls in range"),
    ]
    return dashboard(ctx, "tools", "agentwatch / Tools",
                     generated("Tool calls per agent and tool: calls, error rate against the threshold, latency "
                               "and the tools failing most."),
                     ("agent",), items)
