"""Prints pip requirement lines pinning every runtime dependency, and the client SDKs the tests talk to, to
the LOWEST version pyproject.toml declares (`name>=X` becomes `name==X`), plus the test tools.

`make test` installs them into .venv-lowest and runs the client-facing tests there, so the lower bounds
in pyproject.toml are tested, not just written down. Used as: python tests/support/lowest_pins.py > pins.txt
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = ("openai", "anthropic")  # from the `test` extra: the SDKs the client tests use
# Not declared by agentwatch but needed so the lowest SDKs work at all: openai < 1.55 passes `proxies=` to
# httpx, which httpx 0.28 removed.
COMPANIONS = ("httpx<0.28",)
TEST_TOOLS = ("pytest>=8", "pytest-asyncio>=0.24")


def lowest(requirement: str) -> str:
    match = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*>=\s*([^,;\s]+).*", requirement)
    if match is None:
        raise SystemExit(f"no lower bound in {requirement!r}: every dependency must declare one")
    return f"{match.group(1)}{match.group(2) or ''}=={match.group(3)}"


def main() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = [lowest(r) for r in project["dependencies"]]
    test_extra = project["optional-dependencies"]["test"]
    pins += [lowest(r) for r in test_extra if re.split(r"[<>=\[ ]", r, maxsplit=1)[0] in CLIENTS]
    sys.stdout.write("\n".join([*pins, *COMPANIONS, *TEST_TOOLS]) + "\n")


if __name__ == "__main__":
    main()
