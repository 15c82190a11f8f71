"""A dead or hanging collector never holds the agent: fail-fast OTLP/HTTP sessions and one bounded exit.

The OTLP/HTTP exporters retry a failed export with backoff (1, 2, 4 s, ...) until their timeout
(OTEL_EXPORTER_OTLP_TIMEOUT, 10 s), and at exit the tracer, meter and logger providers flush one after the
other, each through that retry loop: a collector that refuses connections added half a minute to every
run. agentwatch bounds it in two places, for the exporters it configures (`opentelemetry-instrument` with
the agentwatch configurator, and `agentwatch.init()`):

* `GuardedSession`: the `requests.Session` each OTLP/HTTP exporter gets (their public `session` argument).
  The health of every collector endpoint is shared by the three signals. A refused connection (or an
  unreachable host, or a request that times out) marks the endpoint down: that export ends at once, and
  exports to it end without sending for `RETRY_AFTER_S` seconds; then one request tries again. The session
  ends an export by raising `CollectorUnavailable`, which the exporters treat as final (no backoff).
* `ExportGuard.shutdown`, which replaces the providers' own atexit handlers. The exit budget
  (AGENTWATCH_EXIT_TIMEOUT_SECONDS, by default the OTLP timeout) bounds every request (so one still in
  flight when the agent exits ends within it); once exit begins a request gets at most what is left of
  it, a collector that answers "retry later" (429, 5xx) is not retried, and the providers flush in the
  order the data flows: traces (ending spans emit run metrics and logs), metrics, logs.

So the exit adds milliseconds when the collector refuses connections and at most the budget when it accepts
and never answers. Every batch agentwatch drops is counted per signal and reported in one log line at exit
(and at most once a minute while the agent runs); the exporters' own lines about those batches are filtered
out, and nothing is raised into the agent.
"""

from __future__ import annotations

import atexit
import inspect
import logging
import threading
import time
from typing import Any, Iterable
from urllib.parse import urlsplit

import requests
from urllib3.exceptions import NewConnectionError

from agentwatch import config

_log = logging.getLogger("agentwatch")

SIGNALS = ("traces", "metrics", "logs")
RETRY_AFTER_S = 5.0  # an endpoint found down is tried again after this long
# A provider's shutdown gets at least this long, even with the budget spent: its last batch is then dropped
# (at once, without sending) and counted before the report rather than after it.
MIN_SHUTDOWN_S = 0.25
REPORT_EVERY_S = 60.0  # while the agent runs, dropped batches are reported at most this often
# The OTLP/HTTP exporters' loggers: their line about a batch agentwatch ended is replaced by its own report.
EXPORTER_LOGGERS = (
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.http.metric_exporter",
    "opentelemetry.exporter.otlp.proto.http._log_exporter",
)


class CollectorUnavailable(requests.exceptions.RequestException):
    """An export agentwatch ended: the collector is down, or the exit budget is spent. Not a
    ConnectionError or Timeout, so the exporters do not retry it."""


def _retry_later(status: int) -> bool:
    """The statuses OTLP exporters retry with backoff."""
    return status in (408, 429) or 500 <= status <= 599


def _is_down(exc: Exception) -> bool:
    """A connection that could not be made (refused, unreachable, unknown host) or a request that timed out;
    not a reset of a pooled connection, which the exporters rightly retry at once."""
    if isinstance(exc, requests.exceptions.Timeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError)


def _describe(exc: Exception, timeout: Any) -> str:
    """What the collector did, for the report: "refused the connection", "did not answer within 10 s", ..."""
    within = f" within {round(timeout, 1):g} s" if isinstance(timeout, (int, float)) else " in time"
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return "did not accept the connection" + within
    if isinstance(exc, requests.exceptions.Timeout):
        return "did not answer" + within
    if "refused" in str(exc).lower():
        return "refused the connection"
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return f"could not be reached ({type(reason or exc).__name__})"


def _signal(url: str) -> str:
    path = urlsplit(url).path.rstrip("/")
    for signal in SIGNALS:
        if path.endswith("/" + signal):
            return signal
    return "other"


def _endpoint(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"  # never a user:password@ part


class _Health:
    __slots__ = ("down_since", "cause")

    def __init__(self) -> None:
        self.down_since: float | None = None
        self.cause = ""


class ExportGuard:
    """Collector health, the exit deadline and the dropped-batch counts of one set of exporters; owns the
    shutdown of the providers it is given."""

    def __init__(self, exit_timeout: float | None = None):
        self.exit_timeout = max(0.0, config.exit_timeout_seconds() if exit_timeout is None else exit_timeout)
        self.dropped: dict[str, int] = {}  # every batch dropped so far, by signal
        self._unreported: dict[str, int] = {}
        self._window_start: float | None = None
        self._causes: dict[str, None] = {}  # the distinct causes since the last report, in order
        self._health: dict[str, _Health] = {}
        self._exit_deadline: float | None = None
        self._providers: list[Any] = []
        self._shut_down = False
        self._lock = threading.Lock()
        _install_log_filter()

    def session(self) -> "GuardedSession":
        """A session for one OTLP/HTTP exporter (each exporter its own; the health is shared)."""
        return GuardedSession(self)

    # --- exit ----------------------------------------------------------------------------------------
    def own_shutdown(self, providers: Iterable[Any]) -> None:
        """Shut these providers down at exit through `shutdown()`, in the order given, instead of through
        their own atexit handlers."""
        self._providers = [p for p in providers if p is not None and callable(getattr(p, "shutdown", None))]
        for provider in self._providers:
            atexit.unregister(provider.shutdown)
        atexit.register(self.shutdown)

    def begin_exit(self) -> None:
        with self._lock:
            if self._exit_deadline is None:
                self._exit_deadline = time.monotonic() + self.exit_timeout

    def shutdown(self) -> None:
        """Flush and shut the owned providers down within the exit budget, then report what was dropped."""
        with self._lock:
            if self._shut_down:
                return
            self._shut_down = True
        atexit.unregister(self.shutdown)
        self.begin_exit()
        for provider in self._providers:
            if getattr(provider, "_shutdown", False) is True:
                continue  # the application shut it down already (the MeterProvider would warn about a second time)
            try:
                if "timeout_millis" in inspect.signature(provider.shutdown).parameters:
                    provider.shutdown(timeout_millis=max(self._remaining() or 0.0, MIN_SHUTDOWN_S) * 1000)
                else:
                    provider.shutdown()
            except Exception:  # noqa: BLE001 - the agent is exiting: never a traceback for telemetry
                _log.debug("agentwatch: %r shutdown failed", provider, exc_info=True)
        self.report("")

    def _remaining(self) -> float | None:
        deadline = self._exit_deadline
        return None if deadline is None else deadline - time.monotonic()

    # --- what the sessions ask and tell ----------------------------------------------------------------
    def check(self, url: str) -> tuple[str, float | None]:
        """(why this request must not be sent, or "") and the time it may take (None: its own timeout)."""
        remaining = self._remaining()
        if remaining is not None and remaining <= 0:
            return f"the exit budget of {self.exit_timeout:g} s was spent", None
        health = self._health.get(_endpoint(url))
        if health is not None and health.down_since is not None:
            if time.monotonic() - health.down_since < RETRY_AFTER_S:
                return health.cause, None
        return "", remaining

    def exiting(self) -> bool:
        return self._exit_deadline is not None

    def up(self, url: str) -> None:
        health = self._health.get(_endpoint(url))
        if health is not None:
            health.down_since = None

    def down(self, url: str, what: str) -> str:
        """Mark the request's endpoint down; the cause, for the report."""
        endpoint = _endpoint(url)
        with self._lock:
            health = self._health.setdefault(endpoint, _Health())
            health.down_since = time.monotonic()
            health.cause = f"the collector at {endpoint} {what}"
            return health.cause

    def drop(self, url: str, cause: str) -> CollectorUnavailable:
        """Count one dropped batch; the exception that ends its export."""
        signal = _signal(url)
        now = time.monotonic()
        report = False
        with self._lock:
            self.dropped[signal] = self.dropped.get(signal, 0) + 1
            self._unreported[signal] = self._unreported.get(signal, 0) + 1
            if len(self._causes) < 3:
                self._causes[cause] = None
            if self._window_start is None:
                self._window_start = now
            elif now - self._window_start >= REPORT_EVERY_S and not self.exiting():
                report = True
        if report:
            self.report(f" in the last {now - self._window_start:.0f} s")
        return CollectorUnavailable(f"agentwatch dropped the {signal} batch: {cause}")

    def report(self, when: str = "") -> None:
        """One log line for the batches dropped since the last report (none: no line); `when` qualifies it."""
        with self._lock:
            counts, self._unreported = self._unreported, {}
            causes, self._causes = self._causes, {}
            self._window_start = None
        total = sum(counts.values())
        if total:
            parts = ", ".join(f"{signal} {counts[signal]}" for signal in (*SIGNALS, "other") if counts.get(signal))
            _log.warning("agentwatch: %d telemetry export batch%s dropped (%s)%s: %s", total,
                         "" if total == 1 else "es", parts, when, "; ".join(causes))


class GuardedSession(requests.Session):
    """An OTLP/HTTP exporter's session that ends an export at once when its collector is down (see the module
    docstring); a healthy collector sees exactly the requests it would see without agentwatch."""

    def __init__(self, guard: ExportGuard):
        super().__init__()
        self._guard = guard

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        guard = self._guard
        refusal, remaining = guard.check(url)
        if refusal:
            raise guard.drop(url, refusal)
        # No request outlives the exit budget: one still in flight when the agent exits ends within it.
        limit = max(guard.exit_timeout if remaining is None else remaining, 0.01)
        timeout = kwargs.get("timeout")
        timeout = kwargs["timeout"] = limit if not isinstance(timeout, (int, float)) else min(timeout, limit)
        try:
            response = super().request(method, url, *args, **kwargs)
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            if not _is_down(exc):
                raise  # e.g. a pooled connection the collector closed: the exporter retries it at once
            raise guard.drop(url, guard.down(url, _describe(exc, timeout))) from None
        if guard.exiting() and _retry_later(response.status_code):
            response.close()  # exiting: no backoff and retry for a collector that asks to retry later
            raise guard.drop(url, guard.down(url, f"answered HTTP {response.status_code}"))
        guard.up(url)
        return response


class _DroppedByAgentwatch(logging.Filter):
    """Drops an exporter's log line about a batch agentwatch ended; agentwatch reports those itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else (record.args,)
        return not any(isinstance(arg, CollectorUnavailable) for arg in args)


_filter_installed = False


def _install_log_filter() -> None:
    global _filter_installed
    if not _filter_installed:
        _filter_installed = True
        for name in EXPORTER_LOGGERS:
            logging.getLogger(name).addFilter(_DroppedByAgentwatch())
