"""PromQL for the threshold signals: the recording rules every alert, dashboard and check reads.

Series and label names come from semconv (an OTel attribute `gen_ai.agent.name` is the Prometheus label
`gen_ai_agent_name`); the recording-rule names below are agentwatch's own and are spelled only here. They
follow the Prometheus convention `level:metric:operations`, e.g.
`gen_ai_agent_name:gen_ai_invoke_agent_success:ratio_rate15m`.

A failed run or tool call is one whose `error_type` label is not empty; the Prometheus exporter writes
`error_type=""` on the successful series of a family that has failed ones, a collector leaves the label out,
and `error_type=""` / `error_type!=""` match both the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from agentwatch import semconv as sc


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


# --- their expressions ----------------------------------------------------------------------------------
# `where` (optional) adds label matchers to every selector, e.g. 'job=~"$job"' for a dashboard variable; the
# rules use none.
def selector(series: str, *matchers: str) -> str:
    """`series{m1, m2}` with the non-empty matchers, or the bare series name."""
    inner = ", ".join(m for m in matchers if m)
    return f"{series}{{{inner}}}" if inner else series


def _rate(series: str, window: str, by: str, matcher: str = "", where: str = "") -> str:
    return f"sum by ({by}) (rate({selector(series, matcher, where)}[{window}]))"


def _share(series: str, window: str, by: str, matcher: str, where: str = "") -> str:
    """Share of `series` with `matcher`; 0 (not "no data") when nothing matches, NaN when there is no traffic."""
    part = _rate(series, window, by, matcher, where)
    whole = _rate(series, window, by, where=where)
    return f"(\n  {part}\n  or\n  0 * {whole}\n)\n/\n{whole}\n"


def _mean(histogram: str, window: str, by: str, where: str = "") -> str:
    return (f"{_rate(histogram + '_sum', window, by, where=where)}\n/\n"
            f"{_rate(histogram + '_count', window, by, where=where)}\n")


def quantile(phi: float, histogram: str, window: str, by: str, where: str = "") -> str:
    """The phi-quantile of a histogram (its base name, without `_bucket`) per `by`."""
    by_le = f"{by}, le" if by else "le"
    return f"histogram_quantile({num(phi)}, {_rate(histogram + '_bucket', window, by_le, where=where)})"


def expr_runs_rate(window: str, where: str = "") -> str:
    return _rate(RUNS, window, AGENT, where=where)


def expr_success_ratio(window: str, where: str = "") -> str:
    return _share(RUNS, window, AGENT, SUCCEEDED, where)


def expr_steps_mean(window: str, where: str = "") -> str:
    return _mean(sc.PROM_INVOKE_AGENT_INFERENCE_CALLS, window, AGENT, where)


def expr_latency_p99(window: str, where: str = "") -> str:
    return quantile(0.99, sc.PROM_INVOKE_AGENT_DURATION, window, AGENT, where)


def expr_tokens_mean(window: str, where: str = "") -> str:
    return _mean(sc.PROM_AGENT_TOKEN_USAGE, window, AGENT, where)


def expr_cost_mean(window: str, where: str = "") -> str:
    return _mean(sc.PROM_AGENT_COST, window, AGENT, where)


def expr_tool_calls_rate(window: str, where: str = "") -> str:
    return _rate(TOOL_CALLS, window, f"{AGENT}, {TOOL}", where=where)


def expr_tool_error_ratio(window: str, where: str = "") -> str:
    return _share(TOOL_CALLS, window, f"{AGENT}, {TOOL}", FAILED, where)


def expr_provider_calls_rate(window: str, where: str = "") -> str:
    return _rate(LLM_CALLS, window, PROVIDER, where=where)


def expr_provider_error_ratio(window: str, where: str = "") -> str:
    return _share(LLM_CALLS, window, PROVIDER, FAILED, where)


def expr_spend(where: str = "") -> str:
    return f"sum(increase({selector(sc.PROM_LLM_COST, where)}[{SPEND_WINDOW}]))"


def expr_telemetry_absent(window: str) -> str:
    """Agents seen within `window` whose run metrics are gone now (process stopped, or scrape failing)."""
    return (f"group by ({AGENT}) (present_over_time({RUNS}[{window}]))\n"
            f"unless on ({AGENT})\ngroup by ({AGENT}) ({RUNS})\n")


# Per signal: (the recorded series the alert compares, the rate that says the agent had traffic, labels).
SIGNAL_SERIES = {
    "success_rate": (success_ratio, runs_rate, AGENT),
    "steps_per_run": (steps_mean, runs_rate, AGENT),
    "p99_latency": (latency_p99, runs_rate, AGENT),
    "tokens_per_run": (tokens_mean, runs_rate, AGENT),
    "cost_per_run": (cost_mean, runs_rate, AGENT),
    "tool_error_rate": (tool_error_ratio, tool_calls_rate, f"{AGENT}, {TOOL}"),
}
_EXPRESSIONS = {
    runs_rate: expr_runs_rate, success_ratio: expr_success_ratio, steps_mean: expr_steps_mean,
    latency_p99: expr_latency_p99, tokens_mean: expr_tokens_mean, cost_mean: expr_cost_mean,
    tool_calls_rate: expr_tool_calls_rate, tool_error_ratio: expr_tool_error_ratio,
    provider_calls_rate: expr_provider_calls_rate, provider_error_ratio: expr_provider_error_ratio,
}


def recording_rule(name_of, window: str) -> Rule:
    """The recording rule named `name_of(window)`, e.g. recording_rule(success_ratio, "15m")."""
    return Rule(name_of(window), _EXPRESSIONS[name_of](window))


def signal_query(signal: str, window: str, where: str = "") -> str:
    """The raw PromQL for a signal per agent (per agent and tool for tool_error_rate), without recording rules:
    for dashboards and `agentwatch check` against a Prometheus that has not loaded agentwatch's rules. `where`
    narrows every selector (dashboard variables), e.g. 'job=~"$job"'."""
    name_of = SIGNAL_SERIES[signal][0]
    return _EXPRESSIONS[name_of](window, where)
