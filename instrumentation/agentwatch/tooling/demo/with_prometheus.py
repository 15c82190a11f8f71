"""`agentwatch demo --with-prometheus`: a local Prometheus + Alertmanager (`agentwatch.tooling.stack`, in
<out-dir>/prometheus) scrapes the agents every second and evaluates the generated rules with the demo's short
windows and `for` (`demo_thresholds()`), so the alerts the threshold table predicts fire during the demo; the
agents stay up until Prometheus has scraped their final values and the alerts had their time, then the firing
alerts are read back from Prometheus and Alertmanager."""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from agentwatch.thresholds import Thresholds, duration_seconds
from agentwatch.tooling import prometheus, stack, verdicts
from agentwatch.tooling.demo.processes import AgentProcess
from agentwatch.tooling.demo.records import read_records
from agentwatch.tooling.demo.results import DEMO_FOR, DEMO_WINDOW, DemoError, FiredAlert, PrometheusRun
from agentwatch.tooling.generate.promql import AGENT as AGENT_LABEL
from agentwatch.tooling.generate.promql import TOOL as TOOL_LABEL

DEMO_INTERVAL = "1s"  # scrape and evaluate every second
PROMETHEUS_DIR = "prometheus"  # under the out dir
NOWHERE = "http://127.0.0.1:9/"  # the discard port: the demo's receivers send nowhere
ALERT_SETTLE_SECONDS = 20.0  # at most this long after the final scrape for predicted alerts to fire


def demo_thresholds(table: Thresholds, window: str = DEMO_WINDOW, for_: str = DEMO_FOR,
                    secrets_dir: str | os.PathLike[str] | None = None) -> Thresholds:
    """The table with every signal's window and `for` shortened (values and severities unchanged), and quick
    Alertmanager grouping, so the demo's alerts fire while it runs. With `secrets_dir`, the receivers read
    their secrets from there (where there are none) and send to a closed local port: demo alerts never
    page anyone, whatever secrets the machine holds."""
    signals = {name: dataclasses.replace(t, window=window, for_=for_) for name, t in table.by_signal.items()}
    am = dataclasses.replace(table.alertmanager, group_wait="1s", group_interval="5s")
    if secrets_dir is not None:
        secrets = Path(secrets_dir)
        am = dataclasses.replace(am, pagerduty_routing_key_file=str(secrets / "pagerduty-routing-key"),
                                 slack_api_url_file=str(secrets / "slack-webhook-url"),
                                 pagerduty_url=NOWHERE + "pagerduty", deadman_url=NOWHERE + "deadman")
    return dataclasses.replace(table, by_signal=signals, alertmanager=am,
                               source=f"{table.source} + demo windows {window}, for {for_}")


def start_prometheus(out: Path, team: list[AgentProcess], table: Thresholds, console: Console) -> PrometheusRun:
    """A fresh local Prometheus + Alertmanager scraping the agents; skipped (one line) without the binaries."""
    state = out / PROMETHEUS_DIR
    prom = PrometheusRun(state_dir=str(state))
    try:
        for name in stack.COMPONENTS:
            stack.find_binary(name)
    except stack.BinaryMissing as exc:
        prom.skipped = str(exc)
        console.print(f"[yellow]--with-prometheus:[/] {exc}; continuing without Prometheus and Alertmanager",
                      highlight=False, soft_wrap=True)
        return prom
    try:
        stack.down(state)  # left running by an earlier --keep-prometheus: start afresh, without its data
        for data in ("prometheus-data", "alertmanager-data"):
            shutil.rmtree(state / data, ignore_errors=True)
        settings = stack.Settings(
            scrape_targets=tuple(f"{stack.HOST}:{a.port}" for a in team), scrape_interval=DEMO_INTERVAL,
            evaluation_interval=DEMO_INTERVAL, resend_delay=DEMO_INTERVAL)
        status, _ = stack.up(state, table=demo_thresholds(table, secrets_dir=state / "no-secrets"),
                             settings=settings)
    except stack.StackError as exc:
        raise DemoError(f"--with-prometheus: {exc}") from None
    prom.prometheus_url, prom.alertmanager_url = status.prometheus_url, status.alertmanager_url
    console.print(f"Prometheus {prom.prometheus_url} + Alertmanager {prom.alertmanager_url} scrape the agents every "
                  f"{DEMO_INTERVAL}, with the generated rules (windows {DEMO_WINDOW}, for {DEMO_FOR}) in {state}",
                  highlight=False, soft_wrap=True)
    return prom


def parse_time(text: str) -> float | None:
    """Seconds since the epoch of an RFC 3339 time with up to nanoseconds (Prometheus's lastScrape)."""
    if not isinstance(text, str) or not text or text.startswith("0001-"):
        return None
    head, _, rest = text.partition(".")
    if rest:  # fraction, then Z or an offset
        digits = "".join(c for c in rest if c.isdigit())
        zone = rest[len(digits):]
        text = f"{head}.{digits[:6].ljust(6, '0')}{zone}"
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _labels_key(labels: dict[str, Any]) -> tuple[str, str | None, str | None]:
    return str(labels.get("alertname")), labels.get(AGENT_LABEL), labels.get(TOOL_LABEL)


def await_alerts(prom: PrometheusRun, team: list[AgentProcess], table: Thresholds, console: Console) -> None:
    """With every agent done (and still serving its metrics): waits until Prometheus scraped each agent's final
    values, then until the alerts the threshold table predicts fire (or a deadline), and records the alerts."""
    assert prom.prometheus_url and prom.alertmanager_url
    interval = duration_seconds(DEMO_INTERVAL)
    deadline = time.monotonic() + 10 * interval + 10
    waiting = list(team)
    while waiting:
        try:
            last = {t.get("labels", {}).get("instance"): parse_time(t.get("lastScrape", ""))
                    for t in prometheus.targets(prom.prometheus_url) if t.get("health") == "up"}
        except prometheus.PrometheusError:
            last = {}
        waiting = [a for a in waiting if (last.get(f"{stack.HOST}:{a.port}") or 0) <= a.finished_wall]
        if not waiting:
            break
        if time.monotonic() > deadline:
            console.print(f"[yellow]Prometheus did not scrape the final values of "
                          f"{', '.join(a.service_name for a in waiting)} in time[/]", highlight=False)
            break
        time.sleep(0.2)

    report = verdicts.from_records({a.name: read_records(a.log_file) for a in team}, table)
    prom.predicted = sorted({(v.threshold.alert, v.agent) for v in report.breached})
    settled = time.monotonic() + 2 * interval  # two evaluations after the final scrape
    deadline = time.monotonic() + duration_seconds(DEMO_FOR) + ALERT_SETTLE_SECONDS
    prom_alerts: list[dict[str, Any]] = []
    am_alerts: list[dict[str, Any]] = []
    answered = False
    while True:
        try:
            prom_alerts = prometheus.alerts(prom.prometheus_url)
            am_alerts = prometheus.alertmanager_alerts(prom.alertmanager_url)
            answered = True
        except prometheus.PrometheusError:
            pass
        firing = {_labels_key(a.get("labels", {}))[:2] for a in prom_alerts if a.get("state") == "firing"}
        routed = {_labels_key(a.get("labels", {}))[:2] for a in am_alerts}
        pending = [a for a in prom_alerts if a.get("state") == "pending"]
        now = time.monotonic()
        if now >= settled and not pending and all(p in firing and p in routed for p in prom.predicted):
            break
        if now > deadline:
            break
        time.sleep(0.25)
    if not answered:
        console.print("[yellow]Prometheus or Alertmanager did not answer for the alerts[/]", highlight=False)
    receivers: dict[tuple[str, str | None, str | None], tuple[list[str], str | None]] = {}
    for a in am_alerts:
        names = sorted(r.get("name", "?") for r in a.get("receivers") or [])
        receivers[_labels_key(a.get("labels", {}))] = (names, (a.get("status") or {}).get("state"))
    fired = []
    for a in prom_alerts:
        labels = a.get("labels", {})
        key = _labels_key(labels)
        try:
            value: float | None = float(a.get("value"))
        except (TypeError, ValueError):
            value = None
        fired.append(FiredAlert(alert=key[0], state=str(a.get("state")), severity=str(labels.get("severity", "")),
                                agent=key[1], tool=key[2], receivers=receivers.get(key, ([], None))[0],
                                value=value if value is None or math.isfinite(value) else None))
    order = {"critical": 0, "warning": 1, "info": 2}
    fired.sort(key=lambda f: (f.state != "firing", order.get(f.severity, 3), f.alert, f.agent or "", f.tool or ""))
    prom.alerts = fired
    firing_now = {(f.alert, f.agent) for f in fired if f.state == "firing"}
    prom.missing = [p for p in prom.predicted if p not in firing_now]
