"""Helpers for the alerting tests: the Prometheus and Alertmanager binaries, daemons on free loopback ports,
an HTTP receiver standing in for PagerDuty, Slack and the dead man's switch, and generating artifacts with
an override thresholds file."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from agentwatch.tooling.stack import free_port  # noqa: F401 - the tests' free port comes from the product's helper

REPO = Path(__file__).resolve().parents[2]
PACKAGES = {"promtool": "prometheus", "prometheus": "prometheus", "amtool": "prometheus-alertmanager",
            "prometheus-alertmanager": "prometheus-alertmanager"}


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def binary(name: str) -> str:
    """The binary's path; a missing one fails the test in CI (CI=true) and skips it elsewhere."""
    path = shutil.which(name)
    if path:
        return path
    message = (f"`{name}` not found on PATH: install the Debian package {PACKAGES[name]} "
               "(`make test` does, as root)")
    if in_ci():
        pytest.fail(message)
    pytest.skip(message)


def run(argv: list[str], timeout: float = 60, **kwargs: Any) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kwargs)


def http_json(url: str, data: Any = None, timeout: float = 5) -> Any:
    body = json.dumps(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"},
                                     method="POST" if body is not None else "GET")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        raw = response.read()
    return json.loads(raw) if raw else None


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


class Daemon:
    """A server process with its log in a file; started when its ready URL answers 200, stopped on exit."""

    def __init__(self, name: str, argv: list[str], log: Path, ready_url: str, env: dict[str, str] | None = None,
                 stdin: int | None = subprocess.DEVNULL):
        self.name, self.argv, self.log_path, self.ready_url = name, argv, log, ready_url
        self.env, self.stdin = env, stdin
        self.proc: subprocess.Popen | None = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    def start(self, timeout: float = 30) -> "Daemon":
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                                         stdin=self.stdin)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.ready_url, timeout=1) as response:
                    if response.status == 200:
                        return self
            except (OSError, urllib.error.URLError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"{self.name} not ready at {self.ready_url} after {timeout}s:\n{self.log()}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start_alertmanager(config: Path, workdir: Path) -> tuple[Daemon, str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    storage = workdir / "alertmanager-data"
    storage.mkdir(parents=True, exist_ok=True)
    daemon = Daemon("alertmanager", [
        binary("prometheus-alertmanager"), f"--config.file={config}", f"--storage.path={storage}",
        f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=", "--log.level=info",
    ], workdir / "alertmanager.log", f"{url}/-/ready")
    return daemon.start(), url


class Receiver:
    """Records every POST (path, JSON body); answers like PagerDuty's Events API v2 (202) or a webhook (200)."""

    def __init__(self) -> None:
        self.received: list[tuple[str, Any]] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server API
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = raw.decode(errors="replace")
                with outer._lock:
                    outer.received.append((self.path, body))
                if self.path.startswith("/pagerduty"):
                    payload = json.dumps({"status": "success", "message": "Event processed",
                                          "dedup_key": (body or {}).get("dedup_key", "")}).encode()
                    self.send_response(202)
                else:
                    payload = b"ok"
                    self.send_response(200)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def posts(self, path: str) -> list[Any]:
        with self._lock:
            return [body for p, body in self.received if p == path]

    def __enter__(self) -> "Receiver":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def generate(out_dir: Path, override: dict[str, Any] | None = None, env: dict[str, str] | None = None) -> Path:
    """Runs `agentwatch generate --out-dir out_dir` (with `override` as the thresholds file) and returns out_dir."""
    from click.testing import CliRunner

    from agentwatch.tooling.cli import main

    args = ["generate", "--out-dir", str(out_dir)]
    if override is not None:
        path = out_dir.parent / f"{out_dir.name}-thresholds.yaml"
        path.write_text(yaml.safe_dump(override))
        args += ["--thresholds", str(path)]
    result = CliRunner().invoke(main, args, env={"AGENTWATCH_THRESHOLDS_FILE": None, **(env or {})},
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return out_dir


def receiver_overrides(receiver: Receiver, secrets: Path, **timings: str) -> dict[str, Any]:
    """Alertmanager settings that send every receiver to the test's HTTP receiver, secrets in files."""
    secrets.mkdir(parents=True, exist_ok=True)
    (secrets / "pagerduty-routing-key").write_text("test-routing-key-0123456789abcdef\n")
    (secrets / "slack-webhook-url").write_text(receiver.url("/slack") + "\n")
    return {"alertmanager": {
        "group_wait": "1s", "group_interval": "1s", "repeat_interval": "1h", "critical_repeat_interval": "1h",
        "deadman_repeat_interval": "1s",
        "pagerduty_url": receiver.url("/pagerduty"),
        "pagerduty_routing_key_file": str(secrets / "pagerduty-routing-key"),
        "slack_api_url_file": str(secrets / "slack-webhook-url"),
        "deadman_url": receiver.url("/deadman"),
        **timings,
    }}
