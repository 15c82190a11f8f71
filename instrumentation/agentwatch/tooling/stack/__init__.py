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

    host.py        the binaries, free ports, the errors
    state.py       the state directory: Settings, StackStatus, status()
    lifecycle.py   up() and down(): generate, start, reload, stop
"""

from agentwatch.tooling.stack.host import HOST, BinaryMissing, PortInUse, StackError, find_binary, free_port, port_in_use
from agentwatch.tooling.stack.lifecycle import down, up
from agentwatch.tooling.stack.state import (
    COMPONENTS, DEFAULT_STATE_DIR, DEFAULT_TARGETS, RULES_DIR, STATE_FILE, Component, Settings, StackStatus, status,
)

__all__ = [
    "COMPONENTS", "DEFAULT_STATE_DIR", "DEFAULT_TARGETS", "HOST", "RULES_DIR", "STATE_FILE", "BinaryMissing",
    "Component", "PortInUse", "Settings", "StackError", "StackStatus", "down", "find_binary", "free_port",
    "port_in_use", "status", "up",
]
