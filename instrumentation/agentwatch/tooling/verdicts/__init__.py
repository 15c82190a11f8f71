"""The threshold table, measured: per agent and signal, the value, the threshold and whether it is breached.

Two sources, one table:

* `from_records()`: exactly, from agentwatch's JSON log records (`gen_ai.invoke_agent` run records with their
  totals, `gen_ai.execute_tool` tool records). `agentwatch demo` prints this.
* `from_prometheus()`: from any Prometheus, with the very PromQL the alerts use
  (`agentwatch.tooling.generate.promql.signal_query`) over each signal's window. `agentwatch check` prints this.

Both follow the metric definitions, so they agree up to what Prometheus itself approximates (rates over
windows, p99 interpolated within a histogram bucket):

| signal | value |
|---|---|
| success_rate | successful runs / runs |
| steps_per_run | mean LLM calls per run |
| p99_latency | 99th percentile of run duration (records: nearest rank; Prometheus: histogram_quantile) |
| tokens_per_run | mean input + output tokens per run, over runs whose usage is known |
| cost_per_run | mean cost per run, over runs whose cost is known |
| tool_error_rate | failed / all calls per tool; the agent's row shows its worst tool (the alert is per tool) |

An agent with no traffic for a signal has no value ("no data") and never breaches. With aggregation labels in
thresholds.yaml `queries` (e.g. cluster), a verdict is per agent and label values, as the alerts are: two
agents named `support` in two clusters get a row each.

    report.py    Verdict and Report (the table as data, `to_dict()` for JSON)
    measure.py   from_records() and from_prometheus(): the calculation
    render.py    the table for a terminal (rich), the one-line summary
"""

from agentwatch.tooling.prometheus import PrometheusError
from agentwatch.tooling.verdicts.measure import from_prometheus, from_records
from agentwatch.tooling.verdicts.render import format_measured, render, summary_line
from agentwatch.tooling.verdicts.report import BREACHED, LABELS, NO_DATA, OK, Report, Verdict

__all__ = ["BREACHED", "LABELS", "NO_DATA", "OK", "PrometheusError", "Report", "Verdict", "format_measured",
           "from_prometheus", "from_records", "render", "summary_line"]
