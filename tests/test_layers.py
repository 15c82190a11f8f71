"""The package is layered: the contract at the bottom, the runtime above it, the tooling (generators, demo,
stack, CLI) on top.

Nothing imports upward, and there are no import cycles between agentwatch modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

TEST_LAYER = "unit"  # every test here is unit unless marked otherwise (conftest.py)

PACKAGE = Path(__file__).resolve().parent.parent / "instrumentation" / "agentwatch"

# lower number = lower layer; a module may import only from its own layer or below.
# 0-1: the contract (names, prices, thresholds, settings); 2-5: the runtime that runs inside the agent;
# 6-8: the operator's tooling (generators, demo, stack; the CLI; its console script), which no runtime module may
# import.
LAYERS = {
    "agentwatch.semconv": 0,
    "agentwatch.pricing": 1,
    "agentwatch.config": 1,
    "agentwatch.thresholds": 1,
    "agentwatch.runtime": 2,
    "agentwatch.runtime.logs": 2,
    "agentwatch.runtime.export_guard": 2,
    "agentwatch.runtime.telemetry": 3,
    "agentwatch.runtime.elasticsearch": 3,
    "agentwatch.runtime.runs": 3,
    "agentwatch.runtime.processor": 4,
    "agentwatch.runtime.instrumentors": 4,
    "agentwatch.runtime.api": 4,
    "agentwatch.runtime.distro": 5,
    "agentwatch.runtime.setup": 5,
    "agentwatch": 5,
    "agentwatch.tooling": 6,
    "agentwatch.tooling.cli": 7,
    "agentwatch.tooling.commands": 7,
    "agentwatch.tooling.launcher": 8,
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(name: str) -> int:
    best = None
    for prefix, layer in LAYERS.items():
        if (name == prefix or name.startswith(prefix + ".")) and (best is None or len(prefix) > len(best[0])):
            best = (prefix, layer)
    assert best is not None, f"{name} has no layer: add it to LAYERS"
    return best[1]


def imports_of(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "agentwatch":
                found.update(f"agentwatch.{alias.name}" for alias in node.names)
            elif node.module.startswith("agentwatch."):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("agentwatch."))
    return found


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) for p in PACKAGE.rglob("*.py")}


def test_nothing_imports_upward():
    violations = []
    for module, imported in graph().items():
        for target in imported:
            if layer_of(target) > layer_of(module):
                violations.append(f"{module} (layer {layer_of(module)}) imports {target} (layer {layer_of(target)})")
    assert violations == []


def test_no_import_cycles():
    edges = graph()
    known = set(edges)

    def resolve(name: str) -> str | None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for target in edges.get(node, ()):
            target = resolve(target)
            if target is None or target == node or node.startswith(target + "."):
                continue  # a package's own __init__ is not a cycle partner of its submodules
            if state.get(target) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack + [node, target]))
            if state.get(target) is None:
                visit(target, stack + [node])
        state[node] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [])
