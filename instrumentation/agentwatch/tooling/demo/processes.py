"""The demo agents as processes: each one under `opentelemetry-instrument`, with its own Prometheus port, JSON log
file and span file; started, polled for progress (without rereading its files), scraped once it reports
"done", released (its process may exit), and stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from agentwatch import config
from agentwatch import semconv as sc
from agentwatch.tooling.demo.output import plural
from agentwatch.tooling.demo.plan import Plan
from agentwatch.tooling.demo.results import DemoError
from agentwatch.tooling.demo.stub import StubServer

LINGER_SECONDS = 30.0  # an agent waits at most this long for its scrape; the runner releases it sooner
SCRAPE_TIMEOUT = 5.0


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
class AgentProcess:
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


def _child_env(agent: AgentProcess, endpoint: str | None) -> dict[str, str]:
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


def _stop(agents: list[AgentProcess]) -> None:
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


def _release(agent: AgentProcess) -> None:
    proc = agent.proc
    if proc is not None and proc.stdin is not None and not proc.stdin.closed:
        try:
            proc.stdin.close()
        except OSError:
            pass


def parse_run_line(line: str) -> dict[str, Any]:
    parts = line.split()
    info: dict[str, Any] = {"ok": len(parts) > 2 and parts[2] == "ok"}
    for part in parts[3:]:
        key, _, value = part.partition("=")
        if value.isdigit():
            info[key] = int(value)
    return info


def run_agents(team: list[AgentProcess], stub: StubServer, instrument: Path, plan: Plan, seed: int, failure_rate: float,
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


def _poll(agent: AgentProcess, progress: Progress, task: Any, console: Console, release: bool = True) -> None:
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
            console.print(f"  done  {agent.name:<9} {plural(len(agent.run_lines), 'run', 'runs')}, "
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
