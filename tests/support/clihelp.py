"""Running the `agentwatch` CLI in a subprocess, the way a user does, for the CLI tests."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

from agentwatch.tooling.demo.runner import AGENTS
from agentwatch.tooling.stack import port_in_use

CLI = Path(sys.executable).parent / "agentwatch"


def free_port_base(count: int = len(AGENTS)) -> int:
    """A base port with `count` consecutive free loopback ports after it (the demo's agent endpoints)."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, 60000 - count)
        if not any(port_in_use(base + i) for i in range(count)):
            return base
    raise RuntimeError("no run of free ports found")


def env(**extra: str) -> dict[str, str]:
    """This environment without OTel / agentwatch / provider settings and without a terminal size (an xdist
    worker has COLUMNS=80; the CLI's tables are checked at the width it picks for a pipe), plus `extra`."""
    out = {k: v for k, v in os.environ.items()
           if not k.startswith(("OTEL_", "AGENTWATCH_", "ANTHROPIC_", "OPENAI_")) and k not in ("COLUMNS", "LINES")}
    out.update(extra)
    return out


def cli(*args: str, cwd: Path | None = None, timeout: float = 60, environ: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess:
    return subprocess.run([str(CLI), *args], capture_output=True, text=True, timeout=timeout,
                          env=environ if environ is not None else env(), cwd=cwd)


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    """The single `agentwatch: error: ...` line on stderr (and no traceback anywhere)."""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert lines[0].startswith("agentwatch: error: ")
    return lines[0]
