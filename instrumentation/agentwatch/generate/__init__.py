"""Generators of the committed artifacts (alert rules, Alertmanager routing, runbooks; later dashboards and
collector configs) from the telemetry contract and the threshold table.

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
OWNED = (("alerts/rules", "agentwatch-*.yaml"), ("alerts/runbooks", "*.md"), ("alerts/alertmanager", "*.yml"),
         ("alerts/alertmanager/templates", "*.tmpl"))


def _generators() -> list[Callable[[Thresholds], dict[str, str]]]:
    from agentwatch.generate import alerts

    return [alerts.artifacts]


def artifacts(table: Thresholds) -> dict[str, str]:
    """Every generated file, by path relative to the output directory, in a stable order."""
    out: dict[str, str] = {}
    for generate in _generators():
        out.update(generate(table))
    return dict(sorted(out.items()))


@dataclass(frozen=True)
class Drift:
    path: str
    problem: str  # "missing", "differs" or "stale"

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


def _stale(out_dir: Path, files: dict[str, str]) -> list[str]:
    found = []
    for folder, pattern in OWNED:
        for path in sorted((out_dir / folder).glob(pattern)):
            rel = path.relative_to(out_dir).as_posix()
            if path.is_file() and rel not in files:
                found.append(rel)
    return found


def drift(out_dir: str | Path, files: dict[str, str]) -> list[Drift]:
    """Generated files that are missing, differ from what the generators produce now, or are left over."""
    out_dir = Path(out_dir)
    problems = []
    for rel, text in files.items():
        path = out_dir / rel
        if not path.is_file():
            problems.append(Drift(rel, "missing"))
        elif path.read_text(encoding="utf-8") != text:
            problems.append(Drift(rel, "differs"))
    problems.extend(Drift(rel, "stale") for rel in _stale(out_dir, files))
    return problems


def write(out_dir: str | Path, files: dict[str, str]) -> list[str]:
    """Writes every file whose content changed and removes stale generated files; returns what changed."""
    out_dir = Path(out_dir)
    changed = []
    for rel, text in files.items():
        path = out_dir / rel
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            changed.append(rel)
    for rel in _stale(out_dir, files):
        (out_dir / rel).unlink()
        changed.append(f"{rel} (removed)")
    return changed
