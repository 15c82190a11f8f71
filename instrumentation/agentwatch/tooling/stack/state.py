"""The stack's state directory: its settings, what runs there (pid files checked against /proc), the lock that
serialises `up` and `down`, and `status()`."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

from agentwatch.tooling.generate.alertmanager import CONFIG_FILE as _AM_CONFIG_FILE
from agentwatch.tooling.stack.host import HOST

DEFAULT_STATE_DIR = ".agentwatch/stack"
# The OpenTelemetry Prometheus exporter's default port, and the four ports of `agentwatch demo`.
DEFAULT_TARGETS = tuple(f"127.0.0.1:{port}" for port in range(9464, 9468))
COMPONENTS = ("prometheus", "alertmanager")
RULES_DIR = "alerts/rules"
STATE_FILE = "stack.json"
_READY_PATH = "/-/ready"


def ready(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url + _READY_PATH, timeout=timeout) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError, ValueError):
        return False


@dataclass(frozen=True)
class Settings:
    """How to run the stack; ports 0 pick free ones."""

    scrape_targets: tuple[str, ...] = DEFAULT_TARGETS
    scrape_interval: str = "5s"
    evaluation_interval: str = "5s"
    prometheus_port: int = 0
    alertmanager_port: int = 0
    # How often Prometheus re-sends a firing alert (its default, 1m, loses a first send made before the
    # Alertmanager is discovered for a whole minute).
    resend_delay: str = "5s"
    retention: str = "1d"


@dataclass
class Component:
    name: str
    port: int | None = None
    pid: int | None = None
    running: bool = False
    healthy: bool = False
    binary: str | None = None
    log: str = ""

    @property
    def url(self) -> str | None:
        return f"http://{HOST}:{self.port}" if self.port else None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "url": self.url}


@dataclass
class StackStatus:
    state_dir: str
    prometheus: Component
    alertmanager: Component
    scrape_targets: list[str] = field(default_factory=list)
    scrape_interval: str = ""
    thresholds: str = ""
    rule_files: list[str] = field(default_factory=list)

    @property
    def components(self) -> tuple[Component, Component]:
        return self.prometheus, self.alertmanager

    @property
    def running(self) -> bool:
        return all(c.running for c in self.components)

    @property
    def healthy(self) -> bool:
        return all(c.running and c.healthy for c in self.components)

    @property
    def stopped(self) -> bool:
        return not any(c.running for c in self.components)

    @property
    def prometheus_url(self) -> str | None:
        return self.prometheus.url

    @property
    def alertmanager_url(self) -> str | None:
        return self.alertmanager.url

    def to_dict(self) -> dict[str, Any]:
        return {
            "state_dir": self.state_dir, "running": self.running, "healthy": self.healthy,
            "prometheus": self.prometheus.to_dict(), "alertmanager": self.alertmanager.to_dict(),
            "scrape_targets": self.scrape_targets, "scrape_interval": self.scrape_interval,
            "thresholds": self.thresholds, "rule_files": self.rule_files,
        }


def pid_file(state: Path, name: str) -> Path:
    return state / f"{name}.pid"


def read_pid(state: Path, name: str) -> int | None:
    try:
        text = pid_file(state, name).read_text(encoding="ascii").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def read_state(state: Path) -> dict[str, Any]:
    try:
        data = json.loads((state / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


# Processes started by this Python process: a dead child stays a zombie (and kill(pid, 0) succeeds on it)
# until it is waited for.
CHILDREN: dict[int, subprocess.Popen] = {}


def alive(pid: int | None, state: Path, name: str) -> bool:
    """True when `pid` runs and is this state directory's `name` (not a recycled pid)."""
    if not pid:
        return False
    child = CHILDREN.get(pid)
    if child is not None and child.poll() is not None:
        CHILDREN.pop(pid, None)
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # someone else's process: not ours
    proc = Path(f"/proc/{pid}")
    if not proc.exists():
        return True  # no procfs: trust the pid file
    try:
        if (proc / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False
        cmdline = (proc / "cmdline").read_bytes().decode("utf-8", "replace")
    except (OSError, IndexError):
        return False
    marker = str(config_path(state, name).resolve())
    return marker in cmdline


def config_path(state: Path, name: str) -> Path:
    return state / "prometheus.yml" if name == "prometheus" else state / _AM_CONFIG_FILE


@contextlib.contextmanager
def locked(state: Path) -> Iterator[None]:
    """One `up` or `down` at a time per state directory."""
    state.mkdir(parents=True, exist_ok=True)
    with open(state / ".lock", "a+") as fh:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX
            yield
            return
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def status(state_dir: str | os.PathLike[str] = DEFAULT_STATE_DIR, *, check_health: bool = True) -> StackStatus:
    """What runs in the state directory now (a missing directory is a stopped stack)."""
    state = Path(state_dir)
    data = read_state(state)
    components = {}
    for name in COMPONENTS:
        info = data.get(name) if isinstance(data.get(name), dict) else {}
        pid = read_pid(state, name)
        running = alive(pid, state, name)
        comp = Component(name, port=info.get("port"), pid=pid if running else None, running=running,
                         binary=info.get("binary"), log=str(state / f"{name}.log"))
        comp.healthy = bool(running and check_health and comp.url and ready(comp.url))
        components[name] = comp
    return StackStatus(
        state_dir=str(state), prometheus=components["prometheus"], alertmanager=components["alertmanager"],
        scrape_targets=list(data.get("scrape_targets") or []), scrape_interval=str(data.get("scrape_interval") or ""),
        thresholds=str(data.get("thresholds") or ""), rule_files=list(data.get("rule_files") or []),
    )
