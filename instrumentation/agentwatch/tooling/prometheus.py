"""The one HTTP client of the tooling for the Prometheus and Alertmanager APIs (`agentwatch check`, the demo's
alerts, the local stack). Every way a request can fail is a PrometheusError with one line that says where and
why."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from agentwatch.tooling import urls

__all__ = ["PrometheusError", "alertmanager_alerts", "alerts", "base_url", "query", "targets"]


class PrometheusError(Exception):
    """Prometheus (or Alertmanager) could not be asked or did not answer like itself; the message is one line."""


def base_url(url: str, option: str = "--prometheus") -> str:
    """The Prometheus base URL without a trailing slash; ValueError (a usage error) when it is not
    http(s)://host[:port][/path]."""
    return urls.base_url(url, option=option, service="Prometheus", example="http://127.0.0.1:9090")


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", exc)
    if isinstance(reason, BaseException):
        return getattr(reason, "strerror", None) or str(reason) or type(reason).__name__
    return str(reason)


def _get(base: str, path: str, timeout: float, service: str) -> tuple[int, str, bytes]:
    """(HTTP status, content type, body) of GET base+path; an HTTP error status is an answer, not a failure."""
    request = urllib.request.Request(base + path, headers={"Accept": "application/json"})
    where = urls.display(base)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read()
    except urllib.error.HTTPError as exc:
        content_type = exc.headers.get("Content-Type", "") if exc.headers else ""
        return exc.code, content_type, exc.read() if exc.fp is not None else b""
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, ConnectionRefusedError):
            raise PrometheusError(f"{service} at {where} is not reachable: connection refused "
                                  "(is it running? `agentwatch stack status` shows a local one)") from None
        if isinstance(reason, socket.gaierror):
            raise PrometheusError(f"cannot resolve the host of {where}: {_reason(exc)}") from None
        if isinstance(reason, (socket.timeout, TimeoutError)):
            raise PrometheusError(f"no answer from {where} within {timeout:g}s") from None
        raise PrometheusError(f"cannot reach {service} at {where}: {_reason(exc)}") from None
    except (socket.timeout, TimeoutError):
        raise PrometheusError(f"no answer from {where} within {timeout:g}s") from None
    except (OSError, ValueError) as exc:  # connection reset, bad status line, ...
        raise PrometheusError(f"cannot talk to {service} at {where}: {_reason(exc)}") from None


def _not_like(base: str, service: str, status: int, content_type: str, path: str) -> PrometheusError:
    kind = content_type.split(";")[0].strip() or "no content type"
    return PrometheusError(f"{urls.display(base)} does not answer like {service} (HTTP {status}, {kind} from "
                           f"{path.split('?')[0]}): check the URL")


def _api_v1(base: str, path: str, timeout: float, what: str) -> dict[str, Any]:
    """The `data` of a Prometheus /api/v1 answer (its {"status", "data"} envelope checked)."""
    status, content_type, body = _get(base, path, timeout, "Prometheus")
    try:
        answer = json.loads(body)
    except ValueError:
        answer = None
    if not isinstance(answer, dict) or answer.get("status") not in ("success", "error"):
        raise _not_like(base, "Prometheus", status, content_type, path)
    if answer["status"] == "error":
        raise PrometheusError(f"Prometheus at {urls.display(base)} rejected {what}: "
                              f"{answer.get('errorType', 'error')}: {answer.get('error', '?')}")
    data = answer.get("data")
    return data if isinstance(data, dict) else {}


def _list(data: dict[str, Any], key: str, base: str, what: str) -> list[dict[str, Any]]:
    found = data.get(key)
    if not isinstance(found, list):
        raise PrometheusError(f"{urls.display(base)} answered {what} without {key}: not a Prometheus API?")
    return [item for item in found if isinstance(item, dict)]


def query(base: str, expr: str, timeout: float = 10.0, what: str = "the query") -> list[dict[str, Any]]:
    """An instant query's result vector."""
    data = _api_v1(base, "/api/v1/query?" + urllib.parse.urlencode({"query": expr}), timeout, what)
    result = data.get("result")
    if data.get("resultType") != "vector" or not isinstance(result, list):
        raise PrometheusError(f"{urls.display(base)} answered {what} without an instant vector: not a Prometheus "
                              "query API?")
    return result


def alerts(base: str, timeout: float = 5.0) -> list[dict[str, Any]]:
    """The alerts Prometheus evaluates now (pending and firing), from /api/v1/alerts."""
    return _list(_api_v1(base, "/api/v1/alerts", timeout, "the alerts request"), "alerts", base, "/api/v1/alerts")


def targets(base: str, timeout: float = 5.0) -> list[dict[str, Any]]:
    """Prometheus's active scrape targets (health, lastScrape), from /api/v1/targets."""
    data = _api_v1(base, "/api/v1/targets?state=active", timeout, "the targets request")
    return _list(data, "activeTargets", base, "/api/v1/targets")


def alertmanager_alerts(base: str, timeout: float = 5.0) -> list[dict[str, Any]]:
    """The alerts Alertmanager holds (with the receivers they are routed to), from /api/v2/alerts."""
    path = "/api/v2/alerts"
    status, content_type, body = _get(base, path, timeout, "Alertmanager")
    try:
        answer = json.loads(body)
    except ValueError:
        answer = None
    if status != 200 or not isinstance(answer, list):
        raise _not_like(base, "Alertmanager", status, content_type, path)
    return [item for item in answer if isinstance(item, dict)]
