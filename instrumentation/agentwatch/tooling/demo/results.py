"""What a demo run produced: per-agent and per-model summaries, the alerts of --with-prometheus, the whole
result (`summary.json` is `DemoResult.to_dict()`), and the one error the CLI reports as a line."""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field
from typing import Any

from agentwatch import semconv as sc
from agentwatch.tooling import verdicts

# --with-prometheus: alert windows and `for` short enough to fire during the demo (the threshold values
# themselves are the user's).
DEMO_WINDOW = "1m"
DEMO_FOR = "5s"
# The series the demo proves are served (names from the telemetry contract, never spelled here).
REQUIRED_SERIES = (sc.PROM_CLIENT_OPERATION_DURATION + "_bucket", sc.PROM_LLM_COST)


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
