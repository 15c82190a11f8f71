"""The Elasticsearch client for agentwatch's settings, and safe words about its failures: used by the in-agent
handler and by the `agentwatch es` / `agentwatch logs` commands alike (so it lives in the runtime, which the
tooling may import and never the other way round). The `elasticsearch` package is imported only when a client
is built or an error described. Credentials never appear in a log line, an error message or a repr."""

from __future__ import annotations

import base64
import logging
import re
from typing import Any

from agentwatch import config
from agentwatch.config import ElasticsearchSettings
from agentwatch.runtime.logs import redact

_log = logging.getLogger("agentwatch")

def _secrets(es: ElasticsearchSettings | None) -> list[str]:
    if es is None:
        return []
    found = [s for s in (es.api_key, es.password) if s]
    if es.username and es.password:
        found.append(base64.b64encode(f"{es.username}:{es.password}".encode()).decode())
    return found


def scrub(text: str, es: ElasticsearchSettings | None = None, limit: int = 400) -> str:
    """Text safe to log or print: known secrets and credential-looking strings masked, length bounded."""
    for secret in _secrets(es):
        text = text.replace(secret, "[REDACTED]")
    text = re.sub(r"(?i)(authorization|api[-_ ]?key|apikey|basic)(\W+)\S+", r"\1\2[REDACTED]", text)
    text = re.sub(r"//[^/@\s]+:[^/@\s]*@", "//[REDACTED]@", text)  # user:password@ in any URL
    return redact(text, limit)


def _quiet_client_class() -> type:
    """An Elasticsearch client whose requests create no spans: the handler's bulk requests are not part of
    the agent's work and must not show up in its traces (the client has built-in OpenTelemetry spans)."""
    from elasticsearch import Elasticsearch

    try:
        from elasticsearch._otel import OpenTelemetry
    except ImportError:  # an older client without built-in tracing
        return Elasticsearch

    class QuietElasticsearch(Elasticsearch):  # `options()` copies keep the class, so stay quiet too
        def __init__(self, *args: Any, **kwargs: Any):
            super().__init__(*args, **kwargs)
            try:
                self._otel = OpenTelemetry(enabled=False)
            except Exception:  # noqa: BLE001 - a client change leaves its spans on; nothing else breaks
                pass

    return QuietElasticsearch


def build_client(es: ElasticsearchSettings, *, request_timeout: float = 10.0, quiet: bool = False,
                 max_retries: int = 0) -> Any:
    """An `elasticsearch.Elasticsearch` for the settings: API key or basic auth, TLS verification on unless
    turned off, an optional CA file. Retries are the caller's (`max_retries=0`): the handler does its own."""
    from elasticsearch import Elasticsearch

    cls = _quiet_client_class() if quiet else Elasticsearch
    kwargs: dict[str, Any] = {"hosts": [es.url], "request_timeout": request_timeout, "max_retries": max_retries,
                              "retry_on_status": (), "retry_on_timeout": False}
    if es.url.startswith("https://"):
        kwargs["verify_certs"] = es.verify_certs
        if not es.verify_certs:
            kwargs["ssl_show_warn"] = False  # warned once below instead of on every request
        if es.ca_certs:
            kwargs["ca_certs"] = es.ca_certs
    if es.api_key:
        kwargs["api_key"] = es.api_key
    elif es.username:
        kwargs["basic_auth"] = (es.username, es.password or "")
    return cls(**kwargs)


def warn_insecure(es: ElasticsearchSettings) -> None:
    if es.url.startswith("https://") and not es.verify_certs:
        _log.warning("agentwatch: TLS certificate verification for Elasticsearch at %s is OFF (%s=false)",
                     es.url, config.ENV_ES_VERIFY_CERTS)
    if es.url.startswith("http://") and (es.api_key or es.password):
        _log.warning("agentwatch: sending Elasticsearch credentials over plain http to %s; use https", es.url)


def describe_error(exc: BaseException, es: ElasticsearchSettings | None = None) -> str:
    """One line about a failed Elasticsearch call for a person, without secrets."""
    try:
        from elasticsearch import exceptions as ex
    except ImportError:  # pragma: no cover - the client is a dependency
        return scrub(f"{type(exc).__name__}: {exc}", es)
    where = es.url if es is not None else "Elasticsearch"
    if isinstance(exc, ex.AuthenticationException):
        return (f"{where} rejected the credentials (401); check {config.ENV_ES_API_KEY} / {config.ENV_ES_API_KEY_FILE} "
                f"or {config.ENV_ES_USERNAME} and {config.ENV_ES_PASSWORD}")
    if isinstance(exc, ex.AuthorizationException):
        return scrub(f"{where}: the credentials lack a privilege (403): {_api_reason(exc)}", es)
    if isinstance(exc, ex.UnsupportedProductError):
        return f"{where} does not answer as Elasticsearch (no X-Elastic-Product header)"
    if isinstance(exc, ex.ApiError):
        reason = _api_reason(exc)
        if "media_type_header_exception" in reason or "compatible-with" in reason:
            reason += ("; the elasticsearch client is newer than the cluster: "
                       "pip install 'elasticsearch>=8.13,<9' for an 8.x cluster")
        return scrub(f"{where} answered {exc.meta.status}: {reason}", es)
    if isinstance(exc, ex.SSLError) or "CERTIFICATE_VERIFY_FAILED" in str(exc):
        return scrub(f"TLS verification of {where} failed ({_first_line(exc)}); give the cluster's CA with "
                     f"--ca-certs or {config.ENV_ES_CA_CERTS}", es)
    if isinstance(exc, ex.ConnectionTimeout):
        return f"{where} did not answer in time"
    if isinstance(exc, ex.ConnectionError):
        return scrub(f"cannot connect to {where}: {_first_line(exc)}", es)
    return scrub(f"{type(exc).__name__}: {_first_line(exc)}", es)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _api_reason(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = body["error"]
        root = (err.get("root_cause") or [{}])[0] if isinstance(err.get("root_cause"), list) else {}
        kind = err.get("type") or root.get("type") or "error"
        reason = err.get("reason") or root.get("reason") or ""
        return f"{kind}: {reason}" if reason else str(kind)
    return str(getattr(exc, "message", "") or exc)
