"""`agentwatch demo`: four unmodified agents under `opentelemetry-instrument`, against the in-process stub.

What it shows, end to end and with nothing but the real pieces: the stub LLM server answers the real
`openai` / `anthropic` SDKs; each demo agent (`agentwatch.tooling.demo.agents`, which uses only the public
`agentwatch.agent_run` / `agentwatch.tool` markers) runs as its own process under `opentelemetry-instrument`,
so agentwatch's entry points instrument it zero-code; every process serves Prometheus metrics on its own port
(scraped once before it exits), writes ECS JSON log lines, and exports spans to the console (a file) or, when
`OTEL_EXPORTER_OTLP_ENDPOINT` is set, over OTLP. The tables are computed from the JSON log records the
instrumentation wrote, not from the agents' own counting: the LLM calls per model, and the threshold table
(`agentwatch.tooling.verdicts`: per agent and signal, the measured value against thresholds.current()).

With `with_prometheus`, a local Prometheus + Alertmanager (`agentwatch.tooling.stack`, in <out-dir>/prometheus)
scrapes the agents every second, evaluating the generated rules with the demo's short windows and `for`
(`demo_thresholds()`), so the alerts the table predicts fire during the demo; the agents stay up until
Prometheus has scraped their final values and the alerts had their time, then the firing alerts are read
back from Prometheus and Alertmanager.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Callable, Iterable

from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from agentwatch import config
from agentwatch import semconv as sc
from agentwatch import thresholds
from agentwatch.tooling import stack
from agentwatch.tooling import verdicts
from agentwatch.tooling.stack import port_in_use
from agentwatch.tooling.demo.stub import StubServer
from agentwatch.tooling.generate.promql import AGENT as AGENT_LABEL
from agentwatch.pricing import PriceBook, PricingConfigError
from agentwatch.tooling.generate.promql import TOOL as TOOL_LABEL
from agentwatch.thresholds import Thresholds, duration_seconds

__all__ = ["AgentSummary", "DemoError", "DemoResult", "ModelSummary", "Plan", "demo_thresholds", "plan_runs",
           "run_demo", "summarize_logs"]

# The agents of agentwatch.tooling.demo.agents (not imported from there: it loads both LLM SDKs, and the runner
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
# --with-prometheus: scrape and evaluate every second; alert windows and `for` short enough to fire during
# the demo (the threshold values themselves are the user's).
DEMO_WINDOW = "1m"
DEMO_FOR = "5s"
DEMO_INTERVAL = "1s"
PROMETHEUS_DIR = "prometheus"  # under the out dir
NOWHERE = "http://127.0.0.1:9/"  # the discard port: the demo's receivers send nowhere
ALERT_SETTLE_SECONDS = 20.0  # at most this long after the final scrape for predicted alerts to fire
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
    tool_calls: int = 0
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
class FiredAlert:
    """An alert Prometheus evaluated at the end of the demo, and where Alertmanager routed it."""

    alert: str
    state: str  # "firing" or "pending" (Prometheus)
    severity: str
    agent: str | None = None
    tool: str | None = None
    receivers: list[str] = field(default_factory=list)  # Alertmanager's; empty: not (yet) in Alertmanager
    value: float | None = None


@dataclass
class PrometheusRun:
    """What --with-prometheus did: where the stack ran, which alerts fired, or why it did not run."""

    state_dir: str
    prometheus_url: str | None = None
    alertmanager_url: str | None = None
    kept_running: bool = False
    skipped: str | None = None  # the reason when Prometheus did not run (binaries missing)
    window: str = DEMO_WINDOW
    for_: str = DEMO_FOR
    alerts: list[FiredAlert] = field(default_factory=list)
    predicted: list[tuple[str, str]] = field(default_factory=list)  # (alert, agent) the table said would fire
    missing: list[tuple[str, str]] = field(default_factory=list)  # predicted but not firing at the end


@dataclass
class DemoResult:
    runs: int | None  # planned runs per agent; None: as many as fit into `duration`
    seed: int
    failure_rate: float
    out_dir: str
    traces_to: str  # "console" or the OTLP endpoint
    agents: dict[str, AgentSummary]
    models: list[ModelSummary]
    prometheus_ports: tuple[int, int]
    prometheus_series: int
    wall_time_s: float
    duration: float | None = None
    rate: float | None = None
    thresholds: dict[str, Any] = field(default_factory=dict)  # verdicts.Report.to_dict()
    prometheus: PrometheusRun | None = None
    report: verdicts.Report | None = field(default=None, repr=False)

    @property
    def total_cost_usd(self) -> float:
        return sum(a.cost_usd for a in self.agents.values())

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "report"}
        data = {k: asdict(v) if dataclasses.is_dataclass(v) else v for k, v in data.items()}
        data["agents"] = {k: asdict(v) for k, v in self.agents.items()}
        data["models"] = [asdict(m) for m in self.models]
        if self.prometheus is not None:
            data["prometheus"]["for"] = data["prometheus"].pop("for_")
        data["total_cost_usd"] = self.total_cost_usd
        return data


@dataclass(frozen=True)
class Plan:
    """How many runs each agent does, and how they are paced."""

    runs: int | None  # None: until `duration` is over
    interval: float = 0.0  # seconds between run starts; 0: back to back
    duration: float | None = None
    rate: float | None = None

    def describe(self) -> str:
        if self.runs is None:
            return f"runs for {self.duration:g} s"
        text = _plural(self.runs, "run", "runs")
        if self.interval:
            text += f" at {1 / self.interval:.3g}/s (over about {self.runs * self.interval:.3g} s)"
        return text


def plan_runs(runs: int | None = None, duration: float | None = None, rate: float | None = None) -> Plan:
    """The runs per agent and their pacing from --runs, --duration and --rate (at most two of them).

    runs only: back to back; rate: paced at `rate` runs per second (with runs, or DEFAULT_RUNS of them);
    duration and rate: ceil(duration * rate) runs paced over the duration; runs and duration: runs spread
    evenly over the duration; duration only: back to back until the duration is over."""
    given = [name for name, value in (("--runs", runs), ("--duration", duration), ("--rate", rate))
             if value is not None]
    if len(given) == 3:
        raise DemoError("give at most two of --runs, --duration and --rate (the third follows from them)")
    if runs is not None and runs < 1:
        raise DemoError(f"--runs must be at least 1, got {runs}")
    for name, value in (("--duration", duration), ("--rate", rate)):
        if value is not None and not (value > 0 and math.isfinite(value)):
            raise DemoError(f"{name} must be a positive number, got {value:g}")
    if duration is not None and rate is not None:
        return Plan(runs=max(1, math.ceil(duration * rate - 1e-9)), interval=1 / rate, duration=duration, rate=rate)
    if rate is not None:
        count = runs if runs is not None else DEFAULT_RUNS
        return Plan(runs=count, interval=1 / rate, duration=count / rate, rate=rate)
    if duration is not None:
        if runs is not None:
            return Plan(runs=runs, interval=duration / runs, duration=duration, rate=runs / duration)
        return Plan(runs=None, duration=duration)
    return Plan(runs=runs if runs is not None else DEFAULT_RUNS)


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
    """Counts complete lines appended to a file without rereading it: all of them, those containing `marker`,
    and those containing both `marker` and `also`."""

    def __init__(self, path: Path, marker: bytes = b"", also: bytes = b"") -> None:
        self.path = path
        self.marker = marker
        self.also = also
        self.offset = 0
        self.partial = b""
        self.lines = 0
        self.marked = 0
        self.marked_also = 0
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
            marked = [c for c in chunks if self.marker in c]
            self.marked += len(marked)
            if self.also:
                self.marked_also += sum(1 for c in marked if self.also in c)
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
    finished_wall: float = 0.0  # time.time() when it reported "done"
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
        if key.startswith("AGENTWATCH_") and key not in (config.ENV_PRICES_FILE, config.ENV_THRESHOLDS_FILE):
            continue  # the prices and thresholds (its bucket boundaries) are the user's; the rest is the demo's
        env[key] = value
    env.update({
        "OTEL_SERVICE_NAME": agent.service_name,
        "OTEL_METRICS_EXPORTER": "prometheus",
        "OTEL_EXPORTER_PROMETHEUS_HOST": "127.0.0.1",
        "OTEL_EXPORTER_PROMETHEUS_PORT": str(agent.port),
        config.ENV_JSON_LOGS: str(agent.log_file),
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

def make_console(stderr: bool = False) -> Console:
    """The console the demo prints to (stderr when stdout carries JSON)."""
    console = Console(stderr=stderr)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(width=120, stderr=stderr)  # a log file or a pipe: no terminal width to respect
    return console


def run_demo(
    runs: int | None = None,
    seed: int = DEFAULT_SEED,
    failure_rate: float = DEFAULT_FAILURE_RATE,
    prometheus_port: int = DEFAULT_PROMETHEUS_PORT,
    out_dir: str | os.PathLike[str] = DEFAULT_OUT_DIR,
    *,
    duration: float | None = None,
    rate: float | None = None,
    with_prometheus: bool = False,
    keep_prometheus: bool = False,
    table: Thresholds | None = None,
    agents: Iterable[str] = AGENTS,
    console: Console | None = None,
    timeout: float | None = None,
) -> DemoResult:
    """Run the demo agents, print a live progress view, the summary and the threshold table; raises DemoError
    on failure. `runs`, `duration` and `rate` (at most two) plan the runs: see plan_runs()."""
    names = list(agents)
    unknown = [n for n in names if n not in AGENTS]
    if unknown or not names:
        raise DemoError(f"unknown demo agent(s) {unknown}; choose from {', '.join(AGENTS)}")
    plan = plan_runs(runs, duration, rate)
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
    if table is None:
        try:
            table = thresholds.current()
        except thresholds.ThresholdsError as exc:
            raise DemoError(str(exc)) from None
    prices_file = config.prices_file()
    if prices_file:  # the agents would only log it and price with the bundled data: say it now, once
        try:
            PriceBook(prices_file)
        except PricingConfigError as exc:
            raise DemoError(f"{config.ENV_PRICES_FILE}: {' '.join(str(exc).split())}") from None
    if timeout is None:
        timeout = 600.0 + (plan.duration or 0.0)

    console = console or make_console()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    endpoint = config.otlp_endpoint()
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
    prom = _start_prometheus(out, team, table, console) if with_prometheus else None
    live = prom is not None and prom.prometheus_url is not None
    succeeded = False
    try:
        stub = StubServer(latency=STUB_LATENCY, chunk_delay=STUB_CHUNK_DELAY, failure_rate=0.0, seed=seed).start()
        try:
            console.print(f"[bold]agentwatch demo[/]: {len(team)} agents x {plan.describe()} (seed {seed}, failure "
                          f"rate {failure_rate:g}), each its own process under [cyan]opentelemetry-instrument[/]",
                          highlight=False, soft_wrap=True)
            console.print(f"stub OpenAI + Anthropic API on {stub.url}; spans to "
                          f"{'OTLP ' + endpoint if endpoint else 'console exporter files'}", highlight=False,
                          soft_wrap=True)
            before_release = (lambda: _await_alerts(prom, team, table, console)) if live else None
            _run_agents(team, stub, instrument, plan, seed, failure_rate, endpoint, console, started, timeout,
                        before_release)
        finally:
            stub.stop()
        succeeded = True
    finally:
        if live and prom is not None:
            if keep_prometheus and succeeded:
                prom.kept_running = True
            else:
                stack.down(prom.state_dir)
    wall = time.monotonic() - started

    models: list[ModelSummary] = []
    summaries: dict[str, AgentSummary] = {}
    records_by_agent: dict[str, list[dict[str, Any]]] = {}
    for agent in team:
        records = records_by_agent[agent.name] = read_records(agent.log_file)
        agent_models, summary = summarize_logs(agent.name, records)
        models.extend(agent_models)
        _add_run_totals(summary, records)
        summary.retries = sum(_parse_run_line(line).get("retries", 0) for line in agent.run_lines)
        summary.cost_per_run = summary.cost_usd / summary.runs if summary.runs else 0.0
        summary.prometheus_port = agent.port
        summary.prometheus_series = agent.scrape_samples
        summary.prometheus_found = {name: name in agent.scrape_names for name in REQUIRED_SERIES}
        summary.log_file = str(agent.log_file)
        summary.spans_file = str(agent.spans_file) if agent.spans_file else None
        summary.duration_s = round(agent.finished - agent.started, 3)
        summaries[agent.name] = summary
    report = verdicts.from_records(records_by_agent, table, source=f"JSON log records in {out}")
    result = DemoResult(
        runs=plan.runs, seed=seed, failure_rate=failure_rate, out_dir=str(out), traces_to=endpoint or "console",
        agents=summaries, models=models, prometheus_ports=(prometheus_port, last_port),
        prometheus_series=sum(s.prometheus_series for s in summaries.values()), wall_time_s=round(wall, 2),
        duration=plan.duration, rate=plan.rate, thresholds=report.to_dict(), prometheus=prom, report=report,
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


def _add_run_totals(summary: AgentSummary, records: list[dict[str, Any]]) -> None:
    """Runs, failed runs, tool calls and tool errors of one agent, from its run and tool records."""
    for record in records:
        action = record.get(_EVENT_ACTION)
        failed = record.get(_EVENT_OUTCOME) == "failure" or sc.ERROR_TYPE in record
        if action == sc.LOG_EVENT_AGENT_RUN:
            summary.runs += 1
            summary.failed_runs += failed
        elif action == sc.LOG_EVENT_TOOL_CALL:
            summary.tool_calls += 1
            summary.tool_errors += failed


# ---------------------------------------------------------------------------------------------------------
# --with-prometheus
# ---------------------------------------------------------------------------------------------------------

def _start_prometheus(out: Path, team: list[_Agent], table: Thresholds, console: Console) -> PrometheusRun:
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


def _parse_time(text: str) -> float | None:
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


def _await_alerts(prom: PrometheusRun, team: list[_Agent], table: Thresholds, console: Console) -> None:
    """With every agent done (and still serving its metrics): waits until Prometheus scraped each agent's final
    values, then until the alerts the threshold table predicts fire (or a deadline), and records the alerts."""
    assert prom.prometheus_url and prom.alertmanager_url
    interval = duration_seconds(DEMO_INTERVAL)
    deadline = time.monotonic() + 10 * interval + 10
    waiting = list(team)
    while waiting:
        try:
            last = {t.get("labels", {}).get("instance"): _parse_time(t.get("lastScrape", ""))
                    for t in stack.prometheus_targets(prom.prometheus_url) if t.get("health") == "up"}
        except (OSError, ValueError, KeyError, TypeError):
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
            prom_alerts = stack.prometheus_alerts(prom.prometheus_url)
            am_alerts = stack.alertmanager_alerts(prom.alertmanager_url)
            answered = True
        except (OSError, ValueError, KeyError, TypeError):
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


def _run_agents(team: list[_Agent], stub: StubServer, instrument: Path, plan: Plan, seed: int, failure_rate: float,
                endpoint: str | None, console: Console, started: float, timeout: float,
                before_release: Callable[[], None] | None = None) -> None:
    """Starts the agents and polls them to the end. Each agent is released (its process may exit) once the
    runner scraped it; with `before_release`, all stay up until every one is done, then it is called."""
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
    hold = before_release is not None
    linger = timeout if hold else LINGER_SECONDS
    try:
        for agent in team:
            agent.stdout = open(agent.spans_file, "wb") if agent.spans_file else None  # noqa: SIM115
            agent.stderr = open(agent.stderr_file, "wb")  # noqa: SIM115
            cmd = [str(instrument), sys.executable, "-m", "agentwatch.tooling.demo.agents", "--agent", agent.name,
                   "--runs", str(plan.runs or 0), "--seed", str(seed), "--stub-url", stub.url,
                   "--failure-rate", repr(failure_rate), "--progress-file", str(agent.progress_file),
                   "--linger", repr(linger)]
            if plan.interval:
                cmd += ["--interval", repr(plan.interval)]
            if plan.runs is None and plan.duration:
                cmd += ["--duration", repr(plan.duration)]
            agent.started = time.monotonic()
            agent.proc = subprocess.Popen(
                cmd, env=_child_env(agent, endpoint), stdin=subprocess.PIPE,
                stdout=agent.stdout if agent.stdout is not None else subprocess.DEVNULL, stderr=agent.stderr)
            agent.logs = _LineCounter(agent.log_file, marker=b'"event.action":"%s"' % sc.LOG_EVENT_LLM_CALL.encode(),
                                      also=b'"event.outcome":"failure"')
            agent.progress = _LineCounter(agent.progress_file)
        tasks = {agent.name: progress.add_task(agent.name, total=plan.runs, calls=0, errors="") for agent in team}
        released = not hold
        with progress:
            while not all(agent.exited for agent in team):
                if time.monotonic() - started > timeout:
                    raise DemoError(f"the demo agents did not finish within {timeout:.0f} s; "
                                    f"see {team[0].stderr_file.parent}/*.stderr.log")
                for agent in team:
                    _poll(agent, progress, tasks[agent.name], console, release=released)
                if not released and all(agent.scraped for agent in team):
                    assert before_release is not None
                    before_release()
                    released = True
                    for agent in team:
                        _release(agent)
                time.sleep(0.1)
    finally:
        _stop(team)


def _poll(agent: _Agent, progress: Progress, task: Any, console: Console, release: bool = True) -> None:
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
    errors = agent.logs.marked_also
    progress.update(task, completed=len(agent.run_lines), calls=agent.logs.marked,
                    errors=f"[red]{errors} errors[/]" if errors else "")
    if agent.done and not agent.scraped:
        agent.scraped = True
        agent.finished = time.monotonic()
        agent.finished_wall = time.time()
        try:
            agent.scrape_samples, agent.scrape_names = scrape(agent.port)
        except (OSError, urllib.error.URLError) as exc:
            agent.scrape_error = str(exc)
        if agent.scrape_error:
            raise DemoError(f"could not scrape demo-{agent.name}'s Prometheus endpoint "
                            f"http://127.0.0.1:{agent.port}/metrics: {agent.scrape_error}")
        if not console.is_terminal:
            errs = f", {errors} failed" if errors else ""
            console.print(f"  done  {agent.name:<9} {_plural(len(agent.run_lines), 'run', 'runs')}, "
                          f"{agent.logs.marked} LLM calls{errs} in {agent.finished - agent.started:.1f} s",
                          highlight=False)
        if release:
            _release(agent)
    rc = agent.proc.poll()
    if rc is None:
        return
    agent.exited = True
    agent.logs.poll()
    progress.update(task, calls=agent.logs.marked)
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


def _runs_text(result: DemoResult) -> str:
    counts = sorted({a.runs for a in result.agents.values()})
    if len(counts) == 1:
        return _plural(counts[0], "run", "runs") + " per agent"
    return f"{counts[0]}–{counts[-1]} runs per agent"


def _print_summary(console: Console, result: DemoResult) -> None:
    table = Table(title=f"LLM calls per agent and model ({_runs_text(result)}; from the JSON log records)",
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
            notes.append(f"{agent.tool_errors} of {agent.tool_calls} tool calls raised (caught by the agent)")
        if agent.failed_runs:
            notes.append(f"{agent.failed_runs} of {agent.runs} runs gave up after retries")
        if notes:
            console.print(f"{agent.name}: " + "; ".join(notes), highlight=False, soft_wrap=True)

    console.print()
    console.print("JSON log records (one per LLM call, run and tool call, with trace.id and span.id) and "
                  "console-exported spans:" if result.traces_to == "console" else
                  "JSON log records (one per LLM call, run and tool call, with trace.id and span.id); spans and OTel "
                  "logs went over OTLP:", highlight=False, soft_wrap=True)
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
    if result.report is not None:
        _print_thresholds(console, result.report)
    if result.prometheus is not None:
        _print_alerts(console, result.prometheus)
    console.print(f"Summary: {Path(result.out_dir) / 'summary.json'}  ·  finished in {result.wall_time_s:.1f} s",
                  highlight=False)


_ROUTES = {"critical": "pages on-call", "warning": "team chat", "info": "no notification"}


def _print_thresholds(console: Console, report: verdicts.Report) -> None:
    console.print()
    verdicts.render(report, console, breached_word="WOULD FIRE",
                    title=f"Threshold table (from the JSON run and tool records; thresholds: {report.thresholds})")
    if not report.breached:
        console.print("[green]No threshold breached:[/] no alert would fire.", highlight=False)
    for v in report.breached:
        where = f"{v.agent} / {v.tool}" if v.tool else v.agent
        console.print(f"[bold red]WOULD FIRE[/] {v.threshold.alert} for {where}: {v.label} "
                      f"{verdicts.format_measured(v.measured, v.threshold.unit)} {v.threshold.comparison} "
                      f"{v.threshold.display} ({v.threshold.severity}: {_ROUTES.get(v.threshold.severity, '?')})",
                      highlight=False, soft_wrap=True)


def _print_alerts(console: Console, prom: PrometheusRun) -> None:
    console.print()
    if prom.skipped:
        console.print(f"[yellow]Alerts not checked:[/] {prom.skipped}", highlight=False, soft_wrap=True)
        return
    console.print(f"[bold]Alerts at the end of the demo[/] (Prometheus {prom.prometheus_url}/alerts, Alertmanager "
                  f"{prom.alertmanager_url}; rules with windows {prom.window}, for {prom.for_}):", highlight=False,
                  soft_wrap=True)
    if not prom.alerts:
        console.print("  none", highlight=False)
    for a in prom.alerts:
        where = " / ".join(x for x in (a.agent, a.tool) if x) or "-"
        routed = f"-> {', '.join(a.receivers)}" if a.receivers else "(not in Alertmanager)"
        note = "  (always firing: proves Prometheus -> Alertmanager works)" if a.alert == "Watchdog" else ""
        style = ("bold red" if a.severity == "critical" else "yellow") if a.state == "firing" else "default"
        console.print(f"  [{style}]{a.state:<8}[/] {a.alert:<24} {where:<26} {a.severity:<9} {routed}{note}",
                      highlight=False, soft_wrap=True)
    if prom.predicted and not prom.missing:
        console.print("[green]Every WOULD FIRE row of the threshold table fired.[/]", highlight=False)
    elif prom.missing:
        missing = ", ".join(f"{alert} for {agent}" for alert, agent in prom.missing)
        console.print(f"[yellow]Predicted but not firing (yet):[/] {missing}", highlight=False, soft_wrap=True)
    if prom.kept_running:
        console.print(f"Still running: agentwatch check --prometheus {prom.prometheus_url}   ·   stop with: "
                      f"agentwatch stack down --state-dir {prom.state_dir}", highlight=False, soft_wrap=True)
