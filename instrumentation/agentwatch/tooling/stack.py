"""A local Prometheus + Alertmanager, from the installed binaries, with agentwatch's rules and routing.

    status, action = up(".agentwatch/stack")   # "started", "already running" or "reloaded"
    status(".agentwatch/stack").prometheus_url
    down(".agentwatch/stack")

Everything lives in one state directory:

    stack.json                    ports, scrape targets, intervals, binaries (what `status` reports)
    prometheus.pid                alertmanager.pid
    prometheus.yml                scrape targets, rule files, the Alertmanager to notify
    alerts/...                    the generated rules and Alertmanager routing (`agentwatch generate` output)
    prometheus-data/              alertmanager-data/
    prometheus.log                alertmanager.log

The processes run in the background in their own session (a Ctrl-C in the terminal that started them does
not stop them), listen on 127.0.0.1 only, on free ports unless ports are given. `up` on a running stack is
idempotent: it regenerates the rules and the Prometheus config and, only when something changed, makes both
processes reload them (SIGHUP). Binaries: `prometheus` and `prometheus-alertmanager` (Debian names) or
`alertmanager` (upstream name) on PATH, or AGENTWATCH_PROMETHEUS_BIN / AGENTWATCH_ALERTMANAGER_BIN.

Errors are StackError with a one-line message (a missing binary, a port in use, a process that would not
start, with the last line of its log).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import yaml

from agentwatch import config
from agentwatch import thresholds as _thresholds
from agentwatch.tooling.generate import write as _write_artifacts
from agentwatch.tooling.generate.alerts import artifacts as _artifacts
from agentwatch.tooling.generate.alertmanager import CONFIG_FILE as _AM_CONFIG_FILE
from agentwatch.thresholds import Thresholds, duration_seconds

__all__ = [
    "DEFAULT_STATE_DIR", "DEFAULT_TARGETS", "BinaryMissing", "Component", "PortInUse", "Settings", "StackError",
    "StackStatus", "alertmanager_alerts", "down", "find_binary", "http_json", "port_in_use", "prometheus_alerts",
    "prometheus_targets", "status", "up",
]

DEFAULT_STATE_DIR = ".agentwatch/stack"
# The OpenTelemetry Prometheus exporter's default port, and the four ports of `agentwatch demo`.
DEFAULT_TARGETS = tuple(f"127.0.0.1:{port}" for port in range(9464, 9468))
COMPONENTS = ("prometheus", "alertmanager")
RULES_DIR = "alerts/rules"
STATE_FILE = "stack.json"
HOST = "127.0.0.1"

# component -> (environment variable, binary names tried on PATH, Debian package)
_BINARIES = {
    "prometheus": (config.ENV_PROMETHEUS_BIN, ("prometheus",), "prometheus"),
    "alertmanager": (config.ENV_ALERTMANAGER_BIN, ("prometheus-alertmanager", "alertmanager"),
                     "prometheus-alertmanager"),
}
_READY_PATH = "/-/ready"


class StackError(Exception):
    """A failure reported as one line."""


class BinaryMissing(StackError):
    """A Prometheus or Alertmanager binary is not installed."""


class PortInUse(StackError):
    """A requested port is taken."""


# ---------------------------------------------------------------------------------------------------------
# Small helpers (also used by the demo and `agentwatch check`)
# ---------------------------------------------------------------------------------------------------------

def find_binary(component: str) -> str:
    """The path of the component's binary; BinaryMissing says which package to install."""
    env, names, package = _BINARIES[component]
    override = config.binary_override(env)
    if override:
        path = shutil.which(override)
        if path is None:
            raise BinaryMissing(f"{env}={override} is not an executable file")
        return path
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    raise BinaryMissing(f"{component} not found: install the Debian package {package} (or put "
                        f"{' or '.join(names)} on PATH, or set {env})")


def port_in_use(port: int, host: str = HOST) -> bool:
    """True when host:port cannot be bound (a server listens there)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return True
            raise
    return False


def free_port(host: str = HOST, avoid: Sequence[int] = ()) -> int:
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port = sock.getsockname()[1]
        if port not in avoid:
            return port
    raise StackError("no free port found on 127.0.0.1")


def http_json(url: str, timeout: float = 5.0) -> Any:
    """GET url and parse its JSON body (urllib errors propagate)."""
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read() or b"null")


def _ready(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url + _READY_PATH, timeout=timeout) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError, ValueError):
        return False


def prometheus_alerts(url: str, timeout: float = 5.0) -> list[dict[str, Any]]:
    """The alerts Prometheus evaluates now (pending and firing), from /api/v1/alerts."""
    return list(http_json(url.rstrip("/") + "/api/v1/alerts", timeout)["data"]["alerts"])


def alertmanager_alerts(url: str, timeout: float = 5.0) -> list[dict[str, Any]]:
    """The alerts Alertmanager holds (with the receivers they are routed to), from /api/v2/alerts."""
    return list(http_json(url.rstrip("/") + "/api/v2/alerts", timeout) or [])


def prometheus_targets(url: str, timeout: float = 5.0) -> list[dict[str, Any]]:
    """Prometheus's active scrape targets (health, lastScrape), from /api/v1/targets."""
    return list(http_json(url.rstrip("/") + "/api/v1/targets?state=active", timeout)["data"]["activeTargets"])


# ---------------------------------------------------------------------------------------------------------
# State
# ---------------------------------------------------------------------------------------------------------

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


def _pid_file(state: Path, name: str) -> Path:
    return state / f"{name}.pid"


def _read_pid(state: Path, name: str) -> int | None:
    try:
        text = _pid_file(state, name).read_text(encoding="ascii").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _read_state(state: Path) -> dict[str, Any]:
    try:
        data = json.loads((state / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


# Processes started by this Python process: a dead child stays a zombie (and kill(pid, 0) succeeds on it)
# until it is waited for.
_CHILDREN: dict[int, subprocess.Popen] = {}


def _alive(pid: int | None, state: Path, name: str) -> bool:
    """True when `pid` runs and is this state directory's `name` (not a recycled pid)."""
    if not pid:
        return False
    child = _CHILDREN.get(pid)
    if child is not None and child.poll() is not None:
        _CHILDREN.pop(pid, None)
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
    marker = str(_config_path(state, name).resolve())
    return marker in cmdline


def _config_path(state: Path, name: str) -> Path:
    return state / "prometheus.yml" if name == "prometheus" else state / _AM_CONFIG_FILE


@contextlib.contextmanager
def _locked(state: Path) -> Iterator[None]:
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
    data = _read_state(state)
    components = {}
    for name in COMPONENTS:
        info = data.get(name) if isinstance(data.get(name), dict) else {}
        pid = _read_pid(state, name)
        running = _alive(pid, state, name)
        comp = Component(name, port=info.get("port"), pid=pid if running else None, running=running,
                         binary=info.get("binary"), log=str(state / f"{name}.log"))
        comp.healthy = bool(running and check_health and comp.url and _ready(comp.url))
        components[name] = comp
    return StackStatus(
        state_dir=str(state), prometheus=components["prometheus"], alertmanager=components["alertmanager"],
        scrape_targets=list(data.get("scrape_targets") or []), scrape_interval=str(data.get("scrape_interval") or ""),
        thresholds=str(data.get("thresholds") or ""), rule_files=list(data.get("rule_files") or []),
    )


# ---------------------------------------------------------------------------------------------------------
# up / down
# ---------------------------------------------------------------------------------------------------------

def _validate(settings: Settings) -> None:
    for key in ("scrape_interval", "evaluation_interval", "resend_delay", "retention"):
        value = getattr(settings, key)
        try:
            if duration_seconds(value) <= 0:
                raise ValueError
        except ValueError:
            raise StackError(f"{key.replace('_', '-')} must be a positive Prometheus duration like 5s or 1m, "
                             f"got {value!r}") from None
    for target in settings.scrape_targets:
        host, sep, port = target.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise StackError(f"scrape target must be HOST:PORT, got {target!r}")
    for key in ("prometheus_port", "alertmanager_port"):
        port = getattr(settings, key)
        if not 0 <= port < 65536:
            raise StackError(f"{key.replace('_', '-')} must be within 0..65535, got {port}")
    if settings.prometheus_port and settings.prometheus_port == settings.alertmanager_port:
        raise StackError(f"Prometheus and Alertmanager cannot share port {settings.prometheus_port}")


def _write_if_changed(path: Path, text: str) -> bool:
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return False
    path.write_text(text, encoding="utf-8")
    return True


def _prometheus_config(state: Path, settings: Settings, am_port: int, rule_files: list[str]) -> str:
    config = {
        "global": {"scrape_interval": settings.scrape_interval, "scrape_timeout": settings.scrape_interval
                   if duration_seconds(settings.scrape_interval) <= 10 else "10s",
                   "evaluation_interval": settings.evaluation_interval},
        "rule_files": [str((state / f).resolve()) for f in rule_files],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"{HOST}:{am_port}"]}]}]},
        "scrape_configs": [{"job_name": "agents", "static_configs": [{"targets": list(settings.scrape_targets)}]}],
    }
    return ("# Written by `agentwatch stack up`; rewritten on every `up`.\n"
            + yaml.safe_dump(config, sort_keys=False, default_flow_style=False))


def _generate(state: Path, table: Thresholds) -> tuple[list[str], bool]:
    """Writes the generated rules, routing and runbooks into the state directory (not the dashboards: the stack
    has no Grafana); returns (rule files, whether anything changed)."""
    files = _artifacts(table)
    try:
        changed = _write_artifacts(state, files)
    except OSError as exc:
        raise StackError(f"cannot write the generated rules under {state}: {exc.strerror or exc}") from None
    rules = sorted(rel for rel in files if rel.startswith(RULES_DIR + "/") and rel.endswith((".yaml", ".yml")))
    return rules, bool(changed)


def _argv(name: str, binary: str, state: Path, port: int, settings: Settings) -> list[str]:
    listen = f"--web.listen-address={HOST}:{port}"
    if name == "prometheus":
        return [binary, f"--config.file={_config_path(state, name).resolve()}",
                f"--storage.tsdb.path={(state / 'prometheus-data').resolve()}",
                f"--storage.tsdb.retention.time={settings.retention}", listen,
                f"--rules.alert.resend-delay={settings.resend_delay}", "--log.level=info"]
    return [binary, f"--config.file={_config_path(state, name).resolve()}",
            f"--storage.path={(state / 'alertmanager-data').resolve()}", listen,
            "--cluster.listen-address=", "--log.level=info"]


def _log_problem(log: Path) -> str:
    """The most telling line of a daemon's log: an error line, else the last line."""
    try:
        lines = [ln.strip() for ln in log.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    for line in reversed(lines):
        if "level=error" in line or "err=" in line:
            return line
    return lines[-1] if lines else ""


def _start(name: str, binary: str, state: Path, port: int, settings: Settings) -> subprocess.Popen:
    log = state / f"{name}.log"
    (state / ("prometheus-data" if name == "prometheus" else "alertmanager-data")).mkdir(exist_ok=True)
    with open(log, "ab") as out:
        out.write(f"--- {time.strftime('%Y-%m-%dT%H:%M:%S')} agentwatch stack up: {name} on {HOST}:{port}\n"
                  .encode())
        out.flush()
        try:
            proc = subprocess.Popen(_argv(name, binary, state, port, settings), stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                                    cwd=state)
        except OSError as exc:
            raise StackError(f"cannot start {name} ({binary}): {exc.strerror or exc}") from None
    _CHILDREN[proc.pid] = proc
    _pid_file(state, name).write_text(f"{proc.pid}\n", encoding="ascii")
    return proc


def _wait_ready(name: str, proc: subprocess.Popen, state: Path, port: int, timeout: float) -> None:
    url = f"http://{HOST}:{port}"
    log = state / f"{name}.log"
    deadline = time.monotonic() + timeout
    while True:
        rc = proc.poll()
        if rc is not None:
            _CHILDREN.pop(proc.pid, None)
            _pid_file(state, name).unlink(missing_ok=True)
            problem = _log_problem(log)
            if "address already in use" in problem:
                raise PortInUse(f"port {port} is already in use (needed for {name})")
            raise StackError(f"{name} exited with code {rc} on start: {problem or 'no log output'} (log: {log})")
        if _ready(url):
            return
        if time.monotonic() > deadline:
            _terminate(proc.pid, name, state)
            raise StackError(f"{name} not ready at {url} after {timeout:.0f}s (log: {log})")
        time.sleep(0.1)


def _terminate(pid: int, name: str, state: Path, timeout: float = 10.0) -> None:
    child = _CHILDREN.pop(pid, None)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child is not None:
            if child.poll() is not None:
                break
        elif not _alive(pid, state, name):
            break
        time.sleep(0.05)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        if child is not None:
            child.wait(5)
    _pid_file(state, name).unlink(missing_ok=True)


def up(state_dir: str | os.PathLike[str] = DEFAULT_STATE_DIR, *, table: Thresholds | None = None,
       settings: Settings = Settings(), timeout: float = 30.0) -> tuple[StackStatus, str]:
    """Starts Prometheus and Alertmanager (or reloads a running stack); returns (status, what happened):
    "started", "already running" or "reloaded"."""
    _validate(settings)
    binaries = {name: find_binary(name) for name in COMPONENTS}  # before anything is written
    table = table if table is not None else _thresholds.current()
    state = Path(state_dir)
    try:
        state.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StackError(f"cannot create the state directory {state}: {exc.strerror or exc}") from None
    with _locked(state):
        current = status(state, check_health=False)
        if current.running:
            for comp, wanted in ((current.prometheus, settings.prometheus_port),
                                 (current.alertmanager, settings.alertmanager_port)):
                if wanted and wanted != comp.port:
                    raise StackError(f"the stack in {state} already runs {comp.name} on port {comp.port}; "
                                     f"run `agentwatch stack down --state-dir {state}` to change its ports")
            ports = {"prometheus": current.prometheus.port, "alertmanager": current.alertmanager.port}
            rule_files, changed = _generate(state, table)
            changed |= _write_if_changed(state / "prometheus.yml", _prometheus_config(
                state, settings, int(ports["alertmanager"] or 0), rule_files))
            if changed:
                for comp in current.components:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(comp.pid or 0), signal.SIGHUP)
            _save(state, ports, binaries, settings, table, rule_files)
            _wait_healthy(state, timeout)
            return status(state), "reloaded" if changed else "already running"
        for comp in current.components:  # half a stack (one process died): start both afresh
            if comp.running and comp.pid:
                _terminate(comp.pid, comp.name, state)
        ports = {}
        for name, wanted in (("prometheus", settings.prometheus_port), ("alertmanager", settings.alertmanager_port)):
            if wanted:
                if port_in_use(wanted):
                    option = f"--{name}-port"
                    raise PortInUse(f"port {wanted} is already in use (needed for {name}); choose another with "
                                    f"{option}, or leave it out to pick a free port")
                ports[name] = wanted
            else:
                ports[name] = free_port(avoid=[p for p in (settings.prometheus_port, settings.alertmanager_port,
                                                           *ports.values()) if p])
        rule_files, _ = _generate(state, table)
        _write_if_changed(state / "prometheus.yml", _prometheus_config(state, settings, ports["alertmanager"],
                                                                       rule_files))
        started: list[tuple[str, subprocess.Popen]] = []
        try:
            for name in ("alertmanager", "prometheus"):
                proc = _start(name, binaries[name], state, ports[name], settings)
                started.append((name, proc))
                _wait_ready(name, proc, state, ports[name], timeout)
        except BaseException:
            for name, proc in started:
                if proc.poll() is None:
                    _terminate(proc.pid, name, state)
            raise
        _save(state, ports, binaries, settings, table, rule_files)
        return status(state), "started"


def _save(state: Path, ports: dict[str, Any], binaries: dict[str, str], settings: Settings, table: Thresholds,
          rule_files: list[str]) -> None:
    data = {name: {"port": ports[name], "binary": binaries[name]} for name in COMPONENTS}
    data.update(scrape_targets=list(settings.scrape_targets), scrape_interval=settings.scrape_interval,
                evaluation_interval=settings.evaluation_interval, thresholds=table.source, rule_files=rule_files)
    (state / STATE_FILE).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def _wait_healthy(state: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not status(state).healthy:
        if time.monotonic() > deadline:
            current = status(state)
            sick = [c.name for c in current.components if not c.healthy]
            raise StackError(f"{' and '.join(sick)} not healthy after reloading (logs: {state}/*.log)")
        time.sleep(0.2)


def down(state_dir: str | os.PathLike[str] = DEFAULT_STATE_DIR, timeout: float = 10.0) -> list[str]:
    """Stops the stack's processes; returns the names of those that were running (none: already stopped)."""
    state = Path(state_dir)
    if not state.is_dir():
        return []
    stopped = []
    with _locked(state):
        for name in ("prometheus", "alertmanager"):
            pid = _read_pid(state, name)
            if _alive(pid, state, name):
                _terminate(int(pid or 0), name, state, timeout)
                stopped.append(name)
            else:
                _pid_file(state, name).unlink(missing_ok=True)
    return stopped
