"""Every environment variable agentwatch reads, read here: their names, defaults and parsing, in one place.

Read once (at start-up, or when a run or the price book first needs them), so the hot path never parses
environment variables. A malformed value logs a warning naming the variable and falls back to the default.
The OpenTelemetry variables agentwatch looks at (endpoint, exporters, timeout) keep the SDK's names and
meaning; agentwatch's own are `AGENTWATCH_*`, plus the GenAI conventions' content-capture switch.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from typing import Any, Mapping
from urllib.parse import unquote, urlsplit, urlunsplit

from opentelemetry.environment_variables import OTEL_LOGS_EXPORTER, OTEL_METRICS_EXPORTER, OTEL_TRACES_EXPORTER
from opentelemetry.sdk.environment_variables import (
    OTEL_EXPORTER_OTLP_ENDPOINT,
    OTEL_EXPORTER_OTLP_LOGS_PROTOCOL,
    OTEL_EXPORTER_OTLP_METRICS_PROTOCOL,
    OTEL_EXPORTER_OTLP_PROTOCOL,
    OTEL_EXPORTER_OTLP_TIMEOUT,
    OTEL_EXPORTER_OTLP_TRACES_PROTOCOL,
    OTEL_EXPORTER_PROMETHEUS_HOST,
)

from agentwatch import semconv

_log = logging.getLogger("agentwatch")

# --- agentwatch's environment variables ------------------------------------------------------------------
ENV_CAPTURE_CONTENT = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"  # GenAI conventions' name
ENV_CONTENT_MAX_LENGTH = "AGENTWATCH_CONTENT_MAX_LENGTH"
ENV_STREAM_USAGE = "AGENTWATCH_STREAM_USAGE"  # inject | off
ENV_JSON_LOGS = "AGENTWATCH_JSON_LOGS"  # stdout | stderr | a file path
ENV_MODEL_LABEL_LIMIT = "AGENTWATCH_MODEL_LABEL_LIMIT"
ENV_PRICES_FILE = "AGENTWATCH_PRICES_FILE"
ENV_THRESHOLDS_FILE = "AGENTWATCH_THRESHOLDS_FILE"
ENV_PROMETHEUS_PORT = "AGENTWATCH_PROMETHEUS_PORT"
ENV_ROOT_SPAN_RUNS = "AGENTWATCH_ROOT_SPAN_RUNS"  # off | server | all
ENV_RUN_TTL_SECONDS = "AGENTWATCH_RUN_TTL_SECONDS"
ENV_RUN_MAX_COST_USD = "AGENTWATCH_RUN_MAX_COST_USD"
ENV_RUN_MAX_TOKENS = "AGENTWATCH_RUN_MAX_TOKENS"
ENV_RUN_MAX_INFERENCE_CALLS = "AGENTWATCH_RUN_MAX_INFERENCE_CALLS"
ENV_BUDGET_WARN_FRACTION = "AGENTWATCH_BUDGET_WARN_FRACTION"
ENV_EXIT_TIMEOUT_SECONDS = "AGENTWATCH_EXIT_TIMEOUT_SECONDS"  # the most exporting may add at exit
ENV_ES_URL = "AGENTWATCH_ES_URL"
ENV_ES_NAMESPACE = "AGENTWATCH_ES_NAMESPACE"
ENV_ES_API_KEY = "AGENTWATCH_ES_API_KEY"  # the "encoded" form (base64 of id:key)
ENV_ES_API_KEY_FILE = "AGENTWATCH_ES_API_KEY_FILE"
ENV_ES_USERNAME = "AGENTWATCH_ES_USERNAME"
ENV_ES_PASSWORD = "AGENTWATCH_ES_PASSWORD"
ENV_ES_PASSWORD_FILE = "AGENTWATCH_ES_PASSWORD_FILE"
ENV_ES_CA_CERTS = "AGENTWATCH_ES_CA_CERTS"
ENV_ES_VERIFY_CERTS = "AGENTWATCH_ES_VERIFY_CERTS"  # true (default) | false
ENV_ES_QUEUE_SIZE = "AGENTWATCH_ES_QUEUE_SIZE"
# the operator's tooling (CLI)
ENV_PROMETHEUS_BIN = "AGENTWATCH_PROMETHEUS_BIN"
ENV_ALERTMANAGER_BIN = "AGENTWATCH_ALERTMANAGER_BIN"
ENV_GRAFANA_API_TOKEN = "GRAFANA_API_TOKEN"

# OpenTelemetry's own variables that agentwatch reads too (spelled here where the SDK has no public constant)
ENV_OTEL_CONFIG_FILE = "OTEL_CONFIG_FILE"  # declarative SDK configuration (opentelemetry-sdk >= 1.45)
ENV_OTEL_RESOURCE_ATTRIBUTES = "OTEL_RESOURCE_ATTRIBUTES"  # read by the collector's resourcedetection `env`
ENV_OTLP_HTTP_CREDENTIAL_PROVIDERS = {
    "traces": "OTEL_PYTHON_EXPORTER_OTLP_HTTP_TRACES_CREDENTIAL_PROVIDER",
    "metrics": "OTEL_PYTHON_EXPORTER_OTLP_HTTP_METRICS_CREDENTIAL_PROVIDER",
    "logs": "OTEL_PYTHON_EXPORTER_OTLP_HTTP_LOGS_CREDENTIAL_PROVIDER",
}
ENV_OTLP_HTTP_CREDENTIAL_PROVIDER = "OTEL_PYTHON_EXPORTER_OTLP_HTTP_CREDENTIAL_PROVIDER"
# Other libraries' variables agentwatch takes into account
ENV_ANTHROPIC_SDK_TRACING = ("ANTHROPIC_OPEN_TELEMETRY", "ANTHROPIC_OPEN_TELEMETRY_TRACES_CONTENT_MODE",
                             "ANTHROPIC_OPEN_TELEMETRY_TRACES_MAX_CONTENT_BYTES")  # the anthropic SDK's own spans
ENV_TRACELOOP_METRICS = "TRACELOOP_METRICS_ENABLED"  # OpenLLMetry's metrics switch
_EXPORTERS_ENV = {"traces": OTEL_TRACES_EXPORTER, "metrics": OTEL_METRICS_EXPORTER, "logs": OTEL_LOGS_EXPORTER}
_PROTOCOL_ENV = {"traces": OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, "metrics": OTEL_EXPORTER_OTLP_METRICS_PROTOCOL,
                 "logs": OTEL_EXPORTER_OTLP_LOGS_PROTOCOL}

DEFAULT_CONTENT_MAX_LENGTH = 8192
DEFAULT_MODEL_LABEL_LIMIT = 200
DEFAULT_ES_QUEUE_SIZE = 10_000
ROOT_SPAN_MODES = ("off", "server", "all")
DEFAULT_RUN_TTL_S = 3600.0
DEFAULT_OTLP_TIMEOUT_S = 10.0  # the OTLP exporters' own default (seconds, as the Python SDK reads it)


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


def _text(name: str) -> str | None:
    """The stripped value, or None when unset or blank."""
    return (os.environ.get(name) or "").strip() or None


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
        stream_usage = (os.environ.get(ENV_STREAM_USAGE) or "").strip().lower()
        if stream_usage not in {"", "inject", "off", "none"}:
            _log.warning(
                "agentwatch: %s=%r is not one of inject|off; leaving requests unchanged",
                ENV_STREAM_USAGE, stream_usage,
            )
        return cls(
            capture_content=_flag(os.environ.get(ENV_CAPTURE_CONTENT)),
            content_max_length=_positive_int(ENV_CONTENT_MAX_LENGTH, DEFAULT_CONTENT_MAX_LENGTH),
            inject_stream_usage=stream_usage == "inject",
            json_logs=_text(ENV_JSON_LOGS),
            model_label_limit=_positive_int(ENV_MODEL_LABEL_LIMIT, DEFAULT_MODEL_LABEL_LIMIT),
            elasticsearch=ElasticsearchSettings.from_env(),
        )


# --- files -----------------------------------------------------------------------------------------------
def prices_file() -> str | None:
    """The price override file (AGENTWATCH_PRICES_FILE), or None."""
    return os.environ.get(ENV_PRICES_FILE) or None


def thresholds_file() -> str | None:
    """The threshold override file (AGENTWATCH_THRESHOLDS_FILE), or None."""
    return os.environ.get(ENV_THRESHOLDS_FILE) or None


# --- runs ------------------------------------------------------------------------------------------------
def root_span_mode() -> str:
    """Which root spans count as runs (AGENTWATCH_ROOT_SPAN_RUNS): off (default), server or all."""
    mode = (os.environ.get(ENV_ROOT_SPAN_RUNS) or "off").strip().lower()
    if mode not in ROOT_SPAN_MODES:
        _log.warning("agentwatch: %s=%r is not one of %s; using off", ENV_ROOT_SPAN_RUNS, mode,
                     "|".join(ROOT_SPAN_MODES))
        return "off"
    return mode


def run_ttl_seconds() -> float:
    """How long a run whose span never ends is kept (AGENTWATCH_RUN_TTL_SECONDS, default 3600)."""
    raw = os.environ.get(ENV_RUN_TTL_SECONDS)
    try:
        return float(raw) if raw else DEFAULT_RUN_TTL_S
    except ValueError:
        _log.warning("agentwatch: %s=%r is not a number; using %s", ENV_RUN_TTL_SECONDS, raw, DEFAULT_RUN_TTL_S)
        return DEFAULT_RUN_TTL_S


def run_budget_limits() -> dict[str, Any]:
    """Default run limits from the AGENTWATCH_RUN_MAX_* variables (None = no limit) and the warning
    fraction (AGENTWATCH_BUDGET_WARN_FRACTION, default 0.8); malformed values are ignored with a warning."""
    def number(name: str, kind: type) -> Any:
        raw = os.environ.get(name)
        if not raw:
            return None
        try:
            value = kind(raw)
            if value <= 0:
                raise ValueError
            return value
        except ValueError:
            _log.warning("agentwatch: %s=%r is not a positive number; ignored", name, raw)
            return None

    fraction = number(ENV_BUDGET_WARN_FRACTION, float)
    return {
        "cost_usd": number(ENV_RUN_MAX_COST_USD, float),
        "tokens": number(ENV_RUN_MAX_TOKENS, int),
        "inference_calls": number(ENV_RUN_MAX_INFERENCE_CALLS, int),
        "warn_fraction": fraction if fraction is not None and fraction < 1 else 0.8,
    }


# --- export (OpenTelemetry's variables, read the way the SDK reads them) ----------------------------------
def otlp_endpoint() -> str | None:
    """OTEL_EXPORTER_OTLP_ENDPOINT, the collector `agentwatch.init()` (and the demo) export to; None when unset."""
    return _text(OTEL_EXPORTER_OTLP_ENDPOINT)


def prometheus_host() -> str:
    """Where `agentwatch.init(prometheus_port=...)` listens (OTEL_EXPORTER_PROMETHEUS_HOST, default localhost)."""
    return os.environ.get(OTEL_EXPORTER_PROMETHEUS_HOST, "localhost")


def exporter_names(signal: str) -> list[str]:
    """The exporters OTEL_{TRACES,METRICS,LOGS}_EXPORTER names for a signal; [] for unset or `none`."""
    raw = os.environ.get(_EXPORTERS_ENV[signal]) or ""
    if raw.strip().lower() == "none":
        return []
    return [name.strip() for name in raw.split(",") if name.strip()]


def uses_otlp_http(signal: str) -> bool:
    """Whether the SDK's configurator will build the OTLP/HTTP exporter for this signal."""
    protocol = (os.environ.get(_PROTOCOL_ENV[signal]) or os.environ.get(OTEL_EXPORTER_OTLP_PROTOCOL) or "").strip()
    names = exporter_names(signal)
    return "otlp_proto_http" in names or ("otlp" in names and protocol == "http/protobuf")


def otlp_http_credential_provider(signal: str) -> str | None:
    """The credential provider (a requests.Session entry point) configured for a signal's OTLP/HTTP exporter."""
    return _text(ENV_OTLP_HTTP_CREDENTIAL_PROVIDER) or _text(ENV_OTLP_HTTP_CREDENTIAL_PROVIDERS[signal])


def sdk_config_file() -> str | None:
    """OTEL_CONFIG_FILE: the SDK is configured from a file, and configurator arguments are ignored."""
    return _text(ENV_OTEL_CONFIG_FILE)


def exit_timeout_seconds() -> float:
    """The most time exporting may add when the agent exits (AGENTWATCH_EXIT_TIMEOUT_SECONDS); by default
    the OTLP exporters' own timeout (OTEL_EXPORTER_OTLP_TIMEOUT, seconds, default 10)."""
    otlp = DEFAULT_OTLP_TIMEOUT_S
    raw = _text(OTEL_EXPORTER_OTLP_TIMEOUT)
    if raw is not None:
        try:
            otlp = float(raw)
        except ValueError:
            pass  # the exporters warn about it themselves and use 10 s
    raw = _text(ENV_EXIT_TIMEOUT_SECONDS)
    if raw is None:
        return otlp
    try:
        value = float(raw)
        if not value > 0:
            raise ValueError
        return value
    except ValueError:
        _log.warning("agentwatch: %s=%r is not a positive number of seconds; using %s", ENV_EXIT_TIMEOUT_SECONDS,
                     raw, otlp)
        return otlp


# --- other instrumentations -------------------------------------------------------------------------------
def anthropic_sdk_tracing_configured() -> bool:
    """Whether the environment configures the anthropic SDK's own spans (ANTHROPIC_OPEN_TELEMETRY=false turns
    them off; any other value, or a content-mode variable, is the user's explicit choice)."""
    value = os.environ.get(ENV_ANTHROPIC_SDK_TRACING[0], "").strip().lower()
    return (value not in ("", "false")) or any(os.environ.get(name) for name in ENV_ANTHROPIC_SDK_TRACING[1:])


def traceloop_metrics_enabled() -> bool:
    """Whether OpenLLMetry records its own gen_ai.client.* metrics (TRACELOOP_METRICS_ENABLED, default true)."""
    return (os.environ.get(ENV_TRACELOOP_METRICS) or "true").lower() == "true"


# --- the operator's tooling -------------------------------------------------------------------------------
def binary_override(env_name: str) -> str | None:
    """A binary the user points the CLI at (AGENTWATCH_PROMETHEUS_BIN, AGENTWATCH_ALERTMANAGER_BIN), or None."""
    return _text(env_name)


def grafana_token() -> str | None:
    """The Grafana API token from GRAFANA_API_TOKEN, or None."""
    return _text(ENV_GRAFANA_API_TOKEN)


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
                              f"(set {ENV_ES_PASSWORD} or {ENV_ES_PASSWORD_FILE})")
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
        url = url or (environ.get(ENV_ES_URL) or "").strip()
        if not url:
            return None

        def get(name: str) -> str | None:
            return (environ.get(name) or "").strip() or None

        verify = (get(ENV_ES_VERIFY_CERTS) or "true").lower() not in {"0", "false", "no", "off"}
        raw_queue = get(ENV_ES_QUEUE_SIZE)
        try:
            queue_size = int(raw_queue) if raw_queue else None
        except ValueError:
            raise ConfigError(f"{ENV_ES_QUEUE_SIZE}={raw_queue!r} is not an integer") from None
        return cls.build(url, namespace=get(ENV_ES_NAMESPACE), api_key=get(ENV_ES_API_KEY),
                         api_key_file=get(ENV_ES_API_KEY_FILE), username=get(ENV_ES_USERNAME),
                         password=environ.get(ENV_ES_PASSWORD) or None,
                         password_file=get(ENV_ES_PASSWORD_FILE), ca_certs=get(ENV_ES_CA_CERTS),
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
    "namespace": ENV_ES_NAMESPACE, "api_key": ENV_ES_API_KEY,
    "api_key_file": ENV_ES_API_KEY_FILE, "username": ENV_ES_USERNAME,
    "password": ENV_ES_PASSWORD, "password_file": ENV_ES_PASSWORD_FILE,
    "ca_certs": ENV_ES_CA_CERTS, "verify_certs": ENV_ES_VERIFY_CERTS,
    "queue_size": ENV_ES_QUEUE_SIZE,
}
ELASTICSEARCH_OPTIONS = frozenset(_OPTION_ENV)
# an explicit value replaces the environment's other form of the same secret
_REPLACES = {"api_key": ENV_ES_API_KEY_FILE, "api_key_file": ENV_ES_API_KEY,
             "password": ENV_ES_PASSWORD_FILE, "password_file": ENV_ES_PASSWORD}


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
        env[ENV_ES_URL] = url
    for key, value in options.items():
        if value is None:
            continue
        if key in _REPLACES:
            env.pop(_REPLACES[key], None)
        env[_OPTION_ENV[key]] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return ElasticsearchSettings.from_environ(env)
