"""What the machine offers the stack: the Prometheus and Alertmanager binaries, free loopback ports, and the
stack's errors (each a one-line message)."""

from __future__ import annotations

import errno
import shutil
import socket
from typing import Sequence

from agentwatch import config

HOST = "127.0.0.1"

# component -> (environment variable, binary names tried on PATH, Debian package)
_BINARIES = {
    "prometheus": (config.ENV_PROMETHEUS_BIN, ("prometheus",), "prometheus"),
    "alertmanager": (config.ENV_ALERTMANAGER_BIN, ("prometheus-alertmanager", "alertmanager"),
                     "prometheus-alertmanager"),
}


class StackError(Exception):
    """A failure reported as one line."""


class BinaryMissing(StackError):
    """A Prometheus or Alertmanager binary is not installed."""


class PortInUse(StackError):
    """A requested port is taken."""


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
