"""`agentwatch demo`: four unmodified agents under `opentelemetry-instrument`, against the in-process stub.

What it shows, end to end and with nothing but the real pieces: the stub LLM server answers the real
`openai` / `anthropic` SDKs; each demo agent (`agentwatch.demo.agents`, no agentwatch import) runs as its own
process under `opentelemetry-instrument`, so agentwatch's entry points instrument it zero-code; every process
serves Prometheus metrics on its own port (scraped once before it exits), writes ECS JSON log lines, and
exports spans to the console (a file) or, when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, over OTLP. The summary
table is computed from the JSON log records the instrumentation wrote, not from the agents' own counting.
"""

from __future__ import annotations

import errno
import importlib.util
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, Iterable

from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from agentwatch import semconv as sc
from agentwatch.demo.stub import StubServer

__all__ = ["AgentSummary", "DemoError", "DemoResult", "ModelSummary", "run_demo", "summarize_logs"]

# The agents of agentwatch.demo.agents (not imported from there: it loads both LLM SDKs, and the runner
# process itself needs neither).
AGENTS = ("support", "research", "flaky", "costly")
DEFAULT_RUNS = 20
DEFAULT_SEED = 7
DEFAULT_FAILURE_RATE = 0.3
DEFAULT_PROMETHEUS_PORT = 9464
DEFAULT_OUT_DIR = ".agentwatch/demo"
STUB_LATENCY = 0.02
STUB_CHUNK_DELAY = 0.002
LINGER_SECONDS = 30.0  # an agent waits at most this long for its scrape; the runner releases it sooner
SCRAPE_TIMEOUT = 5.0
# The series the demo proves are served (names from the telemetry contract, never spelled here).
REQUIRED_SERIES = (sc.PROM_CLIENT_OPERATION_DURATION + "_bucket", sc.PROM_LLM_COST)
_EVENT_DURATION = "event.duration"  # ECS: nanoseconds
_EVENT_OUTCOME = "event.outcome"
_EVENT_ACTION = "event.action"
_TRACE_ID = "trace.id"
_SPAN_ID = "span.id"


class DemoError(Exception):
    """A failure the CLI reports as one line (a busy port, an agent that crashed, a missing series)."""


@dataclass
class ModelSummary:
    """LLM calls of one agent on one (requested) model, from the JSON log records."""

    agent: str
    model: str
    provider: str
    calls: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    unpriced_calls: int = 0  # successful calls whose cost is unknown (no price, or no usage reported)
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    error_types: dict[str, int] = field(default_factory=dict)

    @property
    def cost_known(self) -> bool:
        return self.unpriced_calls == 0


@dataclass
class AgentSummary:
    name: str
    service_name: str
    runs: int = 0
    failed_runs: int = 0
    tool_errors: int = 0
    retries: int = 0
    calls: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    unpriced_calls: int = 0
    cost_per_run: float = 0.0
    records: int = 0
    records_with_trace_id: int = 0
    trace_ids: int = 0
    prometheus_port: int = 0
    prometheus_series: int = 0
    prometheus_found: dict[str, bool] = field(default_factory=dict)
    log_file: str = ""
    spans_file: str | None = None
    duration_s: float = 0.0


@dataclass
class DemoResult:
    runs: int
    seed: int
    failure_rate: float
    out_dir: str
    traces_to: str  # "console" or the OTLP endpoint
    agents: dict[str, AgentSummary]
    models: list[ModelSummary]
    prometheus_ports: tuple[int, int]
    prometheus_series: int
    wall_time_s: float

    @property
    def total_cost_usd(self) -> float:
        return sum(a.cost_usd for a in self.agents.values())

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["total_cost_usd"] = self.total_cost_usd
        return data


# ---------------------------------------------------------------------------------------------------------
# Log records -> summary
# ---------------------------------------------------------------------------------------------------------

def _percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile (an observed value, no interpolation); 0.0 for no values."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(pct / 100.0 * len(sorted_values)))
    return sorted_values[rank - 1]


def read_records(path: Path) -> list[dict[str, Any]]:
    """The JSON lines of one log file; a torn or foreign line is skipped, not fatal."""
    records = []
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict):
                    records.append(record)
    except FileNotFoundError:
        pass
    return records


def summarize_logs(agent: str, records: Iterable[dict[str, Any]]) -> tuple[list[ModelSummary], AgentSummary]:
    """Per-model LLM-call statistics of one agent from its `gen_ai.client.inference` log records."""
    by_model: dict[str, ModelSummary] = {}
    durations: dict[str, list[float]] = {}
    summary = AgentSummary(name=agent, service_name=f"demo-{agent}")
    traces: set[str] = set()
    for record in records:
        summary.records += 1
        trace_id = record.get(_TRACE_ID)
        if isinstance(trace_id, str) and len(trace_id) == 32 and trace_id.strip("0"):
            summary.records_with_trace_id += 1
            traces.add(trace_id)
        if record.get(_EVENT_ACTION) != sc.LOG_EVENT_LLM_CALL:
            continue
        model = str(record.get(sc.GEN_AI_REQUEST_MODEL) or "?")
        stats = by_model.get(model)
        if stats is None:
            stats = by_model[model] = ModelSummary(agent, model, str(record.get(sc.GEN_AI_PROVIDER_NAME) or "?"))
            durations[model] = []
        stats.calls += 1
        failed = record.get(_EVENT_OUTCOME) == "failure" or sc.ERROR_TYPE in record
        if failed:
            stats.errors += 1
            kind = str(record.get(sc.ERROR_TYPE) or "error")
            stats.error_types[kind] = stats.error_types.get(kind, 0) + 1
        stats.input_tokens += int(record.get(sc.GEN_AI_USAGE_INPUT_TOKENS) or 0)
        stats.output_tokens += int(record.get(sc.GEN_AI_USAGE_OUTPUT_TOKENS) or 0)
        cost = record.get(sc.AGENTWATCH_COST_USD)
        if isinstance(cost, (int, float)):
            stats.cost_usd += float(cost)
        elif not failed:  # a failed call has no usage and costs nothing; a successful one must be priced
            stats.unpriced_calls += 1
        duration = record.get(_EVENT_DURATION)
        if isinstance(duration, (int, float)):
            durations[model].append(duration / 1e6)
    for model, stats in by_model.items():
        values = sorted(durations[model])
        stats.p50_ms = _percentile(values, 50)
        stats.p99_ms = _percentile(values, 99)
        summary.calls += stats.calls
        summary.errors += stats.errors
        summary.input_tokens += stats.input_tokens
        summary.output_tokens += stats.output_tokens
        summary.cost_usd += stats.cost_usd
        summary.unpriced_calls += stats.unpriced_calls
    summary.trace_ids = len(traces)
    return list(by_model.values()), summary


# ---------------------------------------------------------------------------------------------------------
# Processes, ports and scraping
# ---------------------------------------------------------------------------------------------------------

def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when `host:port` cannot be bound (a server listens there), the way the Prometheus exporter binds."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return True
            raise
    return False


def scrape(port: int) -> tuple[int, set[str]]:
    """(number of samples, metric names) served at http://127.0.0.1:PORT/metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=SCRAPE_TIMEOUT) as response:
        text = response.read().decode("utf-8", "replace")
    samples = 0
    names: set[str] = set()
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        samples += 1
        end = min((i for i in (line.find("{"), line.find(" ")) if i >= 0), default=len(line))
        names.add(line[:end])
    return samples, names


class _LineCounter:
    """Counts complete lines appended to a file (and lines containing a marker) without rereading it."""

    def __init__(self, path: Path, marker: bytes = b"") -> None:
        self.path = path
        self.marker = marker
        self.offset = 0
        self.partial = b""
        self.lines = 0
        self.marked = 0
        self.last: list[bytes] = []

    def poll(self) -> None:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read()
        except FileNotFoundError:
            return
        if not data:
            return
        self.offset += len(data)
        chunks = (self.partial + data).split(b"\n")
        self.partial = chunks.pop()
        self.lines += len(chunks)
        if self.marker:
            self.marked += sum(1 for c in chunks if self.marker in c)
        self.last = chunks


@dataclass
class _Agent:
    name: str
    index: int
    port: int
    log_file: Path
    spans_file: Path | None
    progress_file: Path
    stderr_file: Path
    proc: subprocess.Popen | None = None
    stdout: IO[bytes] | None = None
    stderr: IO[bytes] | None = None
    logs: _LineCounter | None = None
    progress: _LineCounter | None = None
    done: bool = False
    scraped: bool = False
    exited: bool = False
    started: float = 0.0
    finished: float = 0.0
    scrape_samples: int = 0
    scrape_names: set[str] = field(default_factory=set)
    scrape_error: str | None = None
    run_lines: list[str] = field(default_factory=list)

    @property
    def service_name(self) -> str:
        return f"demo-{self.name}"


def _child_env(agent: _Agent, endpoint: str | None) -> dict[str, str]:
    env = {}
    for key, value in os.environ.items():
        if key.startswith("OTEL_"):
            # Only where to send OTLP (endpoint, protocol, headers) is inherited; the rest is the demo's.
            if endpoint and key.startswith("OTEL_EXPORTER_OTLP_"):
                env[key] = value
            continue
        if key.startswith("AGENTWATCH_") and key != sc.ENV_PRICES_FILE:
            continue
        env[key] = value
    env.update({
        "OTEL_SERVICE_NAME": agent.service_name,
        "OTEL_METRICS_EXPORTER": "prometheus",
        "OTEL_EXPORTER_PROMETHEUS_HOST": "127.0.0.1",
        "OTEL_EXPORTER_PROMETHEUS_PORT": str(agent.port),
        sc.ENV_JSON_LOGS: str(agent.log_file),
        "ANTHROPIC_OPEN_TELEMETRY": "false",
    })
    if endpoint:
        env.update(OTEL_TRACES_EXPORTER="otlp", OTEL_LOGS_EXPORTER="otlp")
    else:
        env.update(OTEL_TRACES_EXPORTER="console", OTEL_LOGS_EXPORTER="none")
    return env


def _last_error_line(path: Path) -> str:
    try:
        lines = [ln.strip() for ln in path.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1] if lines else ""


def _stop(agents: list[_Agent]) -> None:
    for agent in agents:
        proc = agent.proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
    for agent in agents:
        proc = agent.proc
        if proc is not None:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for stream in (agent.stdout, agent.stderr):
            if stream is not None and not stream.closed:
                stream.close()
        if proc is not None and proc.stdin is not None and not proc.stdin.closed:
            try:
                proc.stdin.close()
            except OSError:
                pass


def _release(agent: _Agent) -> None:
    proc = agent.proc
    if proc is not None and proc.stdin is not None and not proc.stdin.closed:
        try:
            proc.stdin.close()
        except OSError:
            pass


def _parse_run_line(line: str) -> dict[str, Any]:
    parts = line.split()
    info: dict[str, Any] = {"ok": len(parts) > 2 and parts[2] == "ok"}
    for part in parts[3:]:
        key, _, value = part.partition("=")
        if value.isdigit():
            info[key] = int(value)
    return info


# ---------------------------------------------------------------------------------------------------------
# The demo
# ---------------------------------------------------------------------------------------------------------

def _make_console() -> Console:
    console = Console()
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(width=120)  # a log file or a pipe: no terminal width to respect
    return console


def run_demo(
    runs: int = DEFAULT_RUNS,
    seed: int = DEFAULT_SEED,
    failure_rate: float = DEFAULT_FAILURE_RATE,
    prometheus_port: int = DEFAULT_PROMETHEUS_PORT,
    out_dir: str | os.PathLike[str] = DEFAULT_OUT_DIR,
    *,
    agents: Iterable[str] = AGENTS,
    console: Console | None = None,
    timeout: float = 600.0,
) -> DemoResult:
    """Run the demo agents, print a live progress view and a summary; raises DemoError on failure."""
    names = list(agents)
    unknown = [n for n in names if n not in AGENTS]
    if unknown or not names:
        raise DemoError(f"unknown demo agent(s) {unknown}; choose from {', '.join(AGENTS)}")
    if runs < 1:
        raise DemoError(f"--runs must be at least 1, got {runs}")
    if not 0.0 <= failure_rate <= 1.0:
        raise DemoError(f"--failure-rate must be within 0..1, got {failure_rate}")
    last_port = prometheus_port + len(names) - 1
    if prometheus_port < 1 or last_port > 65535:
        raise DemoError(f"--prometheus-port {prometheus_port} leaves no room for {len(names)} ports (ports "
                        f"{prometheus_port}..{last_port} must lie within 1..65535)")
    for i, name in enumerate(names):
        port = prometheus_port + i
        try:
            busy = port_in_use(port)
        except OSError as exc:
            raise DemoError(f"cannot use port {port} for the Prometheus endpoint of demo-{name}: {exc}") from None
        if busy:
            raise DemoError(f"port {port} is already in use (needed for the Prometheus endpoint of demo-{name}, "
                            f"ports {prometheus_port}-{last_port}); choose other ports with --prometheus-port")
    missing = [m for m in ("openai", "anthropic") if importlib.util.find_spec(m) is None]
    if missing:
        raise DemoError(f"the demo agents need the {' and '.join(missing)} SDK; "
                        "install them with: pip install 'agentwatch[demo]'")
    instrument = Path(sys.executable).parent / "opentelemetry-instrument"
    if not instrument.exists():
        found = shutil.which("opentelemetry-instrument")
        if not found:
            raise DemoError(f"opentelemetry-instrument not found next to {sys.executable}; "
                            "install agentwatch into this environment (make setup)")
        instrument = Path(found)

    console = console or _make_console()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    endpoint = (os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or "").strip() or None
    team = [
        _Agent(
            name=name, index=i, port=prometheus_port + i,
            log_file=out / f"{name}.jsonl",
            spans_file=None if endpoint else out / f"{name}.spans.json",
            progress_file=out / f"{name}.progress",
            stderr_file=out / f"{name}.stderr.log",
        )
        for i, name in enumerate(names)
    ]
    for agent in team:  # a fresh start: old records would be counted again
        for path in (agent.log_file, agent.spans_file, agent.progress_file, agent.stderr_file):
            if path is not None:
                path.write_bytes(b"")
        if agent.spans_file is None:  # OTLP mode: no stale console spans from an earlier run
            (out / f"{agent.name}.spans.json").unlink(missing_ok=True)
    (out / "summary.json").unlink(missing_ok=True)

    started = time.monotonic()
    stub = StubServer(latency=STUB_LATENCY, chunk_delay=STUB_CHUNK_DELAY, failure_rate=0.0, seed=seed).start()
    try:
        console.print(f"[bold]agentwatch demo[/]: {len(team)} agents x {runs} runs (seed {seed}, failure rate "
                      f"{failure_rate:g}), each its own process under [cyan]opentelemetry-instrument[/]",
                      highlight=False, soft_wrap=True)
        console.print(f"stub OpenAI + Anthropic API on {stub.url}; spans to "
                      f"{'OTLP ' + endpoint if endpoint else 'console exporter files'}", highlight=False,
                      soft_wrap=True)
        _run_agents(team, stub, instrument, runs, seed, failure_rate, endpoint, console, started, timeout)
    finally:
        stub.stop()
    wall = time.monotonic() - started

    models: list[ModelSummary] = []
    summaries: dict[str, AgentSummary] = {}
    for agent in team:
        agent_models, summary = summarize_logs(agent.name, read_records(agent.log_file))
        models.extend(agent_models)
        infos = [_parse_run_line(line) for line in agent.run_lines]
        summary.runs = len(infos)
        summary.failed_runs = sum(1 for i in infos if not i["ok"])
        summary.tool_errors = sum(i.get("tool_errors", 0) for i in infos)
        summary.retries = sum(i.get("retries", 0) for i in infos)
        summary.cost_per_run = summary.cost_usd / summary.runs if summary.runs else 0.0
        summary.prometheus_port = agent.port
        summary.prometheus_series = agent.scrape_samples
        summary.prometheus_found = {name: name in agent.scrape_names for name in REQUIRED_SERIES}
        summary.log_file = str(agent.log_file)
        summary.spans_file = str(agent.spans_file) if agent.spans_file else None
        summary.duration_s = round(agent.finished - agent.started, 3)
        summaries[agent.name] = summary
    result = DemoResult(
        runs=runs, seed=seed, failure_rate=failure_rate, out_dir=str(out), traces_to=endpoint or "console",
        agents=summaries, models=models, prometheus_ports=(prometheus_port, last_port),
        prometheus_series=sum(s.prometheus_series for s in summaries.values()), wall_time_s=round(wall, 2),
    )
    (out / "summary.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
    _print_summary(console, result)

    problems = []
    for s in summaries.values():
        if s.records == 0:
            problems.append(f"demo-{s.name} wrote no JSON log records to {s.log_file}")
        missing = [n for n, ok in s.prometheus_found.items() if not ok]
        if missing:
            problems.append(f"demo-{s.name}'s Prometheus endpoint :{s.prometheus_port} lacks {', '.join(missing)}")
    if problems:
        raise DemoError("; ".join(problems))
    return result


def _run_agents(team: list[_Agent], stub: StubServer, instrument: Path, runs: int, seed: int, failure_rate: float,
                endpoint: str | None, console: Console, started: float, timeout: float) -> None:
    progress = Progress(
        SpinnerColumn(finished_text="[green]✓[/]"),
        TextColumn("[bold]{task.description:<9}"),
        BarColumn(bar_width=30),
        MofNCompleteColumn(),
        TextColumn("runs"),
        TextColumn("{task.fields[calls]:>5} LLM calls"),
        TextColumn("{task.fields[errors]}"),
        TimeElapsedColumn(),
        console=console,
        disable=not console.is_terminal,
    )
    try:
        for agent in team:
            agent.stdout = open(agent.spans_file, "wb") if agent.spans_file else None  # noqa: SIM115
            agent.stderr = open(agent.stderr_file, "wb")  # noqa: SIM115
            cmd = [str(instrument), sys.executable, "-m", "agentwatch.demo.agents", "--agent", agent.name,
                   "--runs", str(runs), "--seed", str(seed), "--stub-url", stub.url,
                   "--failure-rate", repr(failure_rate), "--progress-file", str(agent.progress_file),
                   "--linger", str(LINGER_SECONDS)]
            agent.started = time.monotonic()
            agent.proc = subprocess.Popen(
                cmd, env=_child_env(agent, endpoint), stdin=subprocess.PIPE,
                stdout=agent.stdout if agent.stdout is not None else subprocess.DEVNULL, stderr=agent.stderr)
            agent.logs = _LineCounter(agent.log_file, marker=b'"log.level":"error"')
            agent.progress = _LineCounter(agent.progress_file)
        tasks = {agent.name: progress.add_task(agent.name, total=runs, calls=0, errors="") for agent in team}
        with progress:
            while not all(agent.exited for agent in team):
                if time.monotonic() - started > timeout:
                    raise DemoError(f"the demo agents did not finish within {timeout:.0f} s; "
                                    f"see {team[0].stderr_file.parent}/*.stderr.log")
                for agent in team:
                    _poll(agent, progress, tasks[agent.name], console)
                time.sleep(0.1)
    finally:
        _stop(team)


def _poll(agent: _Agent, progress: Progress, task: Any, console: Console) -> None:
    assert agent.logs is not None and agent.progress is not None and agent.proc is not None
    if agent.exited:
        return
    agent.logs.poll()
    agent.progress.poll()
    for raw in agent.progress.last:
        line = raw.decode("utf-8", "replace").strip()
        if line.startswith("run "):
            agent.run_lines.append(line)
        elif line == "done":
            agent.done = True
    agent.progress.last = []
    errors = agent.logs.marked
    progress.update(task, completed=len(agent.run_lines), calls=agent.logs.lines,
                    errors=f"[red]{errors} errors[/]" if errors else "")
    if agent.done and not agent.scraped:
        agent.scraped = True
        agent.finished = time.monotonic()
        try:
            agent.scrape_samples, agent.scrape_names = scrape(agent.port)
        except (OSError, urllib.error.URLError) as exc:
            agent.scrape_error = str(exc)
        _release(agent)
    rc = agent.proc.poll()
    if rc is None:
        return
    agent.exited = True
    agent.logs.poll()
    progress.update(task, calls=agent.logs.lines)
    if rc != 0 or not agent.done:
        if rc < 0:
            try:
                how = f"was killed by {signal.Signals(-rc).name}"
            except ValueError:
                how = f"was killed by signal {-rc}"
        else:
            how = f"exited with code {rc}"
        detail = _last_error_line(agent.stderr_file)
        raise DemoError(f"demo-{agent.name} {how} before finishing{': ' + detail if detail else ''} "
                        f"(its stderr: {agent.stderr_file})")
    if agent.scrape_error:
        raise DemoError(f"could not scrape demo-{agent.name}'s Prometheus endpoint "
                        f"http://127.0.0.1:{agent.port}/metrics: {agent.scrape_error}")
    if not console.is_terminal:
        errs = f", {agent.logs.marked} failed" if agent.logs.marked else ""
        console.print(f"  done  {agent.name:<9} {len(agent.run_lines)} runs, {agent.logs.lines} LLM calls{errs} "
                      f"in {agent.finished - agent.started:.1f} s", highlight=False)


# ---------------------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------------------

def _usd(value: float, unknown: bool = False) -> Text:
    if value >= 100:
        text = f"${value:,.2f}"
    elif value >= 0.01 or value == 0:
        text = f"${value:.4f}"
    else:  # two significant digits of a fraction of a cent
        text = f"${value:.{1 - math.floor(math.log10(value))}f}"
    return Text(text + ("*" if unknown else ""), style="yellow" if unknown else "")


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _ms(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 else f"{value:.1f}"


def _print_summary(console: Console, result: DemoResult) -> None:
    table = Table(title=f"LLM calls per agent and model ({result.runs} runs per agent; from the JSON log records)",
                  title_justify="left", title_style="bold", header_style="bold", show_footer=True,
                  footer_style="bold", box=box.ROUNDED)
    columns = [("Agent", "left"), ("Model", "left"), ("Calls", "right"), ("Errors", "right"),
               ("Tokens in", "right"), ("Tokens out", "right"), ("Cost", "right"), ("Cost/run", "right"),
               ("p50 / p99 ms", "right")]
    models = result.models
    total_runs = sum(a.runs for a in result.agents.values())
    any_unpriced = any(m.unpriced_calls for m in models)
    footers = ["Total", f"{len(result.agents)} agents", f"{sum(m.calls for m in models):,}",
               f"{sum(m.errors for m in models):,}", f"{sum(m.input_tokens for m in models):,}",
               f"{sum(m.output_tokens for m in models):,}", _usd(result.total_cost_usd, any_unpriced),
               _usd(result.total_cost_usd / total_runs if total_runs else 0.0, any_unpriced), ""]
    for (name, justify), footer in zip(columns, footers):
        table.add_column(name, justify=justify, footer=footer, no_wrap=True)  # type: ignore[arg-type]
    for agent_name, agent in result.agents.items():
        rows = [m for m in models if m.agent == agent_name]
        if not rows:
            table.add_row(agent_name, "-", "0", "0", "0", "0", "-", "-", "-", end_section=True)
            continue
        for i, m in enumerate(rows):
            errors = Text(f"{m.errors:,}", style="bold red" if m.errors else "")
            table.add_row(
                Text(agent_name, style="bold") if i == 0 else "",
                m.model, f"{m.calls:,}", errors, f"{m.input_tokens:,}", f"{m.output_tokens:,}",
                _usd(m.cost_usd, not m.cost_known),
                _usd(m.cost_usd / agent.runs if agent.runs else 0.0, not m.cost_known),
                f"{_ms(m.p50_ms)} / {_ms(m.p99_ms)}",
                end_section=i == len(rows) - 1,
            )
    console.print()
    console.print(table)
    if any(m.unpriced_calls for m in result.models):
        unpriced = ", ".join(sorted({m.model for m in result.models if m.unpriced_calls}))
        console.print(f"[yellow]*[/] cost unknown for some calls of: {unpriced} (no price known; counted as "
                      f"unknown, not $0)", highlight=False)
    for agent in result.agents.values():
        notes = []
        kinds = Counter()
        for m in result.models:
            if m.agent == agent.name:
                kinds.update(m.error_types)
        if kinds:
            notes.append("LLM errors " + ", ".join(f"{n}x {k}" for k, n in kinds.most_common()))
        if agent.retries:
            notes.append(_plural(agent.retries, "retry", "retries"))
        if agent.tool_errors:
            notes.append(_plural(agent.tool_errors, "tool exception", "tool exceptions") + " caught")
        if agent.failed_runs:
            notes.append(f"{agent.failed_runs} of {agent.runs} runs gave up after retries")
        if notes:
            console.print(f"{agent.name}: " + "; ".join(notes), highlight=False, soft_wrap=True)

    console.print()
    console.print("JSON log records (one per LLM call, with trace.id and span.id) and console-exported spans:"
                  if result.traces_to == "console" else "JSON log records (one per LLM call, with trace.id and span.id);"
                  " spans and OTel logs went over OTLP:", highlight=False)
    width = max(len(a.log_file) for a in result.agents.values())
    for agent in result.agents.values():
        spans = agent.spans_file or f"spans -> OTLP {result.traces_to}"
        console.print(f"  [bold]{agent.service_name:<14}[/] {agent.log_file:<{width}}  {spans}", highlight=False,
                      soft_wrap=True)
    low, high = result.prometheus_ports
    served = f":{low}" if low == high else f":{low}–{high}"
    present = all(all(a.prometheus_found.values()) for a in result.agents.values())
    console.print(f"Prometheus metrics served on {served}: {result.prometheus_series:,} series "
                  f"({' and '.join(REQUIRED_SERIES)} {'present' if present else 'MISSING'})", highlight=False,
                  soft_wrap=True)
    console.print(f"Summary: {Path(result.out_dir) / 'summary.json'}  ·  finished in {result.wall_time_s:.1f} s",
                  highlight=False)
