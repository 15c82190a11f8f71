"""Running dashboard panel queries the way Grafana would, against a real Prometheus.

Grafana's variables are substituted as Grafana does for the dashboards' default time range and the
provisioned datasource (timeInterval 15s): `$__interval` = max(range / 1000, the panel's min interval or 15s),
`$__rate_interval` = max(`$__interval` + 15s, 4 x 15s), `$__range` = the panel's relative time (today, this
month, 7d) or the dashboard's range; the query variables (`$job`, `$agent`, `$cluster`, ...) = the values
given (their all-value `.*` for "All"). Queries are instant queries (/api/v1/query with `time` = now).
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from agentwatch.tooling.generate import dashboards as gen
from agentwatch.thresholds import duration_seconds

from support.alerting import http_json

DATASOURCE_SCRAPE = duration_seconds(gen.PROMETHEUS_SCRAPE_INTERVAL)
MAX_DATA_POINTS = 1000


@dataclass
class Live:
    """A running Prometheus; `started` is the monotonic time its workload started."""

    url: str
    started: float

    def query(self, expr: str, at: float) -> dict[str, Any]:
        params = urllib.parse.urlencode({"query": expr, "time": f"{at:.3f}"})
        try:
            return http_json(f"{self.url}/api/v1/query?{params}", timeout=10)
        except urllib.error.HTTPError as exc:  # 400/422: the body says why
            return json.loads(exc.read() or b"{}") or {"status": "error", "error": str(exc)}


def _seconds_since(start: datetime, now: datetime) -> float:
    return max((now - start).total_seconds(), 60.0)


def panel_range(board: dict[str, Any], panel: dict[str, Any], now: float) -> float:
    """Seconds of the panel's time range: its relative time (now/d, now/M, 7d) or the dashboard's."""
    moment = datetime.fromtimestamp(now, timezone.utc)
    relative = panel.get("timeFrom")
    if relative == "now/d":
        return _seconds_since(moment.replace(hour=0, minute=0, second=0, microsecond=0), moment)
    if relative == "now/M":
        return _seconds_since(moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0), moment)
    if relative:
        return duration_seconds(relative)
    start = board["time"]["from"]
    assert start.startswith("now-"), start
    return duration_seconds(start.removeprefix("now-"))


def substitute(board: dict[str, Any], panel: dict[str, Any], expr: str, now: float,
               values: dict[str, str]) -> str:
    range_s = panel_range(board, panel, now)
    interval = max(range_s / MAX_DATA_POINTS, duration_seconds(panel["interval"]) if panel.get("interval")
                   else DATASOURCE_SCRAPE)
    rate_interval = max(interval + DATASOURCE_SCRAPE, 4 * DATASOURCE_SCRAPE)
    builtins = {"__rate_interval": f"{int(rate_interval)}s", "__interval": f"{int(interval)}s",
                "__range": f"{int(range_s)}s"}
    for name, value in {**builtins, **values}.items():
        expr = expr.replace("${%s}" % name, value)
        expr = re.sub(r"\$%s\b" % re.escape(name), lambda _m, v=value: v, expr)
    assert "$" not in expr, f"unsubstituted variable in {expr!r}"
    return expr


def all_values(board: dict[str, Any]) -> dict[str, str]:
    """Every query variable at "All" (its all-value)."""
    return {v["name"]: v["allValue"] for v in board["templating"]["list"] if v["type"] == "query"}


def boards(root: Path) -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text()) for p in sorted((root / "dashboards").glob("*.json"))}


def queries(root: Path) -> Iterator[tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]]]:
    """(file name, dashboard, panel, target) of every panel query of the dashboards under root/dashboards."""
    for name, board in boards(root).items():
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                yield name, board, panel, target


def has_data(answer: dict[str, Any]) -> bool:
    data = answer.get("data") or {}
    result = data.get("result")
    if data.get("resultType") == "scalar":
        return result is not None and result[1] != "NaN"
    return bool(result) and any(sample["value"][1] != "NaN" for sample in result)
