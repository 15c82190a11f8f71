"""Base URLs of the services the tooling talks to (Prometheus, Alertmanager, Grafana): one validation, and one
way to show a URL in a message without the credentials it may carry."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def display(url: str) -> str:
    """The URL without any user:password part, for messages."""
    parts = urlsplit(url.strip())
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, parts.query, parts.fragment))


def base_url(url: str, *, option: str, service: str, example: str) -> str:
    """`url` without a trailing slash, when it is an http(s) base URL (scheme, host, optional port and path);
    else ValueError with one line naming the `option` it came from, e.g. ("--url", "Grafana",
    "http://localhost:3000")."""
    parts = urlsplit(url.strip())
    shown = display(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{option} must be {service}'s http(s) address such as {example}, got {shown!r}, "
                         "which is not an http(s) URL")
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise ValueError(f"{option} has an invalid port: {shown}") from None
    if parts.query or parts.fragment:
        raise ValueError(f"{option} must be {service}'s base URL, without a query or fragment, got {shown!r}")
    return url.strip().rstrip("/")
