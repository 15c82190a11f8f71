"""The `agentwatch` command line: the group and its commands (each in agentwatch.tooling.commands)."""

from __future__ import annotations

import click

from agentwatch import __version__
from agentwatch.tooling.commands.check import check
from agentwatch.tooling.commands.dashboards import dashboards
from agentwatch.tooling.commands.demo import demo
from agentwatch.tooling.commands.es import es, logs
from agentwatch.tooling.commands.generate import generate
from agentwatch.tooling.commands.stack import stack
from agentwatch.tooling.commands.stub import stub


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", "-V", prog_name="agentwatch", message="%(prog)s %(version)s")
def main() -> None:
    """agentwatch: OpenTelemetry spans, metrics, JSON logs and token cost for LLM agents.

    Instrument an existing agent without changing its code:

    \b
        opentelemetry-instrument python my_agent.py

    See it work end to end on the built-in demo (no API key, no network):

    \b
        agentwatch demo

    Check a live fleet against the threshold table (exit 1 on a critical breach):

    \b
        agentwatch check --prometheus http://127.0.0.1:9090
    """


for _command in (generate, dashboards, stub, es, logs, demo, check, stack):
    main.add_command(_command)


if __name__ == "__main__":
    main()
