"""Grafana dashboards as code (grafana-foundation-sdk), and the files that provision them and their datasources.

    artifacts(thresholds.load())  ->  {"dashboards/agent-overview.json": "...", "dashboards/provisioning/...": ...}

One module per dashboard, as kubernetes-mixin keeps one file per dashboard, with the UIDs alert links use
(links.DASHBOARD_UIDS): agent_overview (Agent overview), llm_calls (LLM calls), tools (Tools), cost (Cost).
They build on `panels` (the panel builders and data links they share) and `common` (the query scope of
thresholds.yaml `queries`, the chained template variables and the dashboard frame); `provisioning` writes the
Grafana provisioning examples.

Every series and label name comes from semconv (through promql); every threshold from the threshold table. The
six threshold stat panels run the alerts' own queries (promql.Scope.signal_query) over the alerts' windows, so
a stat panel shows exactly the number its alert compares, coloured at the alert's threshold. Everything else
follows Grafana's conventions (grafana/dashboard-linter): one `datasource` variable that every panel uses,
`$__rate_interval` in every rate, counters only inside rate()/increase(), a unit and a description on every
panel. Panels link to the traces (Tempo, by TraceQL; exemplars go through the Prometheus datasource's
exemplar settings, to Tempo or Jaeger) and to the JSON logs (Elasticsearch) of failing runs, tools and calls.

Output is deterministic (sorted keys, fixed panel ids), so `agentwatch generate --check` compares text.
"""

from __future__ import annotations

import json
from typing import Any, Callable

from agentwatch.tooling.generate.dashboards import agent_overview, cost, llm_calls, tools
from agentwatch.tooling.generate.dashboards.agent_overview import SIGNAL_TITLES
from agentwatch.tooling.generate.dashboards.common import Context
from agentwatch.tooling.generate.dashboards.panels import (AGENT, MODEL, PROVIDER, SDK_HINT, SDK_MISSING,
                                                           SEVERITY_COLORS, TOOL, UNITS, require_sdk)
from agentwatch.tooling.generate.dashboards.provisioning import (DASHBOARDS_DIR, DATASOURCE_UIDS,
                                                                 PROMETHEUS_SCRAPE_INTERVAL, PROVISIONING_DIR,
                                                                 provisioning)
from agentwatch.thresholds import Thresholds

__all__ = ["AGENT", "BUILDERS", "DASHBOARDS_DIR", "DATASOURCE_UIDS", "FILES", "MODEL", "PROMETHEUS_SCRAPE_INTERVAL",
           "PROVIDER", "PROVISIONING_DIR", "SDK_HINT", "SDK_MISSING", "SEVERITY_COLORS", "SIGNAL_TITLES", "TOOL", "UNITS",
           "artifacts", "signal_expr", "to_json"]

FILES = {"agents": "agent-overview.json", "llm": "llm-calls.json", "tools": "tools.json", "cost": "cost.json"}
BUILDERS: dict[str, Callable[[Context], Any]] = {
    "agents": agent_overview.build, "llm": llm_calls.build, "tools": tools.build, "cost": cost.build,
}


def signal_expr(table: Thresholds, signal: str) -> str:
    """The query of a threshold stat panel (for checks): the alert's expression narrowed by the variables."""
    return agent_overview.signal_expr(Context.of(table), signal)


def to_json(board: Any) -> str:
    """Deterministic JSON of a dashboard model (or a plain dict)."""
    from grafana_foundation_sdk.cog.encoder import JSONEncoder

    return json.dumps(board, cls=JSONEncoder, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def artifacts(table: Thresholds) -> dict[str, str]:
    """Every file this generator owns, by path relative to the output directory."""
    require_sdk()
    ctx = Context.of(table)
    out = {f"{DASHBOARDS_DIR}/{FILES[key]}": to_json(build(ctx)) for key, build in BUILDERS.items()}
    out.update(provisioning(table))
    return out
