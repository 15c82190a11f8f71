"""No cost before use (issue 11 §3): a library is patched when the application imports it, never before.

Every supported library is installed in this venv. An agent that imports only openai, run under
`opentelemetry-instrument`, must not import any of the others (nor the price data or PyYAML), yet every
instrumentor is active and patches its library the moment the agent imports it. The import time
`opentelemetry-instrument` adds stays under 0.3 s (each module's best of three runs, so a loaded machine
does not make it flaky; the OTLP exporters' protobuf/requests stack, the SDK's own, is reported apart);
`bench/bench_startup.py` reports the wall and CPU figures.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
import wrapt

from agentwatch.runtime.instrumentors._on_import import ImportPatches

TEST_LAYER = "e2e"  # every test here is e2e unless marked otherwise (conftest.py)

BIN = Path(sys.executable).parent
# What the other instrumentors could patch, and what agentwatch itself loads on first use only.
NOT_BEFORE_USE = ("anthropic", "mcp", "mcp_types", "agents", "langchain_core", "langsmith", "genai_prices", "yaml")
STARTUP_BUDGET_S = 0.3
LIBRARIES = {  # instrumentor module -> (class, import name, a module it patches and an attribute there)
    "openai": ("OpenAIInstrumentor", "openai", "openai.resources.chat.completions.completions", "Completions.create"),
    "anthropic": ("AnthropicInstrumentor", "anthropic", "anthropic.resources.messages.messages", "Messages.create"),
    "mcp": ("MCPInstrumentor", "mcp", "mcp.client.session", "ClientSession.call_tool"),
    "langchain": ("LangChainInstrumentor", "langchain_core.tools", "langchain_core.tools.base", "BaseTool.run"),
    "openai_agents": ("OpenAIAgentsInstrumentor", "agents", "agents.run", "AgentRunner.run"),
}


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OTEL_", "AGENTWATCH_")) and k != "PYTHONDONTWRITEBYTECODE"}
    env.update(OTEL_TRACES_EXPORTER="none", OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none", **extra)
    return env


def run_python(code: str, *, instrument: bool, env: dict[str, str] | None = None) -> dict:
    command = [sys.executable, "-c", code]
    if instrument:
        command.insert(0, str(BIN / "opentelemetry-instrument"))
    proc = subprocess.run(command, env=env or child_env(), capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


PATCHED = """
def patched(module, attribute):
    import importlib, wrapt
    owner = importlib.import_module(module)
    *path, name = attribute.split(".")
    for part in path:
        owner = getattr(owner, part)
    return isinstance(vars(owner).get(name), wrapt.FunctionWrapper)
"""


def test_an_openai_agent_imports_no_other_library_yet_every_instrumentor_is_active():
    result = run_python(PATCHED + textwrap.dedent(f"""
        import json, sys
        import openai
        loaded = sorted(name for name in {NOT_BEFORE_USE!r} if name in sys.modules)
        openai_patched = patched("openai.resources.chat.completions.completions", "Completions.create")
        from agentwatch.runtime.instrumentors.anthropic import AnthropicInstrumentor
        from agentwatch.runtime.instrumentors.openai_agents import OpenAIAgentsInstrumentor
        active = [AnthropicInstrumentor().is_instrumented_by_opentelemetry,
                  OpenAIAgentsInstrumentor().is_instrumented_by_opentelemetry]
        import anthropic, agents  # the application imports them later: patched right then
        later = [patched("anthropic.resources.messages.messages", "Messages.create"),
                 patched("agents.run", "AgentRunner.run")]
        print(json.dumps({{"loaded": loaded, "openai": openai_patched, "active": active, "later": later}}))
    """), instrument=True)
    assert result == {"loaded": [], "openai": True, "active": [True, True], "later": [True, True]}


def test_dependency_check_and_instrument_import_nothing_and_uninstrument_restores():
    """BaseInstrumentor.instrument() with its dependency check (installed versions from the metadata), for
    every instrumentor: nothing imported; each library patched when imported; uninstrument restores it."""
    result = run_python(PATCHED + textwrap.dedent(f"""
        import importlib, json, sys
        libraries = {LIBRARIES!r}
        instrumentors = []
        for module, (cls, _name, _target, _attribute) in libraries.items():
            instrumentor = getattr(importlib.import_module("agentwatch.runtime.instrumentors." + module), cls)()
            instrumentor.instrument()  # with the dependency check
            instrumentors.append(instrumentor)
        before = sorted(n for n in {NOT_BEFORE_USE!r} + ("openai",) if n in sys.modules)
        for _cls, name, _target, _attribute in libraries.values():
            importlib.import_module(name)
        on_import = [patched(target, attribute) for _c, _n, target, attribute in libraries.values()]
        for instrumentor in instrumentors:
            instrumentor.uninstrument()
        after = [patched(target, attribute) for _c, _n, target, attribute in libraries.values()]
        print(json.dumps({{"before": before, "on_import": on_import, "after": after}}))
    """), instrument=False)
    assert result == {"before": [], "on_import": [True] * 5, "after": [False] * 5}


def test_price_data_loads_on_the_first_priced_call(stub):
    result = run_python(textwrap.dedent(f"""
        import json, sys
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        from agentwatch.runtime.instrumentors.openai import OpenAIInstrumentor
        spans = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(spans))
        OpenAIInstrumentor().instrument(tracer_provider=provider)
        import openai
        before = "genai_prices" in sys.modules
        client = openai.OpenAI(base_url={stub.openai_base_url!r}, api_key="sk-test", max_retries=0)
        client.chat.completions.create(model="gpt-4o-mini", messages=[{{"role": "user", "content": "hi"}}])
        (span,) = spans.get_finished_spans()
        print(json.dumps({{"before": before, "after": "genai_prices" in sys.modules,
                          "cost": span.attributes["agentwatch.usage.cost_usd"]}}))
    """), instrument=False)
    assert result["before"] is False and result["after"] is True and result["cost"] > 0


def _import_times(command: list[str], env: dict[str, str]) -> dict[str, int]:
    """Self import time (µs) of every module a run imports, from `-X importtime`."""
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180, check=True)
    times: dict[str, int] = {}
    for line in proc.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)", line)
        if match:
            times[match[2]] = times.get(match[2], 0) + int(match[1])
    return times


def _best_of(runs: int, command: list[str], env: dict[str, str]) -> dict[str, int]:
    best: dict[str, int] = {}
    for _ in range(runs):
        for module, micros in _import_times(command, env).items():
            best[module] = min(best.get(module, micros), micros)
    return best


# The OTLP/HTTP exporters' own stack (the SDK's choice of protobuf and requests): reported, not budgeted.
EXPORTER_STACK = ("opentelemetry.exporter", "opentelemetry.proto", "google", "requests", "urllib3",
                  "charset_normalizer", "certifi", "idna")


def is_exporter_stack(module: str) -> bool:
    return any(module == root or module.startswith(root + ".") for root in EXPORTER_STACK)


@pytest.mark.parametrize("exporters", ["none", "otlp"])
def test_opentelemetry_instrument_adds_under_0_3_s_of_imports(tmp_path, exporters):
    """Import time added by `opentelemetry-instrument` to `import openai`, module by module, each at its best
    of three runs. With OTLP export (agentwatch's default) the exporters' own stack is counted apart."""
    script = tmp_path / "agent.py"
    script.write_text("import openai\nprint('ok', openai.__version__)\n")
    env = child_env()
    if exporters == "otlp":  # agentwatch's distro default: traces, metrics and logs over OTLP/HTTP
        for name in ("OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER", "OTEL_LOGS_EXPORTER"):
            env.pop(name)
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://127.0.0.1:4318"
    command = [sys.executable, "-X", "importtime", str(script)]
    _import_times([str(BIN / "opentelemetry-instrument"), *command], env)  # writes bytecode, as pip install does
    plain = _best_of(3, command, env)
    instrumented = _best_of(3, [str(BIN / "opentelemetry-instrument"), *command], env)
    added = {module: micros for module, micros in instrumented.items() if module not in plain}
    assert not [m for m in added if m.split(".")[0] in NOT_BEFORE_USE]
    exporter_stack = sum(micros for module, micros in added.items() if is_exporter_stack(module)) / 1e6
    if exporters == "none":
        assert exporter_stack == 0
    budgeted = {module: micros for module, micros in added.items() if not is_exporter_stack(module)}
    total = sum(budgeted.values()) / 1e6
    top = sorted(budgeted.items(), key=lambda item: -item[1])[:12]
    print(f"added imports: {total:.3f} s, plus {exporter_stack:.3f} s for the OTLP exporters' own stack")
    assert total < STARTUP_BUDGET_S, f"{total:.3f} s added over {len(budgeted)} modules; largest: {top}"


# --- ImportPatches, in process ---------------------------------------------------------------------------
@pytest.fixture
def library(tmp_path, monkeypatch):
    """A fresh, not yet imported package `awlib_<n>` with a module `awlib_<n>.client` (class Client)."""
    name = f"awlib_{uuid.uuid4().hex[:8]}"
    package = tmp_path / name
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "client.py").write_text("class Client:\n    def send(self, x):\n        return x * 2\n\n"
                                       "def helper():\n    return 'helped'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    for module in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[module]


def plus_one(wrapped, instance, args, kwargs):
    return wrapped(*args, **kwargs) + 1


@pytest.mark.unit
def test_patches_apply_when_the_module_is_imported(library):
    patches = ImportPatches(library)
    patches.wrap(f"{library}.client", "Client.send", plus_one)
    patches.start()
    assert f"{library}.client" not in sys.modules and patches.applied == []
    client = __import__(f"{library}.client", fromlist=["Client"])
    assert client.Client().send(2) == 5
    patches.stop()
    assert client.Client().send(2) == 4 and not isinstance(vars(client.Client)["send"], wrapt.FunctionWrapper)


@pytest.mark.unit
def test_stop_before_the_import_leaves_the_library_untouched(library):
    patches = ImportPatches(library)
    patches.wrap(f"{library}.client", "Client.send", plus_one)
    patches.start()
    patches.stop()
    client = __import__(f"{library}.client", fromlist=["Client"])
    assert client.Client().send(2) == 4


@pytest.mark.unit
def test_start_after_the_import_patches_at_once_and_restarting_does_not_wrap_twice(library):
    client = __import__(f"{library}.client", fromlist=["Client"])
    for _ in range(2):  # instrument, uninstrument, instrument again
        patches = ImportPatches(library)
        patches.wrap(f"{library}.client", "Client.send", plus_one)
        patches.start()
        assert client.Client().send(2) == 5
        patches.stop()
    assert client.Client().send(2) == 4
    first, second = ImportPatches(library), ImportPatches(library)
    for patches in (first, second):  # two instances with the same wrapper: one layer
        patches.wrap(f"{library}.client", "Client.send", plus_one)
        patches.start()
    assert client.Client().send(2) == 5
    first.stop()
    second.stop()


@pytest.mark.unit
def test_a_missing_attribute_is_skipped_and_logged(library, caplog):
    patches = ImportPatches(library)
    patches.wrap(f"{library}.client", "Client.gone", plus_one)
    patches.wrap(f"{library}.client", "Client.send", plus_one)
    patches.start()
    with caplog.at_level(logging.INFO, logger="agentwatch"):
        client = __import__(f"{library}.client", fromlist=["Client"])
    assert client.Client().send(2) == 5
    assert f"has no {library}.client.Client.gone" in caplog.text
    patches.stop()


@pytest.mark.unit
def test_a_failing_hook_never_breaks_the_applications_import(library, monkeypatch):
    reported = []
    monkeypatch.setattr("agentwatch.runtime.telemetry.report_internal_error", reported.append)

    def broken(module, patches):
        raise RuntimeError("agentwatch bug")

    patches = ImportPatches(library)
    patches.when_imported(f"{library}.client", broken)
    patches.start()
    client = __import__(f"{library}.client", fromlist=["helper"])
    assert client.helper() == "helped"
    assert reported == [f"patch {library}.client"]


@pytest.mark.unit
def test_a_library_that_is_not_installed_is_reported_without_importing_anything():
    with pytest.raises(ModuleNotFoundError):
        ImportPatches("agentwatch_no_such_library")
