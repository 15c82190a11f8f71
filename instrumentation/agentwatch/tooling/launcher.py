"""The `agentwatch` console script. The runtime (`pip install agentwatch`) installs the script but not the
CLI's own dependencies, which come with the `cli` extra; without them, the script says so in one line instead
of a traceback."""

from __future__ import annotations

import importlib.util
import sys

CLI_MODULES = ("click", "rich")  # what every command needs; the `cli` extra brings them (and elasticsearch)
INSTALL_HINT = "pip install 'agentwatch[cli]'"


def missing_modules() -> list[str]:
    return [name for name in CLI_MODULES if importlib.util.find_spec(name) is None]


def main() -> None:
    missing = missing_modules()
    if missing:
        sys.stderr.write(f"agentwatch: error: the agentwatch command needs {' and '.join(missing)}, which the "
                         f"runtime alone does not install: {INSTALL_HINT}\n")
        sys.exit(1)
    from agentwatch.tooling.cli import main as cli

    cli()
