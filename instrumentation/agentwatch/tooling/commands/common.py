"""What every command shares: the one-line error exit, the `--thresholds` option and loading its table."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, Callable, NoReturn

import click

if TYPE_CHECKING:
    from agentwatch.thresholds import Thresholds


def fail(message: str, code: int = 1) -> NoReturn:
    """`agentwatch: error: <message>` as one line on stderr (whatever line breaks the message held), then exit
    with `code` (1; `agentwatch check` uses 2: the check could not run)."""
    click.echo(f"agentwatch: error: {' '.join(message.split())}", err=True)
    sys.exit(code)


def thresholds_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """`--thresholds FILE`, passed as `thresholds_file`."""
    return click.option(
        "--thresholds", "thresholds_file", type=click.Path(dir_okay=False),
        help="Threshold override file (default: $AGENTWATCH_THRESHOLDS_FILE, else the bundled table); "
             "e.g. --thresholds my-thresholds.yaml.")(command)


def load_thresholds(thresholds_file: str | None, code: int = 1) -> "Thresholds":
    """The threshold table of `--thresholds` (or its default); a bad file is a one-line error exit."""
    from agentwatch.thresholds import ThresholdsError, load

    try:
        return load(thresholds_file)
    except ThresholdsError as exc:
        fail(str(exc), code)
