"""The threshold table for a person: a rich table (agent, signal, measured, threshold, verdict, severity) and a
one-line summary."""

from __future__ import annotations

import math
from collections import defaultdict

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from agentwatch.tooling.verdicts.report import BREACHED, NO_DATA, OK, Report, Verdict


def format_measured(value: float | None, unit: str) -> str:
    if value is None or math.isnan(value):
        return "no data"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if unit == "ratio":
        return f"{value * 100:.1f}%"
    if unit == "s":
        return f"{value:.2f}s" if value < 100 else f"{value:,.0f}s"
    if unit == "USD":
        if value == 0 or value >= 0.01:
            return f"${value:,.4f}"
        return f"${value:.{1 - math.floor(math.log10(abs(value)))}f}"
    if unit == "{token}":
        return f"{value:,.0f}"
    return f"{value:,.1f}"


def render(report: Report, console: Console, *, title: str, breached_word: str = "BREACHED",
           note: str | None = None) -> None:
    """The table: agent (and its aggregation labels), signal, measured, threshold, verdict (OK / breached_word /
    no data), severity."""
    table = Table(title=title, title_justify="left", title_style="bold", header_style="bold", box=box.ROUNDED)
    label_names = list(dict.fromkeys(name for _, labels in report.subjects for name, _ in labels))
    for name, justify in ((*((n, "left") for n in label_names), ("Agent", "left"), ("Signal", "left"),
                           ("Measured", "right"), ("Threshold", "right"), ("Verdict", "left"), ("Severity", "left"))):
        table.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    by_subject: dict[tuple[str, tuple[tuple[str, str], ...]], list[Verdict]] = defaultdict(list)
    for v in report.verdicts:
        by_subject[(v.agent, tuple(v.labels.items()))].append(v)
    for subject in report.subjects:
        agent, labels = subject[0], dict(subject[1])
        rows = by_subject[subject]
        for i, v in enumerate(rows):
            t = v.threshold
            measured = format_measured(v.measured, t.unit)
            if v.tool and v.status != NO_DATA and v.measured:
                measured += f" ({v.tool})"  # the worst tool, when any failed
            status = v.status
            if status == BREACHED:
                style = "bold red" if t.severity == "critical" else "bold yellow"
                verdict = Text(breached_word, style=style)
            elif status == OK:
                verdict = Text("OK", style="green")
            else:
                verdict = Text("no data", style="dim")
            table.add_row(*(labels.get(n, "") if i == 0 else "" for n in label_names),
                          Text(agent, style="bold") if i == 0 else "", v.label,
                          Text(measured, style="dim" if status == NO_DATA else ""), f"{t.comparison} {t.display}",
                          verdict, Text(t.severity, style="red" if t.severity == "critical" and status == BREACHED
                                        else ""), end_section=i == len(rows) - 1)
    console.print(table)
    if note:
        console.print(note, highlight=False, soft_wrap=True)


def summary_line(report: Report, breached_word: str = "breached") -> str:
    """One line: how many thresholds are breached, which critical ones."""
    breached = report.breached
    if not report.agents:
        return "no agents found"
    if not breached:
        return f"all {len(report.subjects)} agents within every threshold"
    parts = [f"{v.agent}" + "".join(f" {k}={x}" for k, x in v.labels.items()) + f" {v.label}"
             + (f" ({v.tool})" if v.tool else "") + f" [{v.threshold.severity}]" for v in breached]
    return f"{len(breached)} threshold(s) {breached_word}: " + ", ".join(parts)
