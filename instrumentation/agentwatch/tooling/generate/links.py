"""Where alerts and notifications link to: runbooks (thresholds.alerting.runbook_url) and Grafana dashboards.

The dashboard UIDs are fixed so links from alerts keep working across re-imports; the dashboard generator
must use the same ones.
"""

from __future__ import annotations

from urllib.parse import quote

from agentwatch.thresholds import Thresholds

DASHBOARD_UIDS = {
    "agents": "agentwatch-agents",  # Agent overview: the six threshold signals per agent (variable `agent`)
    "llm": "agentwatch-llm-calls",  # LLM calls by provider and model
    "tools": "agentwatch-tools",  # tool calls, error rate and latency per tool (variable `agent`)
    "cost": "agentwatch-cost",  # spend against the budget
}


def dashboard_url(table: Thresholds, dashboard: str, **variables: str) -> str:
    """`<grafana_url>/d/<uid>?var-agent=...`; variable values may be alert templates (left unescaped)."""
    url = f"{table.alerting.grafana_url.rstrip('/')}/d/{DASHBOARD_UIDS[dashboard]}"
    if variables:
        url += "?" + "&".join(f"var-{quote(k)}={v}" for k, v in sorted(variables.items()))
    return url
