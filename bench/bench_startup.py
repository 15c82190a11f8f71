"""Start-up and exit cost of `opentelemetry-instrument` with agentwatch, against the same script run plain.

1. start-up: `import openai; print(...)` (every other supported library installed in the venv), plain and
   under `opentelemetry-instrument` with exporters `none` and with agentwatch's default (OTLP/HTTP). Wall
   and CPU time (user + sys of the child) per case, min and median of N alternating runs; then where the
   added time goes: the import time of every module only the instrumented run imports (`-X importtime`,
   each module at its best of the runs), grouped by owner, and whether any other library was imported.
2. exit: `tests/agents/exit_agent.py` (three LLM calls to the stub server, a 1 s pause, then exit) against a
   healthy collector, one that refuses connections and one that accepts and never answers. Exit time is the
   process's end minus the moment the agent's work ended, as its parent sees it; "added" is over the plain
   run of the same script. The stderr lines the agent printed are counted.
3. --instructions: the start-up cases under valgrind's callgrind (instruction counts do not depend on the
   machine's load; minutes per case).

    python bench/bench_startup.py [--runs 7] [--exit-runs 3] [--hang-timeout 10] [--instructions]

Run it with another checkout's interpreter (e.g. main's .venv/bin/python) for its "before" figures; the
children's bytecode goes to a private PYTHONPYCACHEPREFIX, never into a checkout. Targets: start-up adds at
most 0.3 s; exit adds at most 3 s when refused and at most the OTLP timeout when hanging.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from agentwatch.tooling.demo.stub import StubServer  # noqa: E402
from support.bad_collectors import HangingCollector, refusing_endpoint  # noqa: E402
from support.otlp_receiver import OtlpReceiver  # noqa: E402

BIN = Path(sys.executable).parent
INSTRUMENT = str(BIN / "opentelemetry-instrument")
EXIT_AGENT = HERE.parent / "tests" / "agents" / "exit_agent.py"
OTHER_LIBRARIES = ("anthropic", "mcp", "mcp_types", "agents", "langchain_core", "langsmith", "genai_prices")
OWNERS = (  # (owner, module prefixes), first match wins
    ("the other supported libraries and price data", OTHER_LIBRARIES),
    ("OTLP exporters (protobuf, requests)", ("opentelemetry.exporter", "opentelemetry.proto", "google", "requests",
                                           "urllib3", "charset_normalizer", "certifi", "idna")),
    ("agentwatch", ("agentwatch",)),
    ("opentelemetry-instrumentation (auto-instrumentation, packaging, wrapt)",
     ("opentelemetry.instrumentation", "opentelemetry.util._importlib_metadata", "packaging", "wrapt",
      "sitecustomize")),
    ("opentelemetry API, SDK, semconv", ("opentelemetry",)),
)
_PYCACHE = tempfile.mkdtemp(prefix="agentwatch-bench-pycache-")


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OTEL_", "AGENTWATCH_")) and k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = _PYCACHE
    env.update(extra)
    return env


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float, subprocess.CompletedProcess]:
    """(wall s, CPU s of the child, the process)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{command} failed:\n{proc.stderr[-3000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), proc


def owner_of(module: str) -> str:
    for owner, prefixes in OWNERS:
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return owner
    return "Python standard library and others"


def import_times(stderr: str) -> dict[str, int]:
    times: dict[str, int] = {}
    for line in stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)", line)
        if match:
            times[match[2]] = times.get(match[2], 0) + int(match[1])
    return times


# --- 1. start-up -----------------------------------------------------------------------------------------
NONE = {"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none"}
FLOOR = "opentelemetry-instrument alone"
SDK_ONLY = "opentelemetry-distro's SDK, no instrumentor"
DISTRO_DIR = Path(sys.prefix) / "extras" / "distro"  # `make setup` installs opentelemetry-distro there


def startup_cases(script: Path) -> dict[str, tuple[list[str], dict[str, str]]]:
    instrumented = [INSTRUMENT, sys.executable, str(script)]
    return {
        "plain": ([sys.executable, str(script)], base_env()),
        # the launcher and loader with no distro, configurator or instrumentor: the floor agentwatch builds on
        FLOOR: (instrumented, base_env(**NONE, OTEL_PYTHON_DISTRO="no-such-distro",
                                       OTEL_PYTHON_CONFIGURATOR="no-such-configurator",
                                       OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="*")),
        # the same SDK configured the standard way (opentelemetry-distro), nothing instrumented
        **({SDK_ONLY: (instrumented, base_env(**NONE, PYTHONPATH=str(DISTRO_DIR), OTEL_PYTHON_DISTRO="distro",
                                              OTEL_PYTHON_CONFIGURATOR="configurator",
                                              OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="*"))}
           if (DISTRO_DIR / "opentelemetry" / "distro").is_dir() else {}),
        "agentwatch, exporters none": (instrumented, base_env(**NONE)),
        "agentwatch, OTLP/HTTP": (instrumented, base_env(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:4318")),
    }


def startup(runs: int) -> None:
    script = Path(_PYCACHE) / "openai_only.py"
    script.write_text("import openai\nprint('ok', openai.__version__)\n")
    cases = startup_cases(script)
    for command, env in cases.values():  # warm-up: bytecode written, page cache filled
        timed(command, env)
    walls: dict[str, list[float]] = {name: [] for name in cases}
    cpus: dict[str, list[float]] = {name: [] for name in cases}
    best_imports: dict[str, dict[str, int]] = {name: {} for name in cases}
    for _ in range(runs):
        for name, (command, env) in cases.items():
            wall, cpu, _proc = timed(command, env)
            walls[name].append(wall)
            cpus[name].append(cpu)
            _w, _c, proc = timed([*command[:-1], "-X", "importtime", command[-1]], env)
            for module, micros in import_times(proc.stderr).items():
                best = best_imports[name]
                best[module] = min(best.get(module, micros), micros)
    print(f"\n1. start-up of `import openai` ({runs} runs each, load average {os.getloadavg()[0]:.1f})")
    print(f"   {'case':42} {'wall min':>9} {'median':>8} {'CPU min':>8} {'median':>8}   added (wall median / CPU min)")
    floor_wall, floor_cpu = statistics.median(walls[FLOOR]), min(cpus[FLOOR])
    plain_wall, plain_cpu = statistics.median(walls["plain"]), min(cpus["plain"])
    for name in cases:
        wall_med, cpu_min = statistics.median(walls[name]), min(cpus[name])
        added = "" if name == "plain" else f"   +{wall_med - plain_wall:.3f} s / +{cpu_min - plain_cpu:.3f} s"
        if name.startswith("agentwatch"):
            added += f"   (over the floor: +{wall_med - floor_wall:.3f} s / +{cpu_min - floor_cpu:.3f} s)"
            if SDK_ONLY in cases and "none" in name:
                sdk_wall, sdk_cpu = statistics.median(walls[SDK_ONLY]), min(cpus[SDK_ONLY])
                added += f"   (over {SDK_ONLY}: +{wall_med - sdk_wall:.3f} s / +{cpu_min - sdk_cpu:.3f} s)"
        print(f"   {name:42} {min(walls[name]):9.3f} {wall_med:8.3f} {cpu_min:8.3f} {statistics.median(cpus[name]):8.3f}{added}")
    plain_modules = best_imports["plain"]
    for name in list(cases)[1:]:
        added = {m: t for m, t in best_imports[name].items() if m not in plain_modules}
        groups: dict[str, int] = {}
        for module, micros in added.items():
            groups[owner_of(module)] = groups.get(owner_of(module), 0) + micros
        others = sorted({m.split(".")[0] for m in added} & set(OTHER_LIBRARIES))
        print(f"\n   {name}: {sum(added.values()) / 1e6:.3f} s of imports over {len(added)} modules "
              f"(each at its best); other libraries imported: {', '.join(others) or 'none'}")
        for owner, micros in sorted(groups.items(), key=lambda item: -item[1]):
            print(f"     {micros / 1e6:6.3f} s  {owner}")
        top = sorted(((t, m) for m, t in added.items() if m.startswith("agentwatch")), reverse=True)[:6]
        print("     agentwatch's largest: " + ", ".join(f"{m} {t / 1e3:.1f} ms" for t, m in top))


# --- 2. exit ---------------------------------------------------------------------------------------------
def run_exit_agent(stub: StubServer, env: dict[str, str], instrument: bool) -> tuple[float, int]:
    """(exit seconds, stderr lines)."""
    with tempfile.NamedTemporaryFile(prefix="exit-mark-", delete=False) as mark:
        path = mark.name
    child = base_env(STUB_URL=stub.url, EXIT_AGENT_MARK=path, OTEL_SERVICE_NAME="exit-agent", **env)
    command = [sys.executable, str(EXIT_AGENT)]
    if instrument:
        command.insert(0, INSTRUMENT)
    _wall, _cpu, proc = timed(command, child)
    ended = time.time()
    exit_s = ended - float(Path(path).read_text())
    os.unlink(path)
    return exit_s, len([line for line in proc.stderr.splitlines() if line.strip()])


def exits(runs: int, hang_timeout: float) -> None:
    print(f"\n2. exit of tests/agents/exit_agent.py ({runs} runs each; the collector's OTLP timeout "
          f"{hang_timeout:g} s for the hanging case)")
    with StubServer() as stub:
        run_exit_agent(stub, {}, False)  # warm-up
        results: dict[str, list[tuple[float, int]]] = {}

        def record(name: str, env: dict[str, str], instrument: bool = True) -> None:
            results.setdefault(name, []).append(run_exit_agent(stub, env, instrument))

        for _ in range(runs):
            record("plain", {}, instrument=False)
            with OtlpReceiver() as receiver:
                record("healthy collector", {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint})
            record("refusing collector", {"OTEL_EXPORTER_OTLP_ENDPOINT": refusing_endpoint()})
            with HangingCollector() as collector:
                record("hanging collector", {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
                                             "OTEL_EXPORTER_OTLP_TIMEOUT": f"{hang_timeout:g}"})
            record("refusing collector, agentwatch.init()",
                   {"OTEL_EXPORTER_OTLP_ENDPOINT": refusing_endpoint(), "EXIT_AGENT_INIT": "1"}, instrument=False)
    plain = statistics.median(e for e, _ in results["plain"])
    print(f"   {'case':40} {'exit median':>11} {'max':>6}   {'added':>7}   stderr lines")
    for name, values in results.items():
        med = statistics.median(e for e, _ in values)
        added = "" if name == "plain" else f"+{med - plain:.2f} s"
        lines = sorted({n for _, n in values})
        print(f"   {name:40} {med:9.2f} s {max(e for e, _ in values):5.2f}   {added:>7}   {lines}")
    print(f"   load average {os.getloadavg()[0]:.1f}")


# --- 3. instruction counts -------------------------------------------------------------------------------
def instructions() -> None:
    script = Path(_PYCACHE) / "openai_only.py"
    out = Path(_PYCACHE) / "callgrind"
    out.mkdir(exist_ok=True)
    script.write_text("import openai\nprint('ok', openai.__version__)\n")
    cases = startup_cases(script)
    print("\n3. instructions (callgrind; the agent's interpreter: the launcher process, replaced by exec, is not counted)")
    counts = {}
    for name, (command, env) in cases.items():
        timed(command, env)  # bytecode
        prefix = out / re.sub(r"\W+", "_", name)
        proc = subprocess.run(["valgrind", "--tool=callgrind", "--trace-children=yes",
                               f"--callgrind-out-file={prefix}.%p", *command], env=env, capture_output=True,
                              text=True, timeout=3600)
        counts[name] = sum(int(n) for n in re.findall(r"Collected : (\d+)", proc.stderr))
        added = "" if name == "plain" else f"  (+{(counts[name] - counts['plain']) / 1e6:,.0f} M)"
        print(f"   {name:42} {counts[name] / 1e6:10,.0f} M instructions{added}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--exit-runs", type=int, default=3)
    parser.add_argument("--hang-timeout", type=float, default=10.0)
    parser.add_argument("--instructions", action="store_true", help="also count instructions (slow)")
    parser.add_argument("--skip-startup", action="store_true")
    parser.add_argument("--skip-exit", action="store_true")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]} at {sys.executable}")
    if not args.skip_startup:
        startup(args.runs)
    if not args.skip_exit:
        exits(args.exit_runs, args.hang_timeout)
    if args.instructions:
        instructions()


if __name__ == "__main__":
    main()
