"""`agentwatch es setup`, `agentwatch es collector-config` and `agentwatch logs`: log records in Elasticsearch.

Connection settings come from options or the same AGENTWATCH_ES_* variables the agent uses. Secrets are read
from the environment or from files, never from command-line values (they would end up in shell history and
`ps`), and never printed.
"""

from __future__ import annotations

import functools
import json
import sys
from typing import Any, Callable

import click

from agentwatch import config
from agentwatch import semconv as sc
from agentwatch.config import ConfigError, ElasticsearchSettings, elasticsearch_settings
from agentwatch.tooling import elastic
from agentwatch.tooling.commands.common import fail


def connection_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--url, --namespace and the credential/TLS options shared by the Elasticsearch commands."""
    options = [
        click.option("--url", envvar=config.ENV_ES_URL, required=True, metavar="URL",
                     help=f"Elasticsearch URL (default: ${config.ENV_ES_URL}); e.g. --url https://es.example.com:9200."),
        click.option("--namespace", envvar=config.ENV_ES_NAMESPACE, default=sc.ES_DEFAULT_NAMESPACE,
                     show_default=True,
                     help="Data stream namespace: logs-agentwatch-<namespace>; e.g. --namespace prod."),
        click.option("--api-key-file", type=click.Path(dir_okay=False), metavar="PATH",
                     help=f"File holding an encoded API key (default: ${config.ENV_ES_API_KEY} or "
                          f"${config.ENV_ES_API_KEY_FILE})."),
        click.option("--username", envvar=config.ENV_ES_USERNAME, metavar="NAME",
                     help=f"User for basic auth (default: ${config.ENV_ES_USERNAME}); the password comes from "
                          f"${config.ENV_ES_PASSWORD}, ${config.ENV_ES_PASSWORD_FILE} or --password-file."),
        click.option("--password-file", type=click.Path(dir_okay=False), metavar="PATH",
                     help="File holding the basic-auth password."),
        click.option("--ca-certs", type=click.Path(dir_okay=False), metavar="PATH",
                     help=f"CA bundle to verify the cluster's certificate (default: ${config.ENV_ES_CA_CERTS})."),
        click.option("--insecure", is_flag=True,
                     help="Do not verify the cluster's TLS certificate (not recommended)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def settings_from_options(url: str, namespace: str, api_key_file: str | None, username: str | None,
                          password_file: str | None, ca_certs: str | None, insecure: bool) -> ElasticsearchSettings:
    """Options first, then the AGENTWATCH_ES_* environment, exactly as the agent reads it."""
    try:
        settings = elasticsearch_settings(url, namespace=namespace, api_key_file=api_key_file, username=username,
                                          password_file=password_file, ca_certs=ca_certs,
                                          verify_certs=False if insecure else None)
    except ConfigError as exc:
        fail(str(exc))
    assert settings is not None  # the URL is required
    return settings


def _connect(handler: Callable[..., Any]) -> Callable[..., Any]:
    """Builds settings and a client from the connection options; ES errors become one clear line."""

    @functools.wraps(handler)
    def wrapper(url: str, namespace: str, api_key_file: str | None, username: str | None,
                password_file: str | None, ca_certs: str | None, insecure: bool, **kwargs: Any) -> Any:
        try:
            from elasticsearch import ApiError, TransportError
        except ImportError:
            fail("the Elasticsearch commands need the elasticsearch client: pip install 'agentwatch[cli]'")
        settings = settings_from_options(url, namespace, api_key_file, username, password_file, ca_certs, insecure)
        elastic.warn_insecure(settings)
        client = elastic.build_client(settings, request_timeout=30.0, max_retries=2)
        try:
            return handler(client=client, settings=settings, **kwargs)
        except ConfigError as exc:
            fail(str(exc))
        except (ApiError, TransportError) as exc:
            fail(elastic.describe_error(exc, settings))
        finally:
            client.close()

    return wrapper


@click.group("es")
def es() -> None:
    """Elasticsearch: the index template and ILM policy for agentwatch's log records.

    Agents send their records straight to the data stream logs-agentwatch-<namespace> when
    AGENTWATCH_ES_URL is set (or agentwatch.init(elasticsearch_url=...)), or through the OpenTelemetry
    Collector (see `agentwatch es collector-config`).
    """


@es.command("setup")
@connection_options
@click.option("--retention-days", type=click.IntRange(min=1), default=sc.ES_DEFAULT_RETENTION_DAYS,
              show_default=True, help="Days to keep records after their index rolls over; e.g. --retention-days 90.")
@_connect
def es_setup(client: Any, settings: ElasticsearchSettings, retention_days: int) -> None:
    """Install the index template and the ILM policy (idempotent; run it again after upgrading).

    The template (priority 200, above the built-in `logs` template) maps ECS and gen_ai.* fields with their
    types and stores prompt/tool content without indexing it; the policy rolls over daily and deletes
    after --retention-days. No ingest pipeline is needed.

    \b
    Examples:
        AGENTWATCH_ES_API_KEY_FILE=~/.es-key agentwatch es setup --url https://es.example.com:9200
        agentwatch es setup --namespace prod --retention-days 90
    """
    changes = elastic.setup(client, settings.namespace, retention_days)
    for change in changes:
        line = f"{change.action:9} {change.kind} {change.name}"
        click.echo(line + (f"  ({change.detail})" if change.detail else ""))
    changed = sum(c.action != "unchanged" for c in changes)
    click.echo(f"data stream {elastic.data_stream_name(settings.namespace)} at {settings.url}: "
               f"{changed} of {len(changes)} objects changed")


@es.command("collector-config")
@click.option("--namespace", envvar=config.ENV_ES_NAMESPACE, default=sc.ES_DEFAULT_NAMESPACE, show_default=True,
              help="Data stream namespace; e.g. --namespace prod.")
def es_collector_config(namespace: str) -> None:
    """Print the OpenTelemetry Collector settings that write the same data stream and fields.

    Merge the printed processors, exporter and pipeline into a collector config with an `otlp` receiver.
    """
    import yaml

    try:
        config = elastic.collector_exporter_config(namespace)
    except ConfigError as exc:
        fail(str(exc))
    click.echo(yaml.safe_dump(config, sort_keys=False, width=120), nl=False)


@click.command("logs")
@connection_options
@click.option("--trace-id", metavar="ID", help="Show this trace: every LLM call, tool call and run in it.")
@click.option("--agent", metavar="NAME", help="Show the recent runs of this agent (gen_ai.agent.name).")
@click.option("--since", default="1h", show_default=True, help="With --agent: how far back; e.g. 30m, 6h, 2d.")
@click.option("--runs", "max_runs", type=click.IntRange(min=1), default=20, show_default=True,
              help="With --agent: at most this many runs (the newest).")
@click.option("--limit", type=click.IntRange(min=1, max=10000), default=2000, show_default=True,
              help="At most this many records.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (traces, events, totals) for scripts.")
@_connect
def logs(client: Any, settings: ElasticsearchSettings, trace_id: str | None, agent: str | None, since: str,
         max_runs: int, limit: int, as_json: bool) -> None:
    """Print a run's timeline from Elasticsearch: LLM calls, tool calls, errors, tokens, cost.

    \b
    Examples:
        agentwatch logs --trace-id 4bf92f3577b34da6a3ce929d0e0e4736
        agentwatch logs --agent support-agent --since 6h
        agentwatch logs --agent support-agent --json | jq '.traces[].totals'
    """
    if bool(trace_id) == bool(agent):
        raise click.UsageError("give exactly one of --trace-id and --agent")
    if trace_id is not None and not all(c in "0123456789abcdefABCDEF" for c in trace_id):
        raise click.UsageError(f"--trace-id {trace_id!r} is not a hex trace id")
    if agent:
        elastic.since_to_date_math(since)  # a clear error before any request
    docs = elastic.find_records(client, settings.namespace, trace_id=trace_id, agent=agent, since=since,
                                max_runs=max_runs, limit=limit)
    timelines = elastic.build_timelines(docs)
    what = f"trace {trace_id}" if trace_id else f"agent {agent!r} in the last {since}"
    if as_json:
        click.echo(json.dumps({"data_stream": elastic.data_stream_name(settings.namespace), "query": what,
                               "traces": [{"trace_id": t.trace_id, "totals": t.totals(),
                                           "events": [e.as_json() for e in t.events]} for t in timelines]},
                              indent=2, default=str))
    else:
        _print_timelines(timelines)
    if not timelines:
        click.echo(f"agentwatch: no log records for {what} in {elastic.data_stream_name(settings.namespace)}",
                   err=True)
        sys.exit(1)


def _fmt_tokens(value: int | None) -> str:
    return "" if value is None else f"{value:,}"


def _fmt_cost(cost: float | None, unknown: bool) -> str:
    if cost is None:
        return "unknown" if unknown else ""
    text = f"{cost:.4f}" if cost >= 0.01 or cost == 0 else f"{cost:.8f}".rstrip("0")
    return f"${text}" + ("+?" if unknown else "")


def _print_timelines(timelines: list[elastic.TraceTimeline]) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text  # record values are data, never markup

    console = Console(highlight=False)
    styles = {"run": "bold", "llm": "cyan", "tool": "magenta", "budget": "yellow"}
    for tl in timelines:
        agents = ", ".join(tl.agents) if tl.agents else "no agent run recorded"
        table = Table(title=Text(f"trace {tl.trace_id}  ({agents})"), title_justify="left", show_edge=False,
                      pad_edge=False)
        table.add_column("+s", justify="right", no_wrap=True)
        table.add_column("kind", no_wrap=True)
        table.add_column("name", no_wrap=True)
        table.add_column("outcome", no_wrap=True)
        table.add_column("duration", justify="right", no_wrap=True)
        table.add_column("tokens in", justify="right", no_wrap=True)
        table.add_column("tokens out", justify="right", no_wrap=True)
        table.add_column("cost", justify="right", no_wrap=True)
        table.add_column("error", overflow="fold", max_width=60)
        for e in tl.events:
            outcome_style = "red" if e.outcome not in ("ok", "warn") else ("yellow" if e.outcome == "warn" else "")
            table.add_row(
                f"{e.offset_s:.3f}", e.kind, Text(e.name), Text(e.outcome, style=outcome_style),
                f"{e.duration_s:.3f}s" if e.duration_s is not None else "",
                _fmt_tokens(e.input_tokens), _fmt_tokens(e.output_tokens),
                _fmt_cost(e.cost_usd, e.cost_unknown), Text(e.error or ""),
                style=styles.get(e.kind),
            )
        console.print(table)
        cost = _fmt_cost(tl.cost_usd, tl.cost_unknown)
        console.print(Text(f"{tl.llm_calls} LLM calls, {tl.tool_calls} tool calls, {tl.errors} errors, "
                           f"{tl.input_tokens:,} input + {tl.output_tokens:,} output tokens, cost {cost}\n"))
