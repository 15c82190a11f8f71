"""PromQL for the threshold signals: the recording rules every alert, dashboard and check reads.

Series and label names come from semconv (an OTel attribute `gen_ai.agent.name` is the Prometheus label
`gen_ai_agent_name`); the recording-rule names below are agentwatch's own and are spelled only here. They
follow the Prometheus convention `level:metric:operations`, e.g.
`gen_ai_agent_name:gen_ai_invoke_agent_success:ratio_rate15m`.

What a query selects and keeps apart is a `Scope`, made from thresholds.yaml `queries`: its selector goes into
every series selector and its aggregation labels (e.g. `cluster`) into every `by (...)` and `on (...)`, so two
agents with the same name in two clusters stay two series. The recording-rule names do not change with the
scope (as in kubernetes-mixin, where `cluster` is in every `by` but in no rule name): the dashboards, runbooks
and a user's own queries keep working when labels are added. The default scope (no selector, no labels)
gives the plain per-agent queries.

A failed run or tool call is one whose `error_type` label is not empty; the Prometheus exporter writes
`error_type=""` on the successful series of a family that has failed ones, a collector leaves the label out,
and `error_type=""` / `error_type!=""` match both the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from agentwatch import semconv as sc
from agentwatch.thresholds import QuerySettings, Thresholds


def prom_label(attribute: str) -> str:
    """The Prometheus label an OTel attribute becomes (dots and other punctuation turn into `_`)."""
    return "".join(c if c.isalnum() or c == "_" else "_" for c in attribute)


AGENT = prom_label(sc.GEN_AI_AGENT_NAME)
TOOL = prom_label(sc.GEN_AI_TOOL_NAME)
PROVIDER = prom_label(sc.GEN_AI_PROVIDER_NAME)
ERROR = prom_label(sc.ERROR_TYPE)

RUNS = f"{sc.PROM_INVOKE_AGENT_DURATION}_count"
TOOL_CALLS = f"{sc.PROM_EXECUTE_TOOL_DURATION}_count"
LLM_CALLS = f"{sc.PROM_CLIENT_OPERATION_DURATION}_count"
FAILED = f'{ERROR}!=""'
SUCCEEDED = f'{ERROR}=""'
SPEND_WINDOW = "1d"


def num(value: float) -> str:
    """A number as PromQL reads it: 0.9, 15, 50000, 80 (no float noise such as 79.99999999999999)."""
    value = float(f"{value:.12g}")
    return str(int(value)) if value == int(value) else repr(value)


@dataclass(frozen=True)
class Rule:
    record: str
    expr: str


# --- recording-rule names -------------------------------------------------------------------------------
def runs_rate(window: str) -> str:
    return f"{AGENT}:gen_ai_invoke_agent_runs:rate{window}"


def success_ratio(window: str) -> str:
    return f"{AGENT}:gen_ai_invoke_agent_success:ratio_rate{window}"


def steps_mean(window: str) -> str:
    return f"{AGENT}:{sc.PROM_INVOKE_AGENT_INFERENCE_CALLS}:mean{window}"


def latency_p99(window: str) -> str:
    return f"{AGENT}:{sc.PROM_INVOKE_AGENT_DURATION}:p99_rate{window}"


def tokens_mean(window: str) -> str:
    return f"{AGENT}:{sc.PROM_AGENT_TOKEN_USAGE}:mean{window}"


def cost_mean(window: str) -> str:
    return f"{AGENT}:{sc.PROM_AGENT_COST}:mean{window}"


def tool_calls_rate(window: str) -> str:
    return f"{AGENT}_{TOOL}:gen_ai_execute_tool_calls:rate{window}"


def tool_error_ratio(window: str) -> str:
    return f"{AGENT}_{TOOL}:gen_ai_execute_tool_errors:ratio_rate{window}"


def provider_calls_rate(window: str) -> str:
    return f"{PROVIDER}:gen_ai_client_operations:rate{window}"


def provider_error_ratio(window: str) -> str:
    return f"{PROVIDER}:gen_ai_client_operation_errors:ratio_rate{window}"


def spend() -> str:
    return f":{sc.PROM_LLM_COST.removesuffix('_total')}:increase{SPEND_WINDOW}"


# --- building blocks ------------------------------------------------------------------------------------
def selector(series: str, *matchers: str) -> str:
    """`series{m1, m2}` with the non-empty matchers, or the bare series name."""
    inner = ", ".join(m for m in matchers if m)
    return f"{series}{{{inner}}}" if inner else series


def labels(*names: str) -> str:
    """A `by (...)` / `on (...)` label list from the non-empty names: labels("cluster", AGENT)."""
    return ", ".join(n for n in names if n)


def quantile(phi: float, histogram: str, window: str, by: str, where: str = "") -> str:
    """The phi-quantile of a histogram (its base name, without `_bucket`) per `by` ("" for one over all)."""
    return (f"histogram_quantile({num(phi)}, sum by ({labels(by, 'le')}) "
            f"(rate({selector(histogram + '_bucket', where)}[{window}])))")


# Per signal: (the recorded series the alert compares, the rate that says the agent had traffic, the labels
# the two are matched on besides the scope's).
SIGNAL_SERIES = {
    "success_rate": (success_ratio, runs_rate, AGENT),
    "steps_per_run": (steps_mean, runs_rate, AGENT),
    "p99_latency": (latency_p99, runs_rate, AGENT),
    "tokens_per_run": (tokens_mean, runs_rate, AGENT),
    "cost_per_run": (cost_mean, runs_rate, AGENT),
    "tool_error_rate": (tool_error_ratio, tool_calls_rate, f"{AGENT}, {TOOL}"),
}


@dataclass(frozen=True)
class Scope:
    """thresholds.yaml `queries` as PromQL: `selector` goes into every series selector, `labels` lead every
    `by (...)` and `on (...)` of a grouped query."""

    selector: str = ""
    labels: tuple[str, ...] = ()

    @classmethod
    def of(cls, table: Thresholds | QuerySettings) -> "Scope":
        settings = table.queries if isinstance(table, Thresholds) else table
        return cls(settings.selector, tuple(settings.aggregation_labels))

    def by(self, *names: str) -> str:
        """The scope's labels, then `names`: by("a, b") -> "cluster, a, b"; by() -> "cluster"."""
        return labels(*self.labels, *names)

    def select(self, series: str, matcher: str = "", where: str = "") -> str:
        """`series{matcher, <scope selector>, where}`: `where` narrows further (dashboard variables)."""
        return selector(series, matcher, self.selector, where)

    # --- the shapes every signal takes ------------------------------------------------------------------
    def rate(self, series: str, window: str, by: str, matcher: str = "", where: str = "") -> str:
        return f"sum by ({self.by(by)}) (rate({self.select(series, matcher, where)}[{window}]))"

    def share(self, series: str, window: str, by: str, matcher: str, where: str = "") -> str:
        """Share of `series` with `matcher`; 0 (not "no data") when nothing matches, NaN when there is no
        traffic."""
        part = self.rate(series, window, by, matcher, where)
        whole = self.rate(series, window, by, where=where)
        return f"(\n  {part}\n  or\n  0 * {whole}\n)\n/\n{whole}\n"

    def mean(self, histogram: str, window: str, by: str, where: str = "") -> str:
        return (f"{self.rate(histogram + '_sum', window, by, where=where)}\n/\n"
                f"{self.rate(histogram + '_count', window, by, where=where)}\n")

    def quantile(self, phi: float, histogram: str, window: str, by: str, where: str = "") -> str:
        return quantile(phi, histogram, window, self.by(by), labels(self.selector, where))

    # --- the expressions of the recording rules -----------------------------------------------------------
    def runs_rate(self, window: str, where: str = "") -> str:
        return self.rate(RUNS, window, AGENT, where=where)

    def success_ratio(self, window: str, where: str = "") -> str:
        return self.share(RUNS, window, AGENT, SUCCEEDED, where)

    def steps_mean(self, window: str, where: str = "") -> str:
        return self.mean(sc.PROM_INVOKE_AGENT_INFERENCE_CALLS, window, AGENT, where)

    def latency_p99(self, window: str, where: str = "") -> str:
        return self.quantile(0.99, sc.PROM_INVOKE_AGENT_DURATION, window, AGENT, where)

    def tokens_mean(self, window: str, where: str = "") -> str:
        return self.mean(sc.PROM_AGENT_TOKEN_USAGE, window, AGENT, where)

    def cost_mean(self, window: str, where: str = "") -> str:
        return self.mean(sc.PROM_AGENT_COST, window, AGENT, where)

    def tool_calls_rate(self, window: str, where: str = "") -> str:
        return self.rate(TOOL_CALLS, window, f"{AGENT}, {TOOL}", where=where)

    def tool_error_ratio(self, window: str, where: str = "") -> str:
        return self.share(TOOL_CALLS, window, f"{AGENT}, {TOOL}", FAILED, where)

    def provider_calls_rate(self, window: str, where: str = "") -> str:
        return self.rate(LLM_CALLS, window, PROVIDER, where=where)

    def provider_error_ratio(self, window: str, where: str = "") -> str:
        return self.share(LLM_CALLS, window, PROVIDER, FAILED, where)

    def spend(self, where: str = "") -> str:
        """The fleet's LLM spend over the rolling day: one sum over the selection (the budget is the fleet's)."""
        return f"sum(increase({self.select(sc.PROM_LLM_COST, where=where)}[{SPEND_WINDOW}]))"

    def telemetry_absent(self, window: str) -> str:
        """Agents seen within `window` whose run metrics are gone now (process stopped, or scrape failing)."""
        by, runs = self.by(AGENT), self.select(RUNS)
        return (f"group by ({by}) (present_over_time({runs}[{window}]))\n"
                f"unless on ({by})\ngroup by ({by}) ({runs})\n")

    def expression(self, name_of: Callable[[str], str], window: str, where: str = "") -> str:
        """The expression recorded as `name_of(window)`, e.g. expression(success_ratio, "15m")."""
        return getattr(self, name_of.__name__)(window, where)

    def recording_rule(self, name_of: Callable[[str], str], window: str) -> Rule:
        """The recording rule named `name_of(window)`, e.g. recording_rule(success_ratio, "15m")."""
        return Rule(name_of(window), self.expression(name_of, window))

    def signal_query(self, signal: str, window: str, where: str = "") -> str:
        """The raw PromQL for a signal per agent (per agent and tool for tool_error_rate), without recording
        rules: for dashboards and `agentwatch check` against a Prometheus that has not loaded agentwatch's
        rules. `where` narrows every selector (dashboard variables), e.g. 'job=~"$job"'."""
        return self.expression(SIGNAL_SERIES[signal][0], window, where)

    def signal_on(self, signal: str) -> str:
        """The labels an alert matches its value and its traffic guard on."""
        return self.by(SIGNAL_SERIES[signal][2])


DEFAULT = Scope()


def recording_rule(name_of: Callable[[str], str], window: str, scope: Scope = DEFAULT) -> Rule:
    return scope.recording_rule(name_of, window)


def signal_query(signal: str, window: str, where: str = "", scope: Scope = DEFAULT) -> str:
    """Scope.signal_query for a scope (default: no selector, no extra labels)."""
    return scope.signal_query(signal, window, where)
