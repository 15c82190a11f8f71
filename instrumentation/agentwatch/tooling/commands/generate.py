"""`agentwatch generate [--check]`: every committed artifact from the threshold table."""

from __future__ import annotations

import sys

import click

from agentwatch.tooling.commands.common import fail, load_thresholds, thresholds_option


@click.command()
@click.option("--out-dir", type=click.Path(file_okay=False), default=".", show_default=True,
              help="Root the artifacts go under (alerts/..., dashboards/...); e.g. --out-dir /tmp/aw-artifacts.")
@click.option("--check", is_flag=True,
              help="Write nothing; exit 1 listing every file that is missing, differs or is stale.")
@thresholds_option
def generate(out_dir: str, check: bool, thresholds_file: str | None) -> None:
    """Generate the alert rules, Alertmanager routing, runbooks, dashboards and collector configs from the
    threshold table.

    Writes alerts/rules/*.yaml (recording rules and alerts), alerts/alertmanager/alertmanager.yml with its
    templates, alerts/runbooks/<AlertName>.md, dashboards/*.json and dashboards/provisioning/,
    collector/*.yaml (the tail sampler keeps runs over the latency and cost thresholds) and the generated
    parts of deploy/kubernetes under --out-dir. With --check, compares instead: CI runs it so the committed
    files never drift from the generators.

    \b
    Examples:
        agentwatch generate
        agentwatch generate --check
        agentwatch generate --thresholds my-thresholds.yaml --out-dir deploy/
    """
    from agentwatch.tooling import generate as gen

    table = load_thresholds(thresholds_file)
    try:
        files = gen.artifacts(table)
    except ImportError as exc:  # grafana-foundation-sdk missing
        fail(str(exc))
    if check:
        problems = gen.drift(out_dir, files)
        if problems:
            click.echo(f"agentwatch: {len(problems)} generated file(s) out of date under {out_dir}:", err=True)
            for problem in problems:
                click.echo(f"  {problem}", err=True)
            click.echo("run `agentwatch generate` and commit the result", err=True)
            sys.exit(1)
        click.echo(f"{len(files)} generated files up to date under {out_dir}")
        return
    try:
        changed = gen.write(out_dir, files)
    except OSError as exc:
        fail(f"cannot write under {out_dir}: {exc.strerror or exc}")
    for rel in changed:
        click.echo(f"updated {rel}")
    click.echo(f"{len(files)} files generated under {out_dir} ({len(changed)} changed)")
