"""Settings read from the environment once, so the hot path never parses environment variables."""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from typing import Mapping
from urllib.parse import unquote, urlsplit, urlunsplit

from agentwatch import semconv

_log = logging.getLogger("agentwatch")

DEFAULT_CONTENT_MAX_LENGTH = 8192
DEFAULT_MODEL_LABEL_LIMIT = 200
DEFAULT_ES_QUEUE_SIZE = 10_000


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _positive_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = int(raw)
        if value <= 0:
            raise ValueError
    except ValueError:
        _log.warning("agentwatch: %s=%r is not a positive integer; using %d", name, raw, default)
        return default
    return value


@dataclass(frozen=True)
class Settings:
    capture_content: bool = False
    content_max_length: int = DEFAULT_CONTENT_MAX_LENGTH
    inject_stream_usage: bool = False
    json_logs: str | None = None  # "stdout", "stderr" or a file path; None = off
    model_label_limit: int = DEFAULT_MODEL_LABEL_LIMIT
    elasticsearch: "ElasticsearchSettings | None" = None  # None = no Elasticsearch log handler

    @classmethod
    def from_env(cls) -> "Settings":
        stream_usage = (os.environ.get(semconv.ENV_STREAM_USAGE) or "").strip().lower()
        if stream_usage not in {"", "inject", "off", "none"}:
            _log.warning(
                "agentwatch: %s=%r is not one of inject|off; leaving requests unchanged",
                semconv.ENV_STREAM_USAGE, stream_usage,
            )
        return cls(
            capture_content=_flag(os.environ.get(semconv.ENV_CAPTURE_CONTENT)),
            content_max_length=_positive_int(semconv.ENV_CONTENT_MAX_LENGTH, DEFAULT_CONTENT_MAX_LENGTH),
            inject_stream_usage=stream_usage == "inject",
            json_logs=(os.environ.get(semconv.ENV_JSON_LOGS) or "").strip() or None,
            model_label_limit=_positive_int("AGENTWATCH_MODEL_LABEL_LIMIT", DEFAULT_MODEL_LABEL_LIMIT),
            elasticsearch=ElasticsearchSettings.from_env(),
        )


# --- Elasticsearch ---------------------------------------------------------------------------------------
class ConfigError(ValueError):
    """A setting that cannot be used; the message names the setting, never a secret's value."""


_NAMESPACE_FORBIDDEN = re.compile(r'[\\/*?"<>|,# :\-]')


def validate_namespace(namespace: str) -> str:
    """A data stream namespace as Elasticsearch accepts it: lowercase, no '-', at most 100 bytes."""
    if (not namespace or namespace != namespace.lower() or _NAMESPACE_FORBIDDEN.search(namespace)
            or len(namespace.encode()) > 100 or namespace.startswith(("_", "."))):
        raise ConfigError(
            f"namespace {namespace!r} is not a valid data stream namespace (lowercase, no '-', spaces or "
            "any of \\/*?\"<>|,#:, at most 100 bytes), e.g. 'default' or 'prod'")
    return namespace


def data_stream_name(namespace: str = semconv.ES_DEFAULT_NAMESPACE) -> str:
    """`logs-agentwatch-<namespace>`; raises ConfigError for a namespace Elasticsearch would refuse."""
    return semconv.ES_DATA_STREAM_PATTERN.format(namespace=validate_namespace(namespace))


def split_credentials(url: str) -> tuple[str, str | None, str | None]:
    """(url without user:password@, username, password). Errors never echo the URL: it may hold a password."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
        port = parts.port  # raises ValueError on a bad port
    except ValueError:
        raise ConfigError("the Elasticsearch URL cannot be parsed; expected e.g. https://es.example.com:9200") \
            from None
    if parts.scheme not in ("http", "https") or not host:
        raise ConfigError("the Elasticsearch URL must start with http:// or https:// and name a host, "
                          "e.g. https://es.example.com:9200")
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", "")), username, password


def _read_secret(path: str, what: str) -> str:
    try:
        with open(os.path.expanduser(path), encoding="utf-8") as fh:
            value = fh.read().strip()
    except OSError as exc:
        raise ConfigError(f"cannot read the {what} file {path!r}: {exc.strerror or type(exc).__name__}") from None
    if not value:
        raise ConfigError(f"the {what} file {path!r} is empty")
    return value


@dataclass(frozen=True)
class ElasticsearchSettings:
    """Where and how agentwatch writes log records to Elasticsearch. Secrets stay out of repr()."""

    url: str  # without credentials
    namespace: str = semconv.ES_DEFAULT_NAMESPACE
    api_key: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_certs: str | None = None
    verify_certs: bool = True
    queue_size: int = DEFAULT_ES_QUEUE_SIZE

    @classmethod
    def build(cls, url: str, *, namespace: str | None = None, api_key: str | None = None,
              api_key_file: str | None = None, username: str | None = None, password: str | None = None,
              password_file: str | None = None, ca_certs: str | None = None, verify_certs: bool = True,
              queue_size: int | None = None) -> "ElasticsearchSettings":
        """Settings from explicit values; secrets may come from files. Raises ConfigError."""
        clean_url, url_user, url_password = split_credentials(url)
        if api_key is None and api_key_file:
            api_key = _read_secret(api_key_file, "API key")
        if password is None and password_file:
            password = _read_secret(password_file, "password")
        username = username or url_user
        password = password if password is not None else url_password
        if password is not None and not username:
            raise ConfigError("a password was given without a username")
        if username and password is None and not api_key:
            raise ConfigError(f"username {username!r} was given without a password "
                              f"(set {semconv.ENV_ES_PASSWORD} or {semconv.ENV_ES_PASSWORD_FILE})")
        if ca_certs and not os.path.isfile(os.path.expanduser(ca_certs)):
            raise ConfigError(f"the CA certificate file {ca_certs!r} does not exist")
        if queue_size is not None and queue_size <= 0:
            raise ConfigError("the queue size must be a positive integer")
        return cls(url=clean_url, namespace=validate_namespace(namespace or semconv.ES_DEFAULT_NAMESPACE),
                   api_key=api_key or None, username=username or None, password=password,
                   ca_certs=os.path.expanduser(ca_certs) if ca_certs else None, verify_certs=verify_certs,
                   queue_size=queue_size or DEFAULT_ES_QUEUE_SIZE)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], url: str | None = None) -> "ElasticsearchSettings | None":
        """Settings from AGENTWATCH_ES_* variables (url overrides AGENTWATCH_ES_URL); None when no URL.
        Raises ConfigError."""
        url = url or (environ.get(semconv.ENV_ES_URL) or "").strip()
        if not url:
            return None

        def get(name: str) -> str | None:
            return (environ.get(name) or "").strip() or None

        verify = (get(semconv.ENV_ES_VERIFY_CERTS) or "true").lower() not in {"0", "false", "no", "off"}
        raw_queue = get(semconv.ENV_ES_QUEUE_SIZE)
        try:
            queue_size = int(raw_queue) if raw_queue else None
        except ValueError:
            raise ConfigError(f"{semconv.ENV_ES_QUEUE_SIZE}={raw_queue!r} is not an integer") from None
        return cls.build(url, namespace=get(semconv.ENV_ES_NAMESPACE), api_key=get(semconv.ENV_ES_API_KEY),
                         api_key_file=get(semconv.ENV_ES_API_KEY_FILE), username=get(semconv.ENV_ES_USERNAME),
                         password=environ.get(semconv.ENV_ES_PASSWORD) or None,
                         password_file=get(semconv.ENV_ES_PASSWORD_FILE), ca_certs=get(semconv.ENV_ES_CA_CERTS),
                         verify_certs=verify, queue_size=queue_size)

    @classmethod
    def from_env(cls) -> "ElasticsearchSettings | None":
        """From the process environment; a bad setting is logged (without secrets) and the handler stays off."""
        try:
            return cls.from_environ(os.environ)
        except ConfigError as exc:
            _log.error("agentwatch: Elasticsearch logging is off: %s", exc)
            return None


_OPTION_ENV = {
    "namespace": semconv.ENV_ES_NAMESPACE, "api_key": semconv.ENV_ES_API_KEY,
    "api_key_file": semconv.ENV_ES_API_KEY_FILE, "username": semconv.ENV_ES_USERNAME,
    "password": semconv.ENV_ES_PASSWORD, "password_file": semconv.ENV_ES_PASSWORD_FILE,
    "ca_certs": semconv.ENV_ES_CA_CERTS, "verify_certs": semconv.ENV_ES_VERIFY_CERTS,
    "queue_size": semconv.ENV_ES_QUEUE_SIZE,
}
ELASTICSEARCH_OPTIONS = frozenset(_OPTION_ENV)
# an explicit value replaces the environment's other form of the same secret
_REPLACES = {"api_key": semconv.ENV_ES_API_KEY_FILE, "api_key_file": semconv.ENV_ES_API_KEY,
             "password": semconv.ENV_ES_PASSWORD_FILE, "password_file": semconv.ENV_ES_PASSWORD}


def elasticsearch_settings(url: str | None = None, environ: Mapping[str, str] | None = None,
                           **options: object) -> ElasticsearchSettings | None:
    """Settings from explicit options (`agentwatch.init(elasticsearch_options=...)`, CLI flags) over the
    AGENTWATCH_ES_* environment; None when there is no URL. Raises ConfigError, or TypeError for an unknown
    option name."""
    unknown = set(options) - ELASTICSEARCH_OPTIONS
    if unknown:
        raise TypeError(f"unknown Elasticsearch option(s) {sorted(unknown)}; known: {sorted(ELASTICSEARCH_OPTIONS)}")
    env = dict(os.environ if environ is None else environ)
    if url:
        env[semconv.ENV_ES_URL] = url
    for key, value in options.items():
        if value is None:
            continue
        if key in _REPLACES:
            env.pop(_REPLACES[key], None)
        env[_OPTION_ENV[key]] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return ElasticsearchSettings.from_environ(env)
