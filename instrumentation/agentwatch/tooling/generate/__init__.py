"""Generators of the committed artifacts (alert rules, Alertmanager routing, runbooks, Grafana dashboards and
their provisioning, collector configs, the generated parts of deploy/ and the Go components' names and price
table) from the telemetry contract and the threshold table.

    files = artifacts(thresholds.load())     # {relative path: text}
    write(out_dir, files)                      # what `agentwatch generate` does
    drift(out_dir, files)                      # what `agentwatch generate --check` reports

Output is deterministic (fixed order, no timestamps), so `--check` compares text.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from agentwatch.thresholds import Thresholds

# Directories whose matching files belong to the generators: a file there that no generator produces is stale.
ALERTS_OWNED = (("alerts/rules", "agentwatch-*.yaml"), ("alerts/runbooks", "*.md"), ("alerts/alertmanager", "*.yml"),
                ("alerts/alertmanager/templates", "*.tmpl"))
DASHBOARDS_OWNED = (("dashboards", "*.json"), ("dashboards/provisioning/dashboards", "*.yaml"),
                    ("dashboards/provisioning/datasources", "*.yaml"))
COLLECTOR_OWNED = (("collector", "*.yaml"),)
DEPLOY_OWNED = (("deploy/kubernetes/base/generated", "*.yaml"), ("deploy/kubernetes/base/generated/collector", "*.yaml"),
                ("deploy/kubernetes/base/generated/dashboards", "*.json"),
                ("deploy/kubernetes/base/generated/alertmanager", "*.tmpl"),
                ("deploy/kubernetes/components/remote-write", "gateway-*.yaml"))
# The Go components' registry (names, price table, parity data): see tooling/generate/golang.py.
GOLANG_OWNED = (("collector/internal/semconv", "*_gen.go"), ("collector/internal/prices", "*_gen.json"),
                ("collector/internal/prices/testdata", "*_gen.json"))
OWNED = ALERTS_OWNED + DASHBOARDS_OWNED + COLLECTOR_OWNED + DEPLOY_OWNED + GOLANG_OWNED
Owned = tuple[tuple[str, str], ...]


def _generators() -> list[Callable[[Thresholds], dict[str, str]]]:
    from agentwatch.tooling.generate import alerts, collector, dashboards, golang

    return [alerts.artifacts, dashboards.artifacts, collector.artifacts, golang.artifacts]


def artifacts(table: Thresholds) -> dict[str, str]:
    """Every generated file, by path relative to the output directory, in a stable order."""
    out: dict[str, str] = {}
    for generate in _generators():
        out.update(generate(table))
    from agentwatch.tooling.generate import deploy  # derived from the files above: copies and wrappers for kustomize

    out.update(deploy.artifacts(table, out))
    return dict(sorted(out.items()))


@dataclass(frozen=True)
class Drift:
    path: str
    problem: str  # "missing", "differs" or "stale"

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


def _stale(out_dir: Path, files: dict[str, str], owned: Owned = OWNED) -> list[str]:
    found = []
    for folder, pattern in owned:
        for path in sorted((out_dir / folder).glob(pattern)):
            rel = path.relative_to(out_dir).as_posix()
            if path.is_file() and rel not in files:
                found.append(rel)
    return found


def drift(out_dir: str | Path, files: dict[str, str], owned: Owned = OWNED) -> list[Drift]:
    """Generated files that are missing, differ from what the generators produce now, or are left over
    (in the `owned` directories: all generators' by default)."""
    out_dir = Path(out_dir)
    problems = []
    for rel, text in files.items():
        path = out_dir / rel
        if not path.is_file():
            problems.append(Drift(rel, "missing"))
        elif path.read_text(encoding="utf-8") != text:
            problems.append(Drift(rel, "differs"))
    problems.extend(Drift(rel, "stale") for rel in _stale(out_dir, files, owned))
    return problems


def write(out_dir: str | Path, files: dict[str, str], owned: Owned = OWNED) -> list[str]:
    """Writes every file whose content changed and removes stale generated files (in the `owned` directories:
    all generators' by default); returns what changed."""
    out_dir = Path(out_dir)
    changed = []
    for rel, text in files.items():
        path = out_dir / rel
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            changed.append(rel)
    for rel in _stale(out_dir, files, owned):
        (out_dir / rel).unlink()
        changed.append(f"{rel} (removed)")
    return changed
