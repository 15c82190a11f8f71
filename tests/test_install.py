"""What an install brings: an agent's `pip install agentwatch` pulls the runtime's dependencies only (no click,
rich or elasticsearch), the extras bring the tooling's, the README's table says which extra gives what, and the
`agentwatch` script of a runtime-only install says in one line what to install.

The dependency set is checked twice: from the installed distributions' metadata (offline, instant), and by
pip's own resolver from the package index (`pip install --dry-run --ignore-installed --report`, what a fresh
install would really pull; pip's cache keeps it to seconds).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, distribution, entry_points
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

TEST_LAYER = "unit"  # every test here is unit unless marked otherwise (conftest.py)

REPO = Path(__file__).resolve().parent.parent
TOOLING_ONLY = {"click", "rich", "elasticsearch"}
SCRIPT = Path(sys.executable).parent / "agentwatch"


def installed_closure(extras: tuple[str, ...] = ()) -> set[str]:
    """The canonical names of every distribution `agentwatch[extras]` pulls, transitively, read from the
    installed distributions' requirements (markers evaluated for this interpreter)."""
    found: set[str] = set()
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [("agentwatch", frozenset(extras))]
    while todo:
        name, wanted = todo.pop()
        if (canonicalize_name(name), wanted) in seen:
            continue
        seen.add((canonicalize_name(name), wanted))
        found.add(canonicalize_name(name))
        try:
            requirements = distribution(name).requires or []
        except PackageNotFoundError:
            pytest.fail(f"{name} is required but not installed: the environment is incomplete")
        for text in requirements:
            requirement = Requirement(text)
            if requirement.marker is not None and not any(
                    requirement.marker.evaluate({"extra": extra}) for extra in (wanted or {""})):
                continue
            todo.append((requirement.name, frozenset(requirement.extras)))
    return found


def extra_requirements() -> dict[str, set[str]]:
    """Each extra of agentwatch ("" for the runtime) -> the canonical names of its own requirements, an
    `agentwatch[x]` among them as "[x]"."""
    out: dict[str, set[str]] = {}
    for text in distribution("agentwatch").requires or []:
        requirement = Requirement(text)
        extra = re.search(r'extra == "([^"]+)"', str(requirement.marker or ""))
        name = canonicalize_name(requirement.name)
        out.setdefault(extra.group(1) if extra else "", set()).update(
            {f"[{x}]" for x in requirement.extras} if name == "agentwatch" else {name})
    return out


def test_the_runtime_pulls_none_of_the_tooling_dependencies():
    runtime = installed_closure()
    assert {"opentelemetry-sdk", "opentelemetry-instrumentation", "wrapt", "genai-prices", "pyyaml"} <= runtime
    assert runtime & TOOLING_ONLY == set(), sorted(runtime & TOOLING_ONLY)
    # the same walk finds them where they belong, so the check above can fail
    assert TOOLING_ONLY <= installed_closure(("cli",))
    assert installed_closure(("elasticsearch",)) & TOOLING_ONLY == {"elasticsearch"}


@pytest.mark.e2e
def test_pip_resolves_the_runtime_without_the_tooling_dependencies(tmp_path):
    """pip's resolver, from the package index, for a fresh environment (nothing installed is reused)."""

    def resolve(target: str) -> set[str]:
        report = tmp_path / "report.json"
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
             "--disable-pip-version-check", "--timeout", "60", "--report", str(report), target],
            capture_output=True, text=True, timeout=600, cwd=tmp_path)
        assert proc.returncode == 0, f"pip could not resolve {target} (no package index?):\n{proc.stderr[-3000:]}"
        return {canonicalize_name(item["metadata"]["name"]) for item in json.loads(report.read_text())["install"]}

    runtime = resolve(str(REPO))
    assert "agentwatch" in runtime and "opentelemetry-sdk" in runtime
    assert runtime & TOOLING_ONLY == set(), sorted(runtime & TOOLING_ONLY)
    assert TOOLING_ONLY <= resolve(f"{REPO}[cli]")


def test_the_readme_table_says_which_extra_gives_what():
    """"Dependencies, and why" has a row per install (the runtime, every extra but `test`), naming exactly what
    it brings: packages, with `-x` short for the previous package's prefix plus x, and "the CLI" for `[cli]`."""
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Dependencies, and why"):]
    section = section[:section.index("\n## ", 1)]
    named: dict[str, set[str]] = {}
    install = None
    for match in re.finditer(r"^\| (`agentwatch(?:\[(\w+)\])?`)? *\| ([^|]+) \|", section, re.M):
        if match.group(1):
            install = match.group(2) or ""
        prefix = ""
        for part in (p.strip() for p in match.group(3).split(",")):
            if part.startswith("-"):
                part = prefix + part
            else:
                prefix = part.split("-")[0]
            named.setdefault(install, set()).add(part if part == "the CLI" else canonicalize_name(part))
    declared = extra_requirements()

    def spelled(extra: str) -> set[str]:
        out: set[str] = set()
        for item in declared[extra]:
            if item == "[cli]":
                out.add("the CLI")
            elif item.startswith("["):
                out |= spelled(item.strip("[]"))
            else:
                out.add(item)
        return out

    assert set(named) == set(declared) - {"test"}
    for extra in named:
        assert named[extra] == spelled(extra), extra or "the runtime"


@pytest.mark.e2e
def test_the_script_of_a_runtime_only_install_says_what_to_install():
    (script,) = [ep for ep in entry_points(group="console_scripts") if ep.name == "agentwatch"]
    assert script.value == "agentwatch.tooling.launcher:main"

    def run(*blocked: str) -> subprocess.CompletedProcess:
        # the installed script itself, in an interpreter where the blocked modules cannot be imported
        code = (f"import runpy, sys; sys.modules.update(dict.fromkeys({list(blocked)!r})); "
                f"sys.argv = ['agentwatch', '--version']; runpy.run_path({str(SCRIPT)!r}, run_name='__main__')")
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)

    for blocked, named in ((("click", "rich"), "click and rich"), (("rich",), "rich")):
        proc = run(*blocked)
        assert proc.returncode == 1 and proc.stdout == ""
        assert proc.stderr == (f"agentwatch: error: the agentwatch command needs {named}, which the runtime alone "
                               "does not install: pip install 'agentwatch[cli]'\n")
    proc = run()
    assert proc.returncode == 0 and proc.stdout.startswith("agentwatch "), proc.stderr


@pytest.mark.e2e
def test_the_runtime_imports_without_the_tooling_or_its_dependencies():
    """`import agentwatch`, `init()`'s modules and every instrumentor load with click, rich, elasticsearch and
    agentwatch.tooling unimportable."""
    runtime = sorted(
        ".".join(p.relative_to(REPO / "instrumentation").with_suffix("").parts)
        for p in (REPO / "instrumentation" / "agentwatch").rglob("*.py")
        if "tooling" not in p.parts and p.name != "__init__.py")
    blocked = sorted(TOOLING_ONLY | {"agentwatch.tooling"})
    code = (f"import importlib, sys; sys.modules.update(dict.fromkeys({blocked!r})); import agentwatch; "
            f"[importlib.import_module(m) for m in {runtime!r}]; print('ok')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-3000:]
    assert "agentwatch.runtime.elasticsearch.handler" in runtime and "agentwatch.runtime.setup" in runtime
