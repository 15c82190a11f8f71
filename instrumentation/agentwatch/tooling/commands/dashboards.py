"""`agentwatch dashboards build|push`: the Grafana dashboards as JSON, or uploaded to Grafana's HTTP API."""

from __future__ import annotations

import click

from agentwatch.tooling.commands.common import fail, load_thresholds, thresholds_option


def _dashboard_files(thresholds_file: str | None) -> dict[str, str]:
    from agentwatch.tooling.generate import dashboards

    table = load_thresholds(thresholds_file)
    try:
        return dashboards.artifacts(table)
    except ImportError as exc:  # grafana-foundation-sdk missing
        fail(str(exc))


@click.group()
def dashboards() -> None:
    """Grafana dashboards: build the JSON, or push it to Grafana's HTTP API.

    The four dashboards (Agent overview, LLM calls, Tools, Cost) are generated with grafana-foundation-sdk
    from the telemetry contract and the threshold table; `agentwatch generate` builds them too.
    """


@dashboards.command("build")
@click.option("--out-dir", type=click.Path(file_okay=False), default=".", show_default=True,
              help="Root the dashboards/ folder goes under; e.g. --out-dir /tmp/aw.")
@thresholds_option
def dashboards_build(out_dir: str, thresholds_file: str | None) -> None:
    """Write dashboards/*.json and dashboards/provisioning/ (file provider and datasource examples).

    \b
    Examples:
        agentwatch dashboards build
        agentwatch dashboards build --thresholds my-thresholds.yaml --out-dir deploy/
    """
    from agentwatch.tooling import generate as gen

    files = _dashboard_files(thresholds_file)
    try:
        changed = gen.write(out_dir, files, gen.DASHBOARDS_OWNED)
    except OSError as exc:
        fail(f"cannot write under {out_dir}: {exc.strerror or exc}")
    for rel in changed:
        click.echo(f"updated {rel}")
    click.echo(f"{len(files)} dashboard files generated under {out_dir} ({len(changed)} changed)")


@dashboards.command("push")
@click.option("--url", required=True, help="Grafana's address; e.g. --url https://grafana.example.com.")
@click.option("--folder", default="agentwatch", show_default=True,
              help="Folder (title) to put the dashboards in, created when missing; --folder '' for General.")
@click.option("--overwrite", is_flag=True,
              help="Replace dashboards that exist in Grafana (else an existing one is a version conflict).")
@click.option("--token-file", type=click.Path(dir_okay=False),
              help="File holding the API token (default: $GRAFANA_API_TOKEN); e.g. --token-file ~/.grafana-token.")
@thresholds_option
def dashboards_push(url: str, folder: str, overwrite: bool, token_file: str | None,
                    thresholds_file: str | None) -> None:
    """Upload the dashboards to Grafana (POST /api/dashboards/db), into --folder.

    Needs a service account token with the Editor role, from $GRAFANA_API_TOKEN or --token-file.

    \b
    Examples:
        GRAFANA_API_TOKEN=glsa_... agentwatch dashboards push --url http://localhost:3000
        agentwatch dashboards push --url https://grafana.example.com --token-file token --overwrite
    """
    import json

    from agentwatch.tooling.generate.dashboards import DASHBOARDS_DIR
    from agentwatch.tooling.generate.grafana_api import GrafanaClient, GrafanaError, read_token

    files = _dashboard_files(thresholds_file)
    boards = [json.loads(text) for rel, text in files.items()
              if rel.startswith(DASHBOARDS_DIR + "/") and rel.endswith(".json")]
    try:
        client = GrafanaClient(url, read_token(token_file))
        folder_uid = client.folder_uid(folder) if folder else None
        for board in boards:
            answer = client.push(board, folder_uid, overwrite)
            click.echo(f"pushed {board['title']} (version {answer.get('version', '?')}): "
                       f"{client.dashboard_url(answer)}")
    except GrafanaError as exc:
        fail(str(exc))
    click.echo(f"{len(boards)} dashboards pushed to {folder or 'General'}")
