"""Runbooks, `alerts/runbooks/<AlertName>.md`: what an alert means, where to look, what to do.

The numbers (threshold, window, `for`, budget) and the recorded series come from the threshold table and
promql.py, so a runbook never disagrees with the rule that links to it.
"""

from __future__ import annotations

from typing import Callable

from agentwatch import semconv as sc
from agentwatch.tooling.generate import promql as q
from agentwatch.tooling.generate.alertmanager import CHAT, DEADMAN, NULL, PAGER
from agentwatch.tooling.generate.links import DASHBOARD_UIDS, dashboard_url
from agentwatch.thresholds import FleetAlert, Threshold, Thresholds, format_value

_ROUTE = {"critical": f"pages on-call (receiver `{PAGER}`)", "warning": f"posts to team chat (receiver `{CHAT}`)",
          "info": f"goes nowhere (receiver `{NULL}`)"}
_DASHBOARD_TITLES = {"agents": "Agent overview", "llm": "LLM calls", "tools": "Tools", "cost": "Cost"}
_RUN_LOG = (f"the JSON log records with `event.action: {sc.LOG_EVENT_AGENT_RUN}` and "
            f"`{sc.GEN_AI_AGENT_NAME}: <agent>`")
_TOOL_LOG = f"the JSON log records with `event.action: {sc.LOG_EVENT_TOOL_CALL}`"

# Causes every agent runbook draws from, by key.
CAUSES = {
    "provider": "**Provider outage or rate limiting.** The LLM provider returns 5xx, 429 or times out; every "
                "agent on that provider degrades at once. Check `LLMProviderFailing` and the provider's status page.",
    "model": "**Model degradation or a model change.** A new model version (or an alias such as `gpt-4o` that "
             f"moved), a lower `max_tokens`, or a changed system prompt. Compare `{sc.GEN_AI_RESPONSE_MODEL}` on "
             "recent spans with last week's.",
    "tools": "**Failing tools.** A downstream API, database or MCP server the tools call is down or changed its "
             "contract; the agent retries or gives up. See `AgentToolErrorRateHigh` and the Tools dashboard.",
    "loop": "**Infinite or long loops.** The agent keeps calling the model or the same tool without converging "
            "(a tool result it cannot parse, a stop condition that never holds). Look for runs whose "
            f"`{sc.GEN_AI_INVOKE_AGENT_INFERENCE_CALLS_ATTR}` sits far above the median.",
    "tokens": "**Token explosion.** The context grows with every step (whole tool outputs or documents appended "
              "to the conversation, retrieval returning too much, a memory that is never trimmed).",
    "injection": "**Prompt injection or abusive input.** Content from users, web pages or tool results tells the "
                 "agent to do something else: loop, call tools it should not, or produce huge outputs. Check the "
                 "inputs of the worst runs (content capture, if enabled) and the tools they called.",
    "deploy": "**A deploy of the agent itself.** A code, prompt or dependency change shipped just before the "
              "alert started. Compare the alert's start with your deploy history.",
    "budget": "**Budgets stopping runs.** Runs ended with `error.type=budget_exceeded` hit a per-run budget "
              "(`budget=` or `AGENTWATCH_RUN_MAX_*`): the agent needed more than it is allowed.",
    "traffic": "**A traffic change.** A new customer, a batch job or a retry storm upstream changed the mix of "
               "tasks the agent gets.",
}


def _header(table: Thresholds, alert: Threshold | FleetAlert, fires_when: str, labels: str,
            dashboard: str | None, routing: str | None = None) -> str:
    routing = routing or f"{alert.severity}: {_ROUTE[alert.severity]}"
    lines = [
        f"# {alert.alert}",
        "",
        f"> {alert.summary}",
        "",
        "| | |",
        "|---|---|",
        f"| Severity | {routing} |",
        f"| Fires when | {fires_when} |",
        f"| Labels | {labels} |",
    ]
    if dashboard:
        url = dashboard_url(table, dashboard)
        lines.append(f"| Dashboard | [{_DASHBOARD_TITLES[dashboard]}]({url}) (uid `{DASHBOARD_UIDS[dashboard]}`) |")
    source = f"`signals.{alert.signal}`" if isinstance(alert, Threshold) else f"`fleet.{alert.key}`"
    lines.append(f"| Defined in | {source} of `thresholds.yaml`; rules in `alerts/rules/` |")
    return "\n".join(lines) + "\n"


def _section(title: str, body: str) -> str:
    return f"\n## {title}\n\n{body.strip()}\n"


def _list(items: list[str], numbered: bool = False) -> str:
    return "\n".join(f"{i}. {item}" if numbered else f"- {item}" for i, item in enumerate(items, 1))


def _query(*lines: str) -> str:
    return "```promql\n" + "\n".join(lines) + "\n```"


def _tuning(key: str, per_agent: bool = True) -> str:
    text = (f"Change the numbers under `{key}` in an override file (`AGENTWATCH_THRESHOLDS_FILE`, same shape as "
            "the bundled `thresholds.yaml`) and run `agentwatch generate`: the rules and this runbook follow "
            "(and, for the six signals, the histogram buckets and the dashboards). Do not edit the generated "
            "files: `agentwatch generate --check` fails on drift.")
    if per_agent:
        text += (" To silence one agent during planned work, add an Alertmanager silence on "
                 f"`{q.AGENT}` rather than changing the threshold.")
    return _section("Tuning", text)


def _signal(table: Thresholds, signal: str, meaning: str, impact: str, diagnosis: list[str], causes: list[str],
            mitigation: list[str]) -> str:
    t = table[signal]
    series, guard, labels = q.SIGNAL_SERIES[signal]
    word = "below" if t.comparison == "<" else "above"
    fires = (f"{t.description.lower()} is {word} {t.display} over {t.window}, for {t.for_}, "
             f"for an agent that had traffic in that window")
    dashboard = "tools" if signal == "tool_error_rate" else "agents"
    label_text = ", ".join(f"`{x.strip()}`" for x in labels.split(",")) + ", `severity`"
    out = _header(table, t, fires, label_text, dashboard)
    out += _section("What it means", meaning)
    out += _section("Impact", impact)
    out += _section("Diagnosis", _list(diagnosis, numbered=True) + "\n\nThe series the alert reads:\n\n" + _query(
        f"{series(t.window)}   # the measured value",
        f"{guard(t.window)}   # traffic: no traffic, no alert",
    ))
    out += _section("Likely causes", _list([CAUSES[c] for c in causes]))
    out += _section("Mitigation", _list(mitigation))
    return out + _tuning(f"signals.{signal}")


def success_rate(table: Thresholds) -> str:
    t = table["success_rate"]
    return _signal(
        table, "success_rate",
        meaning=(f"Fewer than {t.display} of the runs of the agent (label `{q.AGENT}`) succeeded over the last "
                 f"{t.window}. A run fails when its `invoke_agent` span ends with `{sc.ERROR_TYPE}` set: an exception escaped "
                 "`agent_run` (the exception class), `run.fail(...)` was called (its `error_type`), or a budget "
                 "stopped it (`budget_exceeded`)."),
        impact="Users of this agent get errors or no answer for a large share of their requests. Retries upstream "
               "may multiply load and cost.",
        diagnosis=[
            "Open the dashboard and find when the success rate dropped; note whether other agents dropped too "
            "(shared provider or tool) or only this one (its code, prompt or tools).",
            "Break the failures down by cause:\n\n   " + _query(
                f"sum by ({q.ERROR}) (rate({q.RUNS}{{{q.AGENT}=\"<agent>\", {q.FAILED}}}[{t.window}]))"
            ).replace("\n", "\n   "),
            f"Read {_RUN_LOG} and `event.outcome: failure`: `{sc.ERROR_TYPE}` and "
            f"`{sc.AGENTWATCH_RUN_FAILURE_REASON}` say why; `trace.id` opens the failing run's trace.",
            "In the trace, find the first span with status ERROR: an LLM call (provider), a tool call (tool) or "
            "the run itself (agent code).",
        ],
        causes=["provider", "tools", "budget", "model", "deploy", "injection"],
        mitigation=[
            "Provider failing: fail over to another provider or model if the agent supports it; lower "
            "concurrency if you are rate limited.",
            "A tool failing: disable or stub the tool, or roll back the service behind it.",
            "`budget_exceeded`: find out why runs need more (see AgentStepsHigh / AgentTokensPerRunHigh) before "
            "raising the budget.",
            "After a deploy: roll back the agent, its prompt or its model version.",
        ],
    )


def steps_per_run(table: Thresholds) -> str:
    t = table["steps_per_run"]
    return _signal(
        table, "steps_per_run",
        meaning=(f"Runs of the agent (label `{q.AGENT}`) made more than {t.display} per run on average over the last "
                 f"{t.window}. Each LLM call inside a run is one step (`{sc.GEN_AI_INVOKE_AGENT_INFERENCE_CALLS_ATTR}`"
                 " on the run's span); calls of sub-agents count for their parent."),
        impact="More steps means more latency, more tokens and more cost per task, and often a run that is not "
               "converging at all.",
        diagnosis=[
            "On the dashboard, compare steps per run with tokens per run and cost per run: all three rising "
            "together points to loops.",
            "Find the longest runs: the p99 of steps per run, and in the traces the `invoke_agent` spans with the "
            f"highest `{sc.GEN_AI_INVOKE_AGENT_INFERENCE_CALLS_ATTR}`:\n\n   " + _query(
                f"histogram_quantile(0.99, sum by (le) (rate({sc.PROM_INVOKE_AGENT_INFERENCE_CALLS}_bucket"
                f"{{{q.AGENT}=\"<agent>\"}}[{t.window}])))").replace("\n", "\n   "),
            "Open such a trace: does the agent call the same tool with the same arguments again and again? Does a "
            "tool fail and the model retry? Does the model ignore a tool result?",
            f"Check {_TOOL_LOG} for the agent's tools: failures that the model keeps retrying show up there.",
        ],
        causes=["loop", "tools", "model", "injection", "deploy", "traffic"],
        mitigation=[
            "Cap the steps: a per-run budget (`budget={\"inference_calls\": N}` or "
            "`AGENTWATCH_RUN_MAX_INFERENCE_CALLS`) stops runaway runs with `budget_exceeded`.",
            "Fix the loop: a clearer stop condition, tool results the model can parse, deduplicated tool calls.",
            "Roll back a prompt or model change that made the agent chattier.",
        ],
    )


def p99_latency(table: Thresholds) -> str:
    t = table["p99_latency"]
    return _signal(
        table, "p99_latency",
        meaning=(f"The slowest 1% of the runs of the agent (label `{q.AGENT}`) took longer than {t.display} "
                 f"over the last {t.window}. {t.display} is a bucket boundary of `{sc.PROM_INVOKE_AGENT_DURATION}`, so the "
                 "comparison is exact: more than 1% of runs took longer than the threshold."),
        impact="Users wait, requests time out upstream, and concurrency (and memory) builds up in the agent.",
        diagnosis=[
            "On the dashboard, compare p50, p95 and p99: if all rose, every run is slower (provider, tool or "
            "more steps); if only p99 rose, a minority of runs is stuck or looping.",
            "Is an LLM call slower? Check the provider's latency:\n\n   " + _query(
                f"histogram_quantile(0.99, sum by ({q.PROVIDER}, le) "
                f"(rate({sc.PROM_CLIENT_OPERATION_DURATION}_bucket[{t.window}])))").replace("\n", "\n   "),
            "Is a tool slower? Check tool latency for the agent:\n\n   " + _query(
                f"histogram_quantile(0.99, sum by ({q.TOOL}, le) "
                f"(rate({sc.PROM_EXECUTE_TOOL_DURATION}_bucket{{{q.AGENT}=\"<agent>\"}}[{t.window}])))"
            ).replace("\n", "\n   "),
            "Are there more steps per run (AgentStepsHigh)? Latency grows with the number of LLM calls.",
            f"Open the slowest traces (from {_RUN_LOG}, sorted by `event.duration`) and see which spans take "
            "the time.",
        ],
        causes=["provider", "tools", "loop", "tokens", "model", "traffic"],
        mitigation=[
            "Provider slow: switch to a faster model or region, use streaming, lower `max_tokens`.",
            "Tool slow: add timeouts to tool calls, cache results, scale the service behind the tool.",
            "Too many steps: see AgentStepsHigh; cap runs with a budget.",
            "Set a run timeout in the agent so one stuck run cannot hold resources forever.",
        ],
    )


def tokens_per_run(table: Thresholds) -> str:
    t = table["tokens_per_run"]
    return _signal(
        table, "tokens_per_run",
        meaning=(f"Runs of the agent (label `{q.AGENT}`) used more than {t.display} (input + output, all LLM "
                 f"calls of the run) on average over the last {t.window}. Runs with calls that reported no usage are left out."),
        impact="Cost and latency per run rise with tokens; a context that keeps growing eventually fails with "
               "context-length errors.",
        diagnosis=[
            "Input or output? Split the agent's LLM-call tokens by type:\n\n   " + _query(
                f"sum by ({prom_token_type()}) (rate({sc.PROM_CLIENT_TOKEN_USAGE}_sum[{t.window}]))"
            ).replace("\n", "\n   "),
            "Input tokens growing with each step of a run means the conversation is never trimmed; a jump in "
            "input tokens per call means a prompt or retrieval change.",
            "Output tokens high: the model writes long answers or reasoning (reasoning tokens count as output).",
            "Compare with steps per run: more steps at the same tokens per call is a loop (AgentStepsHigh).",
            f"Open the largest runs ({_RUN_LOG}, highest `{sc.GEN_AI_USAGE_INPUT_TOKENS}`) and their traces.",
        ],
        causes=["tokens", "loop", "injection", "model", "deploy"],
        mitigation=[
            "Trim or summarise the conversation, truncate tool outputs, limit retrieved documents.",
            "Set `max_tokens` on the calls; cap a run with `budget={\"tokens\": N}` or `AGENTWATCH_RUN_MAX_TOKENS`.",
            "Roll back a prompt or retrieval change that inflated the context.",
        ],
    )


def prom_token_type() -> str:
    return q.prom_label(sc.GEN_AI_TOKEN_TYPE)


def cost_per_run(table: Thresholds) -> str:
    t = table["cost_per_run"]
    return _signal(
        table, "cost_per_run",
        meaning=(f"Runs of the agent (label `{q.AGENT}`) cost more than {t.display} on average over the last "
                 f"{t.window}, summing the priced LLM calls of each run (prices from genai-prices or your price overrides). "
                 "Runs with an unpriced call are left out of the average."),
        impact="Spend grows faster than traffic; the daily budget alert (AgentDailySpendOverBudget) may follow.",
        diagnosis=[
            "Which model is the money going to?\n\n   " + _query(
                f"sum by ({q.prom_label(sc.GEN_AI_RESPONSE_MODEL)}) (rate({sc.PROM_LLM_COST}[{t.window}]))"
            ).replace("\n", "\n   "),
            "Did the agent switch to a more expensive model (a config change, a fallback after provider errors)?",
            "Are there more tokens per run (AgentTokensPerRunHigh) or more steps (AgentStepsHigh)?",
            f"Are calls unpriced? `{sc.PROM_PRICING_UNPRICED_CALLS}` rising means costs are missing, not lower.",
            f"Open the most expensive runs ({_RUN_LOG}, highest `{sc.AGENTWATCH_COST_USD}`).",
        ],
        causes=["tokens", "loop", "model", "injection", "deploy"],
        mitigation=[
            "Move simple steps to a cheaper model; use prompt caching for long stable prefixes.",
            "Cap a run with `budget={\"cost_usd\": N}` or `AGENTWATCH_RUN_MAX_COST_USD`.",
            "Fix the underlying token or step growth (see the linked runbooks).",
        ],
    )


def tool_error_rate(table: Thresholds) -> str:
    t = table["tool_error_rate"]
    return _signal(
        table, "tool_error_rate",
        meaning=(f"More than {t.display} of the calls of the agent (label `{q.AGENT}`) to the tool (label "
                 f"`{q.TOOL}`) failed over the last {t.window}. A tool call fails when its `execute_tool` span ends with `{sc.ERROR_TYPE}` "
                 "set (the tool raised)."),
        impact="The agent cannot do what the tool does: it answers without the data, retries (more steps and "
               "cost) or fails the run.",
        diagnosis=[
            "Which errors?\n\n   " + _query(
                f"sum by ({q.ERROR}) (rate({q.TOOL_CALLS}{{{q.AGENT}=\"<agent>\", {q.TOOL}=\"<tool>\", "
                f"{q.FAILED}}}[{t.window}]))").replace("\n", "\n   "),
            "Do other agents calling the same tool fail too? Then the service behind the tool is the problem.",
            f"Read {_TOOL_LOG}, `{sc.GEN_AI_TOOL_NAME}: <tool>` and `event.outcome: failure`; with content "
            "capture on they carry the arguments the model passed: malformed arguments point to the model or "
            "the tool's schema, errors from the service to the service.",
            "Check the service behind the tool (its own dashboards, status, recent deploys, credentials).",
        ],
        causes=["tools", "model", "injection", "deploy", "traffic"],
        mitigation=[
            "Roll back or fix the service behind the tool; rotate expired credentials.",
            "Make the tool's error messages useful to the model, and validate its arguments.",
            "Disable the tool for the agent if the agent can work without it.",
        ],
    )


def telemetry_absent(table: Thresholds) -> str:
    a = table.fleet["telemetry_absent"]
    out = _header(table, a, f"an agent exported `{q.RUNS}` within the last {a.window} but has exported none "
                             f"for {a.for_}", f"`{q.AGENT}`, `severity`", "agents")
    out += _section("What it means", (
        f"Prometheus no longer receives the run metrics of the agent (label `{q.AGENT}`). A live agent process keeps "
        "exporting its counters even when idle, so this is not about traffic: the process stopped, or the "
        "telemetry path between it and Prometheus is broken. Every other alert for this agent is blind meanwhile."))
    out += _section("Impact", "No alert can fire for this agent. If the agent is down, its users get nothing.")
    out += _section("Diagnosis", _list([
        "Is the process running? Check your orchestrator (pods, systemd units, containers) for the agent.",
        "Is the scrape target up? In Prometheus, Status > Targets, or `up == 0`.",
        "With a collector in between: is the collector up, and does its Prometheus exporter or remote write "
        "still carry the agent's metrics? Check the collector's own metrics for dropped or refused points.",
        "Was the agent started without instrumentation (a new entry point, `opentelemetry-instrument` missing, "
        "`OTEL_METRICS_EXPORTER=none`)?",
        "Was the agent renamed? Its metrics then arrive under a new `gen_ai_agent_name`, and the old one alerts.",
    ], numbered=True) + "\n\n" + _query(q.expr_telemetry_absent(a.window or "1d").strip()))
    out += _section("Likely causes", _list([
        "The agent process crashed, was scaled to zero, or was retired on purpose.",
        "The scrape config or service discovery lost the target; network policy or port changes.",
        "The collector between the agent and Prometheus is down or dropping data.",
        "A deploy removed the instrumentation or renamed the agent.",
    ]))
    out += _section("Mitigation", _list([
        "Restart or redeploy the agent; restore the scrape target or the collector.",
        f"Retired or renamed on purpose: silence the alert for that `{q.AGENT}`; it resolves by itself once "
        f"the old series are older than {a.window}.",
    ]))
    return out + _tuning("fleet.telemetry_absent")


def provider_errors(table: Thresholds) -> str:
    a = table.fleet["provider_errors"]
    value = format_value(a.value if a.value is not None else 0.95, "ratio")
    out = _header(table, a, f"more than {value} of the LLM calls to a provider fail over {a.window}, for {a.for_}",
                  f"`{q.PROVIDER}`, `severity`", "llm")
    out += _section("What it means", (
        f"Nearly every LLM call to the provider (label `{q.PROVIDER}`) fails (any `{sc.ERROR_TYPE}`: HTTP 5xx, 429, "
        "timeouts, connection errors, authentication errors). Every agent using that provider is affected."))
    out += _section("Impact", "Agents on this provider cannot work: expect AgentSuccessRateLow for many agents "
                              "at once (this alert is the common cause).")
    out += _section("Diagnosis", _list([
        "Which errors?\n\n   " + _query(
            f"sum by ({q.ERROR}) (rate({q.LLM_CALLS}{{{q.PROVIDER}=\"<provider>\", {q.FAILED}}}[{a.window}]))"
        ).replace("\n", "\n   "),
        "`AuthenticationError` / `PermissionDeniedError` / 401 / 403: the API key was revoked, rotated or ran "
        "out of credit.",
        "`RateLimitError` / 429: you exceed your quota; check for a retry storm or a traffic spike.",
        "`InternalServerError`, `APIConnectionError`, timeouts, 5xx: check the provider's status page.",
        "`NotFoundError` / 404 on a model: the model was retired or renamed.",
    ], numbered=True))
    out += _section("Likely causes", _list([CAUSES["provider"], CAUSES["model"],
                                            "**Credentials.** A rotated, revoked or exhausted API key.",
                                            "**Network.** Egress, proxy or DNS problems between agents and the "
                                            "provider."]))
    out += _section("Mitigation", _list([
        "Fail over to another provider or region if your agents support it; otherwise pause non-urgent traffic.",
        "Restore the credentials; raise quota or lower concurrency for rate limits.",
        "Point agents to a model that exists if a model was retired.",
    ]))
    return out + _tuning("fleet.provider_errors", per_agent=False)


def daily_spend(table: Thresholds) -> str:
    a = table.fleet["daily_spend"]
    budget = format_value(a.budget_usd or 0, "USD")
    warn = format_value(a.warning_at or 0, "ratio")
    crit = format_value(a.critical_at or 0, "ratio")
    fires = (f"LLM spend over the last 24 hours reaches {warn} (warning) or {crit} (critical) of the {budget} "
             f"budget, for {a.for_}")
    out = _header(table, a, fires, "`severity` (fleet-wide)", "cost",
                  routing=f"warning at {warn}: {_ROUTE['warning']}; critical at {crit}: {_ROUTE['critical']}")
    out += _section("What it means", (
        f"The cost of all priced LLM calls (`{sc.PROM_LLM_COST}`) over a rolling 24 hours is at {warn} (warning) "
        f"or {crit} (critical, pages) of `budget_usd` = {budget}. The warning is inhibited while the critical "
        "alert fires."))
    out += _section("Impact", "Money. Past the budget, every further call is spend nobody planned for; a runaway "
                              "agent can spend a month's budget in hours.")
    out += _section("Diagnosis", _list([
        "Which model and provider?\n\n   " + _query(
            f"sort_desc(sum by ({q.PROVIDER}, {q.prom_label(sc.GEN_AI_RESPONSE_MODEL)}) "
            f"(increase({sc.PROM_LLM_COST}[1d])))").replace("\n", "\n   "),
        "Which agent?\n\n   " + _query(
            f"sort_desc(sum by ({q.AGENT}) (increase({sc.PROM_AGENT_COST}_sum[1d])))").replace("\n", "\n   "),
        "Is it more runs (traffic) or more cost per run (AgentCostPerRunHigh)? Compare the run rate with last week.",
        "When did it start? A step in the spend rate usually lines up with a deploy or a traffic change.",
    ], numbered=True))
    out += _section("Likely causes", _list([CAUSES[c] for c in ("loop", "tokens", "traffic", "model", "injection")]))
    out += _section("Mitigation", _list([
        "Stop the runaway: per-run budgets (`AGENTWATCH_RUN_MAX_COST_USD`), lower concurrency, or pause the agent.",
        "Move traffic to a cheaper model.",
        "If the spend is expected (planned load), raise `fleet.daily_spend.budget_usd` and regenerate.",
    ]))
    return out + _tuning("fleet.daily_spend", per_agent=False)


def watchdog(table: Thresholds) -> str:
    a = table.fleet["watchdog"]
    out = _header(table, a, "always (`vector(1)`)", "`severity`", None,
                  routing=f"{a.severity}, routed by name to the dead man's switch (receiver `{DEADMAN}`)")
    out += _section("What it means", (
        f"This alert always fires. Alertmanager sends it to receiver `{DEADMAN}` every "
        f"{table.alertmanager.deadman_repeat_interval}; the dead man's switch service (e.g. Healthchecks.io, "
        "Dead Man's Snitch, a PagerDuty heartbeat) pages when the pings stop. Its presence proves Prometheus "
        "evaluates rules, reaches Alertmanager, and Alertmanager can notify."))
    out += _section("If the dead man's switch pages", _list([
        "Is Prometheus up and evaluating rules? Check `prometheus_rule_evaluation_failures_total` and "
        "`prometheus_rule_group_last_evaluation_timestamp_seconds`.",
        "Can Prometheus reach Alertmanager? Check `prometheus_notifications_errors_total` and "
        "`prometheus_notifications_alertmanagers_discovered`.",
        "Is Alertmanager up, and can it reach the dead man's switch? Check "
        "`alertmanager_notifications_failed_total{integration=\"webhook\"}`.",
        "Until it is fixed, no agentwatch alert reaches anyone: watch the dashboards by hand.",
    ], numbered=True))
    out += _section("Mitigation", _list([
        "Restart the failed component; fix the network path or the receiver configuration.",
        f"Never silence Watchdog, and never route it anywhere but `{DEADMAN}`.",
    ]))
    return out


_SIGNAL_RUNBOOKS: dict[str, Callable[[Thresholds], str]] = {
    "success_rate": success_rate, "steps_per_run": steps_per_run, "p99_latency": p99_latency,
    "tokens_per_run": tokens_per_run, "cost_per_run": cost_per_run, "tool_error_rate": tool_error_rate,
}
_FLEET_RUNBOOKS: dict[str, Callable[[Thresholds], str]] = {
    "telemetry_absent": telemetry_absent, "provider_errors": provider_errors, "daily_spend": daily_spend,
    "watchdog": watchdog,
}


def render(table: Thresholds, alert_name: str) -> str:
    """The runbook of an alert (by its configured name)."""
    by_name = {table[k].alert: fn for k, fn in _SIGNAL_RUNBOOKS.items()}
    by_name.update({table.fleet[k].alert: fn for k, fn in _FLEET_RUNBOOKS.items()})
    return by_name[alert_name](table)
