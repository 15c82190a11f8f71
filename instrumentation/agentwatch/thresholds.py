"""The threshold table, loaded once from the bundled YAML or the user's override.

Everything that depends on a threshold reads it from here: histogram bucket boundaries (every threshold is
a bucket boundary, so "p99 > 60 s" is exact), alert rules and their annotations, Alertmanager routing,
dashboards and checks.

The file has five sections (see thresholds.yaml): `signals` (the six per-agent thresholds), `fleet` (the
alerts a fleet needs besides them: telemetry absent, LLM provider failing, daily spend against a budget,
Watchdog), `queries` (what every generated query selects and keeps apart, like a monitoring mixin's selector
and cluster-label settings), `alerting` (runbook and dashboard links) and `alertmanager` (routing timings,
receivers, secret files). An override file (argument or AGENTWATCH_THRESHOLDS_FILE) has the same shape; every
key it leaves out keeps its bundled value.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from agentwatch import config
from agentwatch.config import ENV_THRESHOLDS_FILE  # noqa: F401 - the variable's name, for callers

if TYPE_CHECKING:
    import yaml

from agentwatch import semconv as sc

SIGNALS = ("success_rate", "steps_per_run", "p99_latency", "tokens_per_run", "cost_per_run", "tool_error_rate")
FLEET_ALERTS = ("telemetry_absent", "provider_errors", "daily_spend", "watchdog")
SEVERITIES = ("critical", "warning", "info")
_SEVERITIES = set(SEVERITIES)

_DURATION = re.compile(r"^(?:\d+(?:ms|s|m|h|d|w|y))+$")
_DURATION_PART = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_ALERT_NAME = re.compile(r"^[A-Z][A-Za-z0-9]*$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_MATCHER = re.compile(r"""\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')\s*""")
# Labels (and dashboard variables) agentwatch's queries already use: an aggregation label cannot be one of them.
_OWN_LABELS = {re.sub(r"[^a-zA-Z0-9_]", "_", a) for a in (sc.GEN_AI_AGENT_NAME, sc.GEN_AI_TOOL_NAME,
                                                          sc.GEN_AI_PROVIDER_NAME, sc.GEN_AI_REQUEST_MODEL,
                                                          sc.GEN_AI_TOKEN_TYPE, sc.ERROR_TYPE)}
_RESERVED_LABELS = _OWN_LABELS | {"__name__", "le", "alertname", "alertstate", "severity", "datasource", "traces",
                                  "logs", "agent", "model"}


class ThresholdsError(ValueError):
    """A malformed thresholds file: the message names the file, the entry and the problem."""


def duration_seconds(text: str) -> float:
    """Seconds in a Prometheus duration such as "90s", "1h30m" or "1d"."""
    if not isinstance(text, str) or not _DURATION.match(text):
        raise ValueError(f"not a Prometheus duration: {text!r}")
    return sum(int(n) * _DURATION_UNITS[u] for n, u in _DURATION_PART.findall(text))


def _unit_word(unit: str) -> str:
    return unit.strip("{}").replace("_", " ") + "s"


def format_value(value: float, unit: str) -> str:
    """A threshold for people: 0.9 ratio -> "90%", 60 s -> "60s", 1 USD -> "$1", 15 {inference_call}s."""
    if unit == "ratio":
        return f"{value * 100:g}%"
    if unit == "s":
        return f"{value:g}s"
    if unit == "USD":
        return f"${value:g}"
    return f"{value:g} {_unit_word(unit)}"


@dataclass(frozen=True)
class Threshold:
    """One row of the user's table, with everything its alert needs."""

    signal: str
    alert: str
    description: str  # what the signal measures, plain text
    comparison: str  # "<" or ">"
    value: float
    unit: str
    severity: str
    window: str = "15m"  # rate/ratio window of the alert's recording rule
    for_: str = "5m"  # YAML key `for`: how long the condition holds before the alert fires
    summary: str = ""  # alert summary: plain text, no templates, ends with a period
    description_template: str = ""  # alert description: Go template + {threshold} {window} {for} {alert}
    runbook: str | None = None  # runbook URL; default: alerting.runbook_url with {alert}

    def breached(self, measured: float) -> bool:
        return measured < self.value if self.comparison == "<" else measured > self.value

    @property
    def display(self) -> str:
        return format_value(self.value, self.unit)


@dataclass(frozen=True)
class FleetAlert:
    """An alert about the fleet rather than one threshold signal; which fields apply depends on `key`."""

    key: str
    alert: str
    severity: str = "warning"  # daily_spend has two: warning at `warning_at`, critical at `critical_at`
    window: str | None = None
    for_: str = "0s"
    summary: str = ""
    description_template: str = ""
    runbook: str | None = None
    comparison: str | None = None  # provider_errors
    value: float | None = None  # provider_errors: error ratio
    budget_usd: float | None = None  # daily_spend: the budget per rolling 24 h; 0 or null turns the alert off
    warning_at: float | None = None  # daily_spend: fraction of the budget
    critical_at: float | None = None


@dataclass(frozen=True)
class QuerySettings:
    """What every generated query selects and keeps apart: the alert and recording rules, the dashboards and
    `agentwatch check` (a monitoring mixin's `*Selector` and `clusterLabel` settings)."""

    selector: str = ""  # label matchers added to every series selector, e.g. 'namespace="prod"'
    aggregation_labels: tuple[str, ...] = ()  # kept by every aggregation besides the agent, e.g. ("cluster",)


@dataclass(frozen=True)
class AlertingSettings:
    """Links every alert carries."""

    runbook_url: str = "https://github.com/agentwatch/agentwatch/blob/main/alerts/runbooks/{alert}.md"
    grafana_url: str = "http://grafana.example.com"


@dataclass(frozen=True)
class AlertmanagerSettings:
    """Routing timings, receivers and where their secrets are read from (never the secrets themselves)."""

    group_wait: str = "30s"
    group_interval: str = "5m"
    repeat_interval: str = "4h"
    critical_repeat_interval: str = "1h"
    pagerduty_routing_key_file: str = "/etc/alertmanager/secrets/pagerduty-routing-key"
    pagerduty_url: str = ""  # empty: PagerDuty's Events API v2 (Alertmanager's default)
    slack_api_url_file: str = "/etc/alertmanager/secrets/slack-webhook-url"
    slack_channel: str = "#agent-alerts"
    deadman_url: str = "https://deadmans-switch.invalid/ping/agentwatch"
    deadman_repeat_interval: str = "5m"


@dataclass(frozen=True)
class Thresholds:
    by_signal: dict[str, Threshold]
    fleet: dict[str, FleetAlert] = field(default_factory=dict)
    alerting: AlertingSettings = AlertingSettings()
    alertmanager: AlertmanagerSettings = AlertmanagerSettings()
    source: str = "bundled thresholds.yaml"
    queries: QuerySettings = QuerySettings()  # last: the fields before it keep their positions

    def __getitem__(self, signal: str) -> Threshold:
        return self.by_signal[signal]

    def __iter__(self):
        return iter(self.by_signal[s] for s in SIGNALS)

    def runbook_url(self, alert: Threshold | FleetAlert) -> str:
        return alert.runbook or self.alerting.runbook_url.replace("{alert}", alert.alert)


def _read(path: str | os.PathLike[str] | None) -> tuple[str, Any]:
    import yaml  # here, not at import: an agent reads the table once, on its first run

    if path is None:
        text = resources.files("agentwatch").joinpath("thresholds.yaml").read_text(encoding="utf-8")
        return "bundled thresholds.yaml", yaml.safe_load(text)
    try:
        return str(path), yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ThresholdsError(f"{path}: cannot read thresholds file: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ThresholdsError(f"{path}: not valid YAML: {_yaml_problem(exc)}") from exc


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """A YAML error in one line: what is wrong and where (PyYAML's own text spans several lines)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or getattr(exc, "context", None)
    if problem and mark is not None:
        return f"{problem} (line {mark.line + 1}, column {mark.column + 1})"
    return " ".join(str(exc).split())


_SIGNAL_REQUIRED = {"alert", "description", "comparison", "value", "unit", "severity", "window", "for",
                    "summary", "description_template"}
_SIGNAL_FIELDS = _SIGNAL_REQUIRED | {"runbook"}
_FLEET_FIELDS = {"alert", "severity", "window", "for", "summary", "description_template", "runbook",
                 "comparison", "value", "budget_usd", "warning_at", "critical_at"}
_FLEET_ALLOWED = {
    "telemetry_absent": _FLEET_FIELDS - {"comparison", "value", "budget_usd", "warning_at", "critical_at"},
    "provider_errors": _FLEET_FIELDS - {"budget_usd", "warning_at", "critical_at"},
    "daily_spend": _FLEET_FIELDS - {"severity", "window", "comparison", "value"},
    "watchdog": {"alert", "severity", "summary", "description_template", "runbook"},
}
_FLEET_REQUIRED = {
    "telemetry_absent": {"alert", "severity", "window", "for", "summary", "description_template"},
    "provider_errors": {"alert", "severity", "window", "for", "summary", "description_template", "comparison",
                        "value"},
    "daily_spend": {"alert", "for", "summary", "description_template", "warning_at", "critical_at"},
    "watchdog": {"alert", "severity", "summary", "description_template"},
}


def _check_common(where: str, merged: dict[str, Any]) -> None:
    """Checks the fields signals and fleet alerts share, in place (YAML `for` becomes `for_`)."""
    if "alert" in merged and not (isinstance(merged["alert"], str) and _ALERT_NAME.match(merged["alert"])):
        raise ThresholdsError(f"{where}: alert must be a CamelCase name, got {merged['alert']!r}")
    if "severity" in merged and merged["severity"] not in _SEVERITIES:
        raise ThresholdsError(f"{where}: severity must be one of {sorted(_SEVERITIES)}")
    for key in ("window", "for"):
        if merged.get(key) is not None:
            try:
                duration_seconds(merged[key])
            except ValueError:
                raise ThresholdsError(f"{where}: {key} must be a Prometheus duration like 5m or 1h, "
                                      f"got {merged[key]!r}") from None
    if "for" in merged:
        merged["for_"] = merged.pop("for")
    for key in ("summary", "description_template", "description", "unit", "runbook"):
        if merged.get(key) is not None and not isinstance(merged[key], str):
            raise ThresholdsError(f"{where}: {key} must be a string")
    summary = merged.get("summary")
    if summary and "{{" in summary:
        raise ThresholdsError(f"{where}: summary must be plain text without templates")
    if merged.get("comparison") is not None and merged["comparison"] not in ("<", ">"):
        raise ThresholdsError(f"{where}: comparison must be '<' or '>'")


def _number(where: str, key: str, value: Any, allow_none: bool = False) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ThresholdsError(f"{where}: {key} must be a non-negative number, got {value!r}")
    return float(value)


def _entries(source: str, data: Any, section: str) -> dict[str, Any]:
    raw = data.get(section)
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ThresholdsError(f"{source}: {section!r} must be a mapping")
    return raw


def _yaml_view(obj: Any) -> dict[str, Any]:
    out = {f.name: getattr(obj, f.name) for f in fields(obj)}
    if "for_" in out:
        out["for"] = out.pop("for_")
    return out


def _parse_signals(source: str, data: Any, base: dict[str, Threshold] | None) -> dict[str, Threshold]:
    if base is None and not isinstance(data.get("signals"), dict):
        raise ThresholdsError(f"{source}: expected a mapping with a 'signals' mapping")
    out = dict(base or {})
    for signal, raw in _entries(source, data, "signals").items():
        where = f"{source}: signal {signal!r}"
        if signal not in SIGNALS:
            raise ThresholdsError(f"{source}: unknown signal {signal!r}; known: {', '.join(SIGNALS)}")
        if not isinstance(raw, dict):
            raise ThresholdsError(f"{where} must be a mapping")
        unknown = set(raw) - _SIGNAL_FIELDS
        if unknown:
            raise ThresholdsError(f"{where} has unknown keys {sorted(unknown)}")
        merged = {**(_yaml_view(out[signal]) if signal in out else {}), **raw}
        merged.pop("signal", None)
        missing = _SIGNAL_REQUIRED - set(merged)
        if missing:
            raise ThresholdsError(f"{where} lacks {sorted(missing)}")
        value = merged["value"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ThresholdsError(f"{where}: value must be a non-negative number, got {value!r}")
        _check_common(where, merged)
        merged["value"] = float(value)
        out[signal] = Threshold(signal=signal, **merged)
    return out


def _parse_fleet(source: str, data: Any, base: dict[str, FleetAlert] | None) -> dict[str, FleetAlert]:
    out = dict(base or {})
    for key, raw in _entries(source, data, "fleet").items():
        where = f"{source}: fleet alert {key!r}"
        if key not in FLEET_ALERTS:
            raise ThresholdsError(f"{source}: unknown fleet alert {key!r}; known: {', '.join(FLEET_ALERTS)}")
        if not isinstance(raw, dict):
            raise ThresholdsError(f"{where} must be a mapping")
        unknown = set(raw) - _FLEET_ALLOWED[key]
        if unknown:
            raise ThresholdsError(f"{where} has unknown keys {sorted(unknown)}")
        merged = {**(_yaml_view(out[key]) if key in out else {}), **raw}
        merged.pop("key", None)
        missing = {k for k in _FLEET_REQUIRED[key] if merged.get(k) is None}
        if missing:
            raise ThresholdsError(f"{where} lacks {sorted(missing)}")
        _check_common(where, merged)
        for name in ("value", "warning_at", "critical_at"):
            merged[name] = _number(where, name, merged.get(name), allow_none=True)
        merged["budget_usd"] = _number(where, "budget_usd", merged.get("budget_usd"), allow_none=True)
        if key == "daily_spend" and not merged["warning_at"] < merged["critical_at"]:  # type: ignore[operator]
            raise ThresholdsError(f"{where}: warning_at must be below critical_at")
        out[key] = FleetAlert(key=key, **merged)
    return out


def _parse_settings(source: str, data: Any, section: str, cls: type, base: Any) -> Any:
    raw = _entries(source, data, section)
    known = {f.name for f in fields(cls)}
    unknown = set(raw) - known
    if unknown:
        raise ThresholdsError(f"{source}: {section} has unknown keys {sorted(unknown)}; known: {sorted(known)}")
    merged = {**_yaml_view(base if base is not None else cls()), **raw}
    for key, value in merged.items():
        if value is None:
            value = merged[key] = ""
        if not isinstance(value, str):
            raise ThresholdsError(f"{source}: {section}.{key} must be a string")
        if key.endswith(("_wait", "_interval")):
            try:
                duration_seconds(value)
            except ValueError:
                raise ThresholdsError(f"{source}: {section}.{key} must be a Prometheus duration, "
                                      f"got {value!r}") from None
    return cls(**merged)


def normalize_selector(text: str) -> str:
    """Label matchers as one canonical string (`a="x", b=~"y.*"`); ValueError when it is not a matcher list.
    Braces around the list are allowed and dropped."""
    body = text.strip()
    if body.startswith("{") and body.endswith("}"):
        body = body[1:-1]
    matchers, position = [], 0
    while body[position:].strip():
        match = _MATCHER.match(body, position)
        if not match:
            raise ValueError(f"not a list of label matchers like 'namespace=\"prod\", cluster=~\"eu-.*\"': "
                             f"{text!r}")
        name, op, value = match.groups()
        if name == "__name__":
            raise ValueError("the selector cannot match on __name__ (every query names its own series)")
        matchers.append(f"{name}{op}{value}")
        position = match.end()
        if position < len(body):
            if body[position] != ",":
                raise ValueError(f"expected a comma after {match.group().strip()!r} in {text!r}")
            position += 1
    return ", ".join(matchers)


def _parse_queries(source: str, data: Any, base: QuerySettings | None) -> QuerySettings:
    raw = _entries(source, data, "queries")
    known = {f.name for f in fields(QuerySettings)}
    unknown = set(raw) - known
    if unknown:
        raise ThresholdsError(f"{source}: queries has unknown keys {sorted(unknown)}; known: {sorted(known)}")
    base = base or QuerySettings()
    selector = raw.get("selector", base.selector)
    if selector is None:
        selector = ""
    if not isinstance(selector, str):
        raise ThresholdsError(f"{source}: queries.selector must be a string of label matchers, e.g. "
                              "'namespace=\"prod\"'")
    try:
        selector = normalize_selector(selector)
    except ValueError as exc:
        raise ThresholdsError(f"{source}: queries.selector: {exc}") from None
    labels = raw.get("aggregation_labels", base.aggregation_labels)
    if labels is None:
        labels = ()
    if not isinstance(labels, (list, tuple)) or not all(isinstance(x, str) for x in labels):
        raise ThresholdsError(f"{source}: queries.aggregation_labels must be a list of label names, e.g. [cluster]")
    for label in labels:
        if not _LABEL_NAME.match(label):
            raise ThresholdsError(f"{source}: queries.aggregation_labels: {label!r} is not a Prometheus label name")
        if label in _RESERVED_LABELS or label.startswith("__"):
            raise ThresholdsError(f"{source}: queries.aggregation_labels: {label!r} is a label or dashboard "
                                  "variable agentwatch's queries already use")
    if len(set(labels)) != len(labels):
        raise ThresholdsError(f"{source}: queries.aggregation_labels lists a label twice: {list(labels)}")
    return QuerySettings(selector=selector, aggregation_labels=tuple(labels))


def _parse(source: str, data: Any, base: Thresholds | None) -> Thresholds:
    if not isinstance(data, dict):
        raise ThresholdsError(f"{source}: expected a mapping with a 'signals' mapping")
    unknown = set(data) - {"signals", "fleet", "queries", "alerting", "alertmanager"}
    if unknown:
        raise ThresholdsError(f"{source}: unknown sections {sorted(unknown)}; "
                              "known: signals, fleet, queries, alerting, alertmanager")
    return Thresholds(
        by_signal=_parse_signals(source, data, base.by_signal if base else None),
        fleet=_parse_fleet(source, data, base.fleet if base else None),
        queries=_parse_queries(source, data, base.queries if base else None),
        alerting=_parse_settings(source, data, "alerting", AlertingSettings, base.alerting if base else None),
        alertmanager=_parse_settings(source, data, "alertmanager", AlertmanagerSettings,
                                     base.alertmanager if base else None),
        source=source if base is None else f"{base.source} + {source}",
    )


def load(path: str | os.PathLike[str] | None = None) -> Thresholds:
    """The bundled table, with the override file (argument or AGENTWATCH_THRESHOLDS_FILE) on top."""
    bundled = _parse(*_read(None), None)
    missing = [k for k in FLEET_ALERTS if k not in bundled.fleet]
    if missing:
        raise ThresholdsError(f"bundled thresholds.yaml lacks fleet alerts {missing}")
    override = path if path is not None else config.thresholds_file()
    return _parse(*_read(override), bundled) if override else bundled


@lru_cache(maxsize=1)
def current() -> Thresholds:
    """The table for this process (read once)."""
    return load()


def with_boundaries(base: Iterable[float], *values: float) -> tuple[float, ...]:
    """Bucket boundaries: the base list plus each threshold value, sorted, without duplicates."""
    return tuple(sorted({float(b) for b in base} | {float(v) for v in values}))
