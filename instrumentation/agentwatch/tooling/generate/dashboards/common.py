"""What the four dashboards share besides panels: the query scope (thresholds.yaml `queries`), the template
variables it implies, the PromQL shapes of the panels and the dashboard frame.

Variables are chained as in kubernetes-mixin (cluster -> namespace -> ...): `datasource`, then one variable
per aggregation label in the configured order, then `job` (unless it is one of them), then `agent` / `model`;
each variable's values are narrowed by the ones before it. Every panel selector carries the selector and the
matchers of every variable of its dashboard, so the variables separate, say, two same-named agents in two
clusters; every grouped panel also groups by the aggregation labels, so with "All" selected they still show
as two series.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agentwatch import semconv as sc
from agentwatch.tooling.generate import promql as q
from agentwatch.tooling.generate.dashboards.panels import AGENT, MODEL, RANGE, RATE, builders, datasource, models
from agentwatch.tooling.generate.links import DASHBOARD_UIDS
from agentwatch.thresholds import Thresholds

TAG = "agentwatch"
JOB = "job"
RUNS = sc.PROM_INVOKE_AGENT_DURATION + sc.PROM_COUNT_SUFFIX
CALLS = sc.PROM_CLIENT_OPERATION_DURATION + sc.PROM_COUNT_SUFFIX
# The variables named after what they select rather than after their label.
NAMED = {"agent": AGENT, "model": MODEL}


def matcher(variable: str) -> str:
    """`label=~"$variable"`: with the all-value ".*" it also matches series without the label."""
    return f'{NAMED.get(variable, variable)}=~"${variable}"'


@dataclass(frozen=True)
class Context:
    """The threshold table and the query scope one set of dashboards is built for. `scope` keeps the
    aggregation labels only: the selector goes into `where`, with the variables' matchers."""

    table: Thresholds
    scope: q.Scope
    selector: str = ""

    @classmethod
    def of(cls, table: Thresholds) -> "Context":
        full = q.Scope.of(table)
        return cls(table, q.Scope(labels=full.labels), full.selector)

    @property
    def chain(self) -> tuple[str, ...]:
        """The label variables in order, each narrowing the next: the aggregation labels, then job."""
        labels = self.scope.labels
        return labels if JOB in labels else (*labels, JOB)

    def where(self, *variables: str) -> str:
        """The selector and the matchers of the chain and of `variables` (agent, model), for a panel selector."""
        return q.labels(self.selector, *(matcher(v) for v in (*self.chain, *variables)))

    @property
    def agent_where(self) -> str:
        """Agent-level series: runs, tools, cost and tokens per run."""
        return self.where("agent")

    @property
    def llm_where(self) -> str:
        """LLM-call series (they carry no agent label)."""
        return self.where("model")

    def by(self, *labels: str) -> str:
        """A grouping that keeps the aggregation labels apart: by(MODEL) -> "cluster, gen_ai_request_model"."""
        return self.scope.by(*labels)

    def legend(self, text: str) -> str:
        """A legend led by the aggregation labels: "{{cluster}} · " + text."""
        return " · ".join(["{{%s}}" % label for label in self.scope.labels] + [text])


# --- PromQL shapes of the panels ----------------------------------------------------------------------
def total(by: str, inner: str) -> str:
    return f"sum by ({by}) ({inner})" if by else f"sum({inner})"


def sum_rate(series: str, by: str, *matchers: str, window: str = RATE) -> str:
    return total(by, f"rate({q.selector(series, *matchers)}[{window}])")


def sum_increase(series: str, by: str, *matchers: str, window: str = RANGE) -> str:
    return total(by, f"increase({q.selector(series, *matchers)}[{window}])")


def or_zero(part: str, whole: str, on: str) -> str:
    """`part`, and 0 for every `on` group of `whole` (its traffic) without a `part` series: an error panel of a
    healthy fleet shows 0 for each provider, model, agent or tool, not "No data". Without traffic it stays
    empty. `part` may group by more labels (error.type) than `on`."""
    modifier = f" on ({on})" if on else ""
    return f"{part}\nor{modifier}\n0 * {whole}\n"


def share(series: str, failed: str, where: str) -> str:
    """Fleet-wide share of `series` matching `failed`: 0 when nothing matches, NaN without traffic."""
    part = sum_rate(series, "", failed, where)
    whole = sum_rate(series, "", where)
    return f"(\n  {part}\n  or\n  0 * {whole}\n)\n/\n{whole}\n"


# --- variables and the dashboard frame ----------------------------------------------------------------
def _query_variable(name: str, label: str, description: str, query: str) -> Any:
    return (builders.QueryVariable(name).label(label).description(description).datasource(datasource())
            .query(query).refresh(models.VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(models.VariableSort.ALPHABETICAL_ASC).multi(True).include_all(True).all_value(".*")
            .current(models.VariableOption(text="All", value="$__all")))


def _label_variable(ctx: Context, position: int) -> Any:
    label = ctx.chain[position]
    before = q.labels(ctx.selector, *(matcher(v) for v in ctx.chain[:position]))
    series = q.labels(f'__name__=~"{RUNS}|{CALLS}"', before)
    if label == JOB:
        return _query_variable(JOB, "Job", "Prometheus job (scrape target group) of the agents.",
                               f"label_values({{{series}}}, {JOB})")
    return _query_variable(label, label, f"Label {label} of the agents' series (thresholds.yaml "
                                         "queries.aggregation_labels): every panel keeps its values apart.",
                           f"label_values({{{series}}}, {label})")


def variables(ctx: Context, kinds: tuple[str, ...]) -> list[Any]:
    """datasource, the chained label variables, then `kinds` (agent, model), then the traces and logs ones."""
    out = [builders.DatasourceVariable("datasource").label("Prometheus").type("prometheus")
           .description("The Prometheus (or Mimir, Thanos) datasource that scrapes the agents.")]
    out += [_label_variable(ctx, i) for i in range(len(ctx.chain))]
    chained = ctx.where()
    if "agent" in kinds:
        out.append(_query_variable("agent", "Agent", "Agent name (gen_ai.agent.name) of the runs and tool calls.",
                                   f"label_values({q.selector(RUNS, chained)}, {AGENT})"))
    if "model" in kinds:
        out.append(_query_variable("model", "Model", "Requested model (gen_ai.request.model) of the LLM calls.",
                                   f"label_values({q.selector(CALLS, chained)}, {MODEL})"))
    out.append(builders.DatasourceVariable("traces").label("Traces").type("tempo")
               .description("Tempo datasource the panel links open failing runs, tools and calls in."))
    out.append(builders.DatasourceVariable("logs").label("Logs").type("elasticsearch")
               .description("Elasticsearch datasource with agentwatch's JSON (ECS) log records."))
    return out


def dashboard(ctx: Context, key: str, title: str, description: str, kinds: tuple[str, ...],
              items: list[Any]) -> "models.Dashboard":
    """The frame every dashboard has (uid, tags, time, variables, the link to the others) around `items`."""
    board = (builders.Dashboard(title).uid(DASHBOARD_UIDS[key]).description(description).tags([TAG])
             .time("now-6h", "now").refresh("1m").timezone("browser").editable()
             .tooltip(models.DashboardCursorSync.CROSSHAIR).variables(variables(ctx, kinds))
             .link(builders.DashboardLink("agentwatch dashboards").type(models.DashboardLinkType.DASHBOARDS)
                   .tags([TAG]).as_dropdown(True).include_vars(True).keep_time(True)))
    for panel_id, item in enumerate(items, start=1):
        item = item.id(panel_id)
        board = board.with_row(item) if isinstance(item, builders.Row) else board.with_panel(item)
    return board.build()


def generated(text: str) -> str:
    return (f"{text} Generated by `agentwatch generate` from the telemetry contract and the threshold table; "
            "change thresholds.yaml (or your override) and regenerate rather than editing it in Grafana.")
