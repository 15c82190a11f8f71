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

import importlib.util
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Iterable

from rich.console import Console

from agentwatch import config
from agentwatch import thresholds
from agentwatch.pricing import PriceBook, PricingConfigError
from agentwatch.thresholds import Thresholds
from agentwatch.tooling import stack, verdicts
from agentwatch.tooling.demo.output import print_summary
from agentwatch.tooling.demo.plan import Plan, plan_runs
from agentwatch.tooling.demo.processes import AgentProcess, parse_run_line, run_agents
from agentwatch.tooling.demo.records import add_run_totals, read_records, summarize_logs
from agentwatch.tooling.demo.results import REQUIRED_SERIES, AgentSummary, DemoError, DemoResult, ModelSummary
from agentwatch.tooling.demo.stub import StubServer
from agentwatch.tooling.demo.with_prometheus import await_alerts, demo_thresholds, start_prometheus
from agentwatch.tooling.stack import port_in_use

__all__ = ["AGENTS", "AgentSummary", "DemoError", "DemoResult", "ModelSummary", "Plan", "demo_thresholds", "make_console",
           "plan_runs", "run_demo", "summarize_logs"]

# The agents of agentwatch.tooling.demo.agents (not imported from there: it loads both LLM SDKs, and the runner
# process itself needs neither).
AGENTS = ("support", "research", "flaky", "costly")
DEFAULT_SEED = 7
DEFAULT_FAILURE_RATE = 0.3
DEFAULT_PROMETHEUS_PORT = 9464
DEFAULT_OUT_DIR = ".agentwatch/demo"
STUB_LATENCY = 0.02
STUB_CHUNK_DELAY = 0.002


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
        AgentProcess(
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
    prom = start_prometheus(out, team, table, console) if with_prometheus else None
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
            before_release = (lambda: await_alerts(prom, team, table, console)) if live else None
            run_agents(team, stub, instrument, plan, seed, failure_rate, endpoint, console, started, timeout,
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
        add_run_totals(summary, records)
        summary.retries = sum(parse_run_line(line).get("retries", 0) for line in agent.run_lines)
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
    print_summary(console, result)

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
