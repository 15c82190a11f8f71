"""The threshold table, loaded once from the bundled YAML or the user's override.

Everything that depends on a threshold reads it from here: histogram bucket boundaries (every threshold is
a bucket boundary, so "p99 > 60 s" is exact), and, in later layers, alert rules, dashboards and checks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Iterable

import yaml

ENV_THRESHOLDS_FILE = "AGENTWATCH_THRESHOLDS_FILE"
SIGNALS = ("success_rate", "steps_per_run", "p99_latency", "tokens_per_run", "cost_per_run", "tool_error_rate")
_FIELDS = {"alert", "description", "comparison", "value", "unit", "severity"}
_SEVERITIES = {"critical", "warning", "info"}


class ThresholdsError(ValueError):
    """A malformed thresholds file: the message names the file, the signal and the problem."""


@dataclass(frozen=True)
class Threshold:
    signal: str
    alert: str
    description: str
    comparison: str  # "<" or ">"
    value: float
    unit: str
    severity: str

    def breached(self, measured: float) -> bool:
        return measured < self.value if self.comparison == "<" else measured > self.value


@dataclass(frozen=True)
class Thresholds:
    by_signal: dict[str, Threshold]

    def __getitem__(self, signal: str) -> Threshold:
        return self.by_signal[signal]

    def __iter__(self):
        return iter(self.by_signal[s] for s in SIGNALS)


def _read(path: str | os.PathLike[str] | None) -> tuple[str, Any]:
    if path is None:
        text = resources.files("agentwatch").joinpath("thresholds.yaml").read_text(encoding="utf-8")
        return "bundled thresholds.yaml", yaml.safe_load(text)
    try:
        return str(path), yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ThresholdsError(f"{path}: cannot read thresholds file: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ThresholdsError(f"{path}: not valid YAML: {exc}") from exc


def _parse(source: str, data: Any, base: dict[str, Threshold] | None) -> dict[str, Threshold]:
    if not isinstance(data, dict) or not isinstance(data.get("signals"), dict):
        raise ThresholdsError(f"{source}: expected a mapping with a 'signals' mapping")
    out = dict(base or {})
    for signal, raw in data["signals"].items():
        if signal not in SIGNALS:
            raise ThresholdsError(f"{source}: unknown signal {signal!r}; known: {', '.join(SIGNALS)}")
        if not isinstance(raw, dict):
            raise ThresholdsError(f"{source}: signal {signal!r} must be a mapping")
        unknown = set(raw) - _FIELDS
        if unknown:
            raise ThresholdsError(f"{source}: signal {signal!r} has unknown keys {sorted(unknown)}")
        merged = {**(out[signal].__dict__ if signal in out else {}), **raw, "signal": signal}
        missing = _FIELDS - set(merged)
        if missing:
            raise ThresholdsError(f"{source}: signal {signal!r} lacks {sorted(missing)}")
        value = merged["value"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ThresholdsError(f"{source}: signal {signal!r}: value must be a non-negative number, got {value!r}")
        if merged["comparison"] not in ("<", ">"):
            raise ThresholdsError(f"{source}: signal {signal!r}: comparison must be '<' or '>'")
        if merged["severity"] not in _SEVERITIES:
            raise ThresholdsError(f"{source}: signal {signal!r}: severity must be one of {sorted(_SEVERITIES)}")
        merged["value"] = float(value)
        out[signal] = Threshold(**merged)
    return out


def load(path: str | os.PathLike[str] | None = None) -> Thresholds:
    """The bundled table, with the override file (argument or AGENTWATCH_THRESHOLDS_FILE) on top."""
    bundled = _parse(*_read(None), None)
    override = path if path is not None else os.environ.get(ENV_THRESHOLDS_FILE) or None
    table = _parse(*_read(override), bundled) if override else bundled
    return Thresholds(table)


@lru_cache(maxsize=1)
def current() -> Thresholds:
    """The table for this process (read once)."""
    return load()


def with_boundaries(base: Iterable[float], *values: float) -> tuple[float, ...]:
    """Bucket boundaries: the base list plus each threshold value, sorted, without duplicates."""
    return tuple(sorted({float(b) for b in base} | {float(v) for v in values}))
