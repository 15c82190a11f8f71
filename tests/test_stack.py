"""`agentwatch stack up|down|status`: a real Prometheus + Alertmanager from the installed binaries.

Tests that need the binaries get them through tests/alerting.py's binary(): a missing binary fails the test
when CI=true and skips it elsewhere (test_a_missing_binary_fails_in_ci_and_skips_elsewhere proves it).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from agentwatch.tooling import stack
from support.alerting import http_json

from support.alerting import binary, wait_until
from support.clihelp import cli, env, free_port_base, one_error_line

TEST_LAYER = "e2e"  # every test here is e2e unless marked otherwise (conftest.py)

HERE = Path(__file__).parent
VENV_BIN = str(Path(sys.executable).parent)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _without_binaries() -> dict[str, str]:
    """An environment whose PATH has no Prometheus or Alertmanager (only the venv's scripts)."""
    return env(PATH=VENV_BIN)


def test_up_status_up_again_reload_down(tmp_path):
    binary("prometheus"), binary("prometheus-alertmanager")
    state = tmp_path / "stack"
    target = f"127.0.0.1:{_free_port()}"
    try:
        up = cli("stack", "up", "--state-dir", str(state), "--scrape", target, "--scrape-interval", "2s", cwd=tmp_path)
        assert up.returncode == 0, up.stderr
        assert f"agentwatch stack started in {state}" in up.stdout
        status = cli("stack", "status", "--state-dir", str(state), "--json", cwd=tmp_path)
        assert status.returncode == 0, status.stdout + status.stderr
        first = json.loads(status.stdout)
        assert first["running"] and first["healthy"] and first["scrape_targets"] == [target]
        prom, am = first["prometheus"]["url"], first["alertmanager"]["url"]
        assert f"agentwatch check --prometheus {prom}" in up.stdout
        for pid_file in ("prometheus.pid", "alertmanager.pid"):
            assert (state / pid_file).read_text().strip().isdigit()

        # Prometheus runs the generated rules, scrapes the target and knows its Alertmanager
        groups = http_json(f"{prom}/api/v1/rules")["data"]["groups"]
        assert {g["name"] for g in groups} >= {"agentwatch-agents", "agentwatch-agents.rules"}
        assert all(r["health"] != "err" for g in groups for r in g["rules"])
        instances = wait_until(lambda: [t["labels"]["instance"] for t in
                                        http_json(f"{prom}/api/v1/targets")["data"]["activeTargets"]], 15,
                               "Prometheus's scrape targets")
        assert instances == [target]
        assert http_json(f"{am}/api/v2/status")["config"]["original"].count("oncall-pager") >= 2

        # up again: the same processes, nothing to reload
        again = cli("stack", "up", "--state-dir", str(state), "--scrape", target, "--scrape-interval", "2s",
                    "--json", cwd=tmp_path)
        assert again.returncode == 0, again.stderr
        second = json.loads(again.stdout)
        assert second["action"] == "already running"
        for name in ("prometheus", "alertmanager"):
            assert (second[name]["pid"], second[name]["port"]) == (first[name]["pid"], first[name]["port"])
        # other scrape targets: reloaded in place (same pids and ports)
        other = f"127.0.0.1:{_free_port()}"
        reload = cli("stack", "up", "--state-dir", str(state), "--scrape", other, "--json", cwd=tmp_path)
        third = json.loads(reload.stdout)
        assert third["action"] == "reloaded" and third["prometheus"]["pid"] == first["prometheus"]["pid"]
        stack_api = stack.status(state)
        assert stack_api.healthy and stack_api.scrape_targets == [other]

        text = cli("stack", "status", "--state-dir", str(state), cwd=tmp_path)
        assert text.returncode == 0 and "healthy" in text.stdout and prom in text.stdout and am in text.stdout
    finally:
        down = cli("stack", "down", "--state-dir", str(state), cwd=tmp_path)
    assert down.returncode == 0 and "stopped prometheus and alertmanager" in down.stdout
    assert not (state / "prometheus.pid").exists() and not (state / "alertmanager.pid").exists()
    stopped = cli("stack", "status", "--state-dir", str(state), cwd=tmp_path)
    assert stopped.returncode == 1 and "not running" in stopped.stdout
    again = cli("stack", "down", "--state-dir", str(state), cwd=tmp_path)
    assert again.returncode == 0 and "no stack running" in again.stdout
    # Prometheus down: check says so in one line, exit 2
    check = cli("check", "--prometheus", prom, cwd=tmp_path)
    assert check.returncode == 2
    assert f"Prometheus at {prom} is not reachable: connection refused" in one_error_line(check)


def test_check_falls_back_to_the_local_stack(tmp_path):
    binary("prometheus"), binary("prometheus-alertmanager")
    try:
        up = cli("stack", "up", "--scrape", f"127.0.0.1:{_free_port()}", cwd=tmp_path)  # default state dir
        assert up.returncode == 0, up.stderr
        assert (tmp_path / ".agentwatch" / "stack" / "stack.json").is_file()
        check = cli("check", "--json", cwd=tmp_path)
        assert check.returncode == 0, check.stderr
        report = json.loads(check.stdout)
        assert report["agents"] == []
        assert report["source"] == stack.status(tmp_path / ".agentwatch/stack").prometheus_url
        text = cli("check", cwd=tmp_path)
        assert text.returncode == 0 and "No agent has agentwatch metrics" in text.stdout
    finally:
        cli("stack", "down", cwd=tmp_path)


def test_a_port_in_use_is_one_line(tmp_path):
    binary("prometheus"), binary("prometheus-alertmanager")
    state = tmp_path / "stack"
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        for option in ("--prometheus-port", "--alertmanager-port"):
            proc = cli("stack", "up", "--state-dir", str(state), option, str(port), cwd=tmp_path)
            assert proc.returncode == 1
            line = one_error_line(proc)
            assert f"port {port} is already in use" in line and option in line
    status = stack.status(state)
    assert status.stopped, "nothing left running"


def test_a_port_taken_after_it_was_chosen_is_one_line(tmp_path, monkeypatch):
    """Prometheus itself finds its port taken (a race with another program): the same one line."""
    binary("prometheus"), binary("prometheus-alertmanager")
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        monkeypatch.setattr(stack, "port_in_use", lambda p, host="127.0.0.1": False)  # the check saw it free
        with pytest.raises(stack.PortInUse, match=f"port {port} is already in use"):
            stack.up(tmp_path / "stack", settings=stack.Settings(prometheus_port=port))
    assert stack.status(tmp_path / "stack").stopped


def test_a_missing_binary_is_one_line(tmp_path):
    proc = cli("stack", "up", "--state-dir", str(tmp_path / "stack"), cwd=tmp_path, environ=_without_binaries())
    assert proc.returncode == 1
    line = one_error_line(proc)
    assert "prometheus not found: install the Debian package prometheus" in line
    assert not (tmp_path / "stack" / "prometheus.yml").exists(), "nothing written before the binaries are found"
    bad = env(AGENTWATCH_ALERTMANAGER_BIN=str(tmp_path / "no-such-alertmanager"))
    proc = cli("stack", "up", "--state-dir", str(tmp_path / "stack"), cwd=tmp_path, environ=bad)
    assert proc.returncode == 1
    assert f"AGENTWATCH_ALERTMANAGER_BIN={tmp_path / 'no-such-alertmanager'} is not an executable" in \
        one_error_line(proc)


def test_demo_with_prometheus_goes_on_without_the_binaries(tmp_path):
    proc = cli("demo", "--runs", "1", "--with-prometheus", "--json", "--out-dir", str(tmp_path / "out"),
               "--prometheus-port", str(free_port_base()), cwd=tmp_path, environ=_without_binaries(), timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    notes = [line for line in proc.stderr.splitlines() if line.startswith("--with-prometheus:")]
    assert len(notes) == 1 and "prometheus not found" in notes[0] and "continuing without" in notes[0]
    result = json.loads(proc.stdout)
    assert "prometheus not found" in result["prometheus"]["skipped"]
    assert result["prometheus"]["prometheus_url"] is None and result["thresholds"]["verdicts"]


def test_a_missing_binary_fails_in_ci_and_skips_elsewhere(tmp_path):
    """The suite's rule for Prometheus/Alertmanager tests: in CI a missing binary is a failure, never a skip."""
    test = f"{HERE / 'test_stack.py'}::test_a_port_in_use_is_one_line"
    base = {k: v for k, v in _without_binaries().items() if k != "CI"}
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(HERE.parent), test]
    ci = subprocess.run(args, capture_output=True, text=True, timeout=120, env={**base, "CI": "true"}, cwd=tmp_path)
    assert ci.returncode == 1 and "1 failed" in ci.stdout, ci.stdout[-2000:]
    assert "`prometheus` not found on PATH" in ci.stdout
    local = subprocess.run(args, capture_output=True, text=True, timeout=120, env=base, cwd=tmp_path)
    assert local.returncode == 0 and "1 skipped" in local.stdout, local.stdout[-2000:]


def test_stack_api_rejects_bad_settings(tmp_path):
    with pytest.raises(stack.StackError, match="scrape target must be HOST:PORT"):
        stack.up(tmp_path, settings=stack.Settings(scrape_targets=("localhost",)))
    with pytest.raises(stack.StackError, match="scrape-interval must be a positive Prometheus duration"):
        stack.up(tmp_path, settings=stack.Settings(scrape_interval="often"))
    assert stack.down(tmp_path / "never-started") == []
    assert os.listdir(tmp_path) == [], "nothing written for bad settings"
