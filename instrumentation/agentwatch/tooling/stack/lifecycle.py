"""`up` and `down`: generate the rules and configs into the state directory, start (or reload, or stop) the
processes, wait until they are ready."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import yaml

from agentwatch import thresholds as _thresholds
from agentwatch.thresholds import Thresholds, duration_seconds
from agentwatch.tooling.generate import write as _write_artifacts
from agentwatch.tooling.generate.alerts import artifacts as _artifacts
from agentwatch.tooling.stack.host import HOST, PortInUse, StackError, find_binary, free_port, port_in_use
from agentwatch.tooling.stack.state import (
    CHILDREN, COMPONENTS, DEFAULT_STATE_DIR, RULES_DIR, STATE_FILE, Settings, StackStatus, alive, config_path,
    locked, pid_file, read_pid, ready, status,
)


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
        return [binary, f"--config.file={config_path(state, name).resolve()}",
                f"--storage.tsdb.path={(state / 'prometheus-data').resolve()}",
                f"--storage.tsdb.retention.time={settings.retention}", listen,
                f"--rules.alert.resend-delay={settings.resend_delay}", "--log.level=info"]
    return [binary, f"--config.file={config_path(state, name).resolve()}",
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
    CHILDREN[proc.pid] = proc
    pid_file(state, name).write_text(f"{proc.pid}\n", encoding="ascii")
    return proc


def _wait_ready(name: str, proc: subprocess.Popen, state: Path, port: int, timeout: float) -> None:
    url = f"http://{HOST}:{port}"
    log = state / f"{name}.log"
    deadline = time.monotonic() + timeout
    while True:
        rc = proc.poll()
        if rc is not None:
            CHILDREN.pop(proc.pid, None)
            pid_file(state, name).unlink(missing_ok=True)
            problem = _log_problem(log)
            if "address already in use" in problem:
                raise PortInUse(f"port {port} is already in use (needed for {name})")
            raise StackError(f"{name} exited with code {rc} on start: {problem or 'no log output'} (log: {log})")
        if ready(url):
            return
        if time.monotonic() > deadline:
            _terminate(proc.pid, name, state)
            raise StackError(f"{name} not ready at {url} after {timeout:.0f}s (log: {log})")
        time.sleep(0.1)


def _terminate(pid: int, name: str, state: Path, timeout: float = 10.0) -> None:
    child = CHILDREN.pop(pid, None)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child is not None:
            if child.poll() is not None:
                break
        elif not alive(pid, state, name):
            break
        time.sleep(0.05)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        if child is not None:
            child.wait(5)
    pid_file(state, name).unlink(missing_ok=True)


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
    with locked(state):
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
    with locked(state):
        for name in ("prometheus", "alertmanager"):
            pid = read_pid(state, name)
            if alive(pid, state, name):
                _terminate(int(pid or 0), name, state, timeout)
                stopped.append(name)
            else:
                pid_file(state, name).unlink(missing_ok=True)
    return stopped
