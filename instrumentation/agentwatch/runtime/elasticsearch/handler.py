"""The in-agent Elasticsearch log handler: a bounded queue and a background thread sending ECS records with
`helpers.streaming_bulk`, resending only what failed with backoff, counting what it must drop."""

from __future__ import annotations

import atexit
import collections
import json
import logging
import os
import queue
import random
import threading
import time
from typing import Any, Mapping, Sequence

from agentwatch import semconv as sc
from agentwatch.config import DEFAULT_ES_QUEUE_SIZE, ElasticsearchSettings, data_stream_name
from agentwatch.runtime.elasticsearch.client import build_client, describe_error, scrub, warn_insecure

_log = logging.getLogger("agentwatch")

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

# Why records were not delivered: the `error.type` of sc.METRIC_ES_DROPPED_RECORDS.
DROP_QUEUE_FULL = "queue_full"
DROP_REJECTED = "rejected"
DROP_RETRIES_EXHAUSTED = "retries_exhausted"
DROP_SHUTDOWN = "shutdown"
DROP_SERIALIZATION = "serialization"


_WAKE = object()  # queue marker: send what you have now (flush, shutdown)
_MAX_ERROR_KINDS = 32
_REPORT_INTERVAL_S = 60.0


class ElasticsearchHandler:
    """Sends ECS log records to a data stream from a background thread; `write` never blocks.

    A full queue drops the record and counts it (`agentwatch.elasticsearch.dropped_records`,
    `error.type=queue_full`). Documents answered 429 or 5xx, or lost to a connection error, are resent
    (only those) with exponential backoff, up to `max_retries` times; other rejections (mapping errors, 4xx)
    are counted per Elasticsearch error type in `stats()["errors"]`. `flush()` waits for what was written
    so far; `close()` (also at interpreter exit) flushes for up to `shutdown_timeout` seconds.
    """

    def __init__(self, client: Any, namespace: str = sc.ES_DEFAULT_NAMESPACE, *,
                 queue_size: int = DEFAULT_ES_QUEUE_SIZE, batch_size: int = 500, flush_interval: float = 1.0,
                 max_batch_bytes: int = 5 * 1024 * 1024, max_retries: int = 5, initial_backoff: float = 0.5,
                 max_backoff: float = 30.0, shutdown_timeout: float = 5.0, dropped_counter: Any = None,
                 settings: ElasticsearchSettings | None = None, register_atexit: bool = True):
        self.index = data_stream_name(namespace)
        self.namespace = namespace
        # retries are ours (with backoff, failed documents only), not the transport's (whole request, no wait)
        self._client = client.options(max_retries=0, retry_on_status=())
        self.queue_size = queue_size
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_batch_bytes = max_batch_bytes
        self.max_retries = max_retries
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.shutdown_timeout = shutdown_timeout
        self._dropped_counter = dropped_counter
        self._settings = settings
        self._ds_fields = {"data_stream.type": sc.ES_DATA_STREAM_TYPE, "data_stream.dataset": sc.ES_DATASET,
                           "data_stream.namespace": namespace}
        self._accepted = 0  # records taken into the queue
        self._settled = 0  # of those, records indexed, rejected or given up on (set in _init_worker_state)
        self._indexed = 0
        self._failed = 0
        self._dropped = 0
        self._retried = 0
        self._errors: collections.Counter[str] = collections.Counter()
        self._last_report: dict[str, float] = {}
        self._closed = False
        self._deadline: float | None = None
        self._init_worker_state()
        self._atexit_registered = register_atexit
        if register_atexit:
            atexit.register(self.close)

    def _init_worker_state(self) -> None:
        """Queue, locks and (lazily started) thread; again in a forked child, which inherits none of the
        parent's threads and whose copies of the parent's locks and records are not its own."""
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._settled_cond = threading.Condition(self._lock)
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=self.queue_size)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._settled = self._accepted  # the parent's queued records are the parent's to send

    def _after_fork(self) -> None:
        self._init_worker_state()
        if self._settings is not None:  # the parent's pooled connections must not be shared
            try:
                self._client = build_client(self._settings, quiet=True).options(max_retries=0, retry_on_status=())
            except Exception:  # noqa: BLE001
                _log.debug("agentwatch: cannot rebuild the Elasticsearch client after fork", exc_info=True)

    def __repr__(self) -> str:
        where = self._settings.url if self._settings is not None else "client"
        return f"<ElasticsearchHandler {self.index} at {where}>"

    # --- the agent's side: never blocks, never raises
    def write(self, record: Mapping[str, Any]) -> None:
        try:
            if self._closed:
                self._drop(1, DROP_SHUTDOWN)
                return
            if self._pid != os.getpid():  # forked: the worker thread did not come along
                self._after_fork()
            if self._thread is None:
                self._start()
            with self._lock:
                try:
                    self._queue.put_nowait(record)
                except queue.Full:
                    full = True
                else:
                    self._accepted += 1
                    full = False
            if full:
                self._drop(1, DROP_QUEUE_FULL)
                self._report("queue_full", "agentwatch: the Elasticsearch log queue is full (%d records); dropping "
                             "records (counted in %s)", self.queue_size, sc.METRIC_ES_DROPPED_RECORDS)
        except Exception:  # noqa: BLE001 - the agent must never see a logging failure
            _log.debug("agentwatch: Elasticsearch handler write failed", exc_info=True)

    emit = write

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                thread = threading.Thread(target=self._run, name="agentwatch-elasticsearch", daemon=True)
                thread.start()
                self._thread = thread

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every record written so far is indexed or given up on; False on timeout."""
        timeout = self.shutdown_timeout if timeout is None else timeout
        with self._lock:
            target = self._accepted
            if self._settled >= target:
                return True
        self._wake()
        with self._settled_cond:
            return self._settled_cond.wait_for(lambda: self._settled >= target, timeout)

    def close(self, timeout: float | None = None) -> None:
        """Flush for up to `timeout` seconds (default `shutdown_timeout`), then stop the thread. Records that
        could not be sent by then are counted as dropped (`error.type=shutdown`)."""
        if self._closed:
            return
        self._closed = True
        if self._atexit_registered:
            atexit.unregister(self.close)
        timeout = self.shutdown_timeout if timeout is None else timeout
        self._deadline = time.monotonic() + timeout
        self._stopping.set()
        self._wake()
        thread = self._thread
        if thread is not None and thread.is_alive() and thread is not threading.current_thread():
            thread.join(timeout)
        with self._lock:
            left = self._accepted - self._settled
        if left > 0:
            self._settle(dropped=left, reason=DROP_SHUTDOWN)
            _log.warning("agentwatch: %d log records were still unsent to Elasticsearch at shutdown", left)

    shutdown = close

    def stats(self) -> dict[str, Any]:
        """Counters: records queued, indexed, failed (rejected or retries exhausted), dropped, resent."""
        with self._lock:
            return {"queued": self._accepted - self._settled, "indexed": self._indexed, "failed": self._failed,
                    "dropped": self._dropped, "retried": self._retried, "errors": dict(self._errors)}

    # --- accounting
    def _wake(self) -> None:
        try:
            self._queue.put_nowait(_WAKE)
        except queue.Full:
            pass  # a full queue keeps the worker busy anyway

    def _drop(self, count: int, reason: str) -> None:
        with self._lock:
            self._dropped += count
        self._count(count, reason)

    def _count(self, count: int, reason: str) -> None:
        if self._dropped_counter is not None and count:
            try:
                self._dropped_counter.add(count, {sc.ERROR_TYPE: reason})
            except Exception:  # noqa: BLE001
                pass

    def _settle(self, *, indexed: int = 0, failed: int = 0, dropped: int = 0, reason: str | None = None,
                errors: Mapping[str, int] | None = None) -> None:
        with self._lock:
            self._indexed += indexed
            self._failed += failed
            self._dropped += dropped
            for kind, n in (errors or {}).items():
                if kind not in self._errors and len(self._errors) >= _MAX_ERROR_KINDS:
                    kind = sc.ERROR_OTHER
                self._errors[kind] += n
            self._settled += indexed + failed + dropped
            self._settled_cond.notify_all()
        if reason is not None:
            self._count(failed + dropped, reason)

    def _report(self, key: str, message: str, *args: Any) -> None:
        now = time.monotonic()
        if now - self._last_report.get(key, -_REPORT_INTERVAL_S) >= _REPORT_INTERVAL_S:
            self._last_report[key] = now
            _log.warning(message, *args)

    # --- the worker
    def _run(self) -> None:
        try:
            from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY, attach, set_value

            attach(set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))  # no HTTP-client spans for our requests
        except Exception:  # noqa: BLE001
            pass
        while True:
            batch = self._next_batch()
            if batch:
                try:
                    self._send(batch)
                except Exception:  # noqa: BLE001 - the worker must outlive any bug
                    _log.warning("agentwatch: Elasticsearch handler error (records dropped)", exc_info=True)
                    self._settle(failed=len(batch), reason=DROP_REJECTED, errors={"agentwatch_error": 1})
            elif self._stopping.is_set() and self._queue.empty():
                return

    def _next_batch(self) -> list[Mapping[str, Any]]:
        batch: list[Mapping[str, Any]] = []
        linger_until: float | None = None
        while len(batch) < self.batch_size:
            if self._stopping.is_set():
                timeout = 0.0
            elif linger_until is None:
                timeout = self.flush_interval
            else:
                timeout = linger_until - time.monotonic()
            try:
                item = self._queue.get(timeout=timeout) if timeout > 0 else self._queue.get_nowait()
            except queue.Empty:
                if batch or self._stopping.is_set():
                    break
                continue
            if item is _WAKE:
                if batch:
                    break
                continue
            batch.append(item)
            if linger_until is None:
                linger_until = time.monotonic() + self.flush_interval
        return batch

    def _serialize(self, batch: Sequence[Mapping[str, Any]]) -> list[bytes]:
        docs = []
        bad = 0
        for record in batch:
            try:
                doc = {**record, **self._ds_fields}
                docs.append(json.dumps(doc, default=str, ensure_ascii=False, separators=(",", ":")).encode())
            except (TypeError, ValueError):
                bad += 1
        if bad:
            self._settle(failed=bad, reason=DROP_SERIALIZATION, errors={"serialization": bad})
        return docs

    def _send(self, batch: Sequence[Mapping[str, Any]]) -> None:
        pending = self._serialize(batch)
        attempt = 0
        while pending:
            pending, problem = self._bulk(pending)
            if not pending:
                return
            if attempt >= self.max_retries:
                self._settle(failed=len(pending), reason=DROP_RETRIES_EXHAUSTED,
                             errors={"retries_exhausted": len(pending)})
                self._report("exhausted", "agentwatch: gave up on %d log records for Elasticsearch after %d "
                             "retries (%s)", len(pending), self.max_retries, problem)
                return
            delay = min(self.max_backoff, self.initial_backoff * 2 ** attempt) * random.uniform(0.5, 1.0)
            if not self._sleep(delay):
                self._settle(dropped=len(pending), reason=DROP_SHUTDOWN)
                self._report("shutdown", "agentwatch: %d log records for Elasticsearch dropped at shutdown (%s)",
                             len(pending), problem)
                return
            attempt += 1
            with self._lock:
                self._retried += len(pending)

    def _sleep(self, delay: float) -> bool:
        """Back off; False when shutting down and the deadline leaves no time for another try."""
        if self._stopping.is_set():
            left = (self._deadline or 0.0) - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(delay, left))
            return True
        self._stopping.wait(delay)  # returns early at shutdown: try once more straight away
        return True

    def _bulk(self, docs: list[bytes]) -> tuple[list[bytes], str]:
        """One pass over `docs`: returns the documents to resend and a word on why."""
        from elasticsearch import helpers

        actions = ({"_op_type": "create", "_index": self.index, "_source": doc} for doc in docs)
        results: list[tuple[bool, dict[str, Any]]] = []
        failure: BaseException | None = None
        try:
            for result in helpers.streaming_bulk(
                    self._client, actions, chunk_size=self.batch_size, max_chunk_bytes=self.max_batch_bytes,
                    raise_on_error=False, raise_on_exception=False, max_retries=0, yield_ok=True):
                results.append(result)
        except Exception as exc:  # noqa: BLE001 - connection refused, timeout, TLS: resend what is left
            failure = exc
        retry: list[bytes] = []
        indexed = 0
        rejected: collections.Counter[str] = collections.Counter()
        sample = ""
        problem = describe_error(failure, self._settings) if failure is not None else ""
        for i, doc in enumerate(docs):
            if i >= len(results):
                retry.append(doc)
                continue
            ok, item = results[i]
            if ok:
                indexed += 1
                continue
            info = next(iter(item.values()), {}) if item else {}
            status = info.get("status")
            error = info.get("error")
            exception = info.get("exception")  # set when the whole request failed
            kind = _error_kind(error, status, exception)
            if status in RETRY_STATUSES or not isinstance(status, int):
                retry.append(doc)
                problem = problem or f"HTTP {status}: {kind}"
                continue
            rejected[kind] += 1
            if not sample:
                if exception is not None:
                    sample = f"{status} {kind}: {describe_error(exception, self._settings)}"
                else:
                    reason = error.get("reason", "") if isinstance(error, dict) else str(error or "")
                    sample = f"{status} {kind}: {reason}"
        self._settle(indexed=indexed)
        if rejected:
            count = sum(rejected.values())
            self._settle(failed=count, reason=DROP_REJECTED, errors=rejected)
            self._report("rejected", "agentwatch: Elasticsearch rejected %d log records (%s)", count,
                         scrub(sample, self._settings))
        return retry, problem


def _error_kind(error: Any, status: Any, exception: Any = None) -> str:
    """The Elasticsearch error type of a failed item (or of the failed request), e.g.
    mapper_parsing_exception; http_<status> when the answer names none."""
    if isinstance(error, dict) and error.get("type"):
        return str(error["type"])[:100]
    body = getattr(exception, "body", None)
    if isinstance(body, dict) and isinstance(body.get("error"), dict) and body["error"].get("type"):
        return str(body["error"]["type"])[:100]
    return f"http_{status}"


def open_handler(es: ElasticsearchSettings, *, meter: Any = None, **options: Any) -> ElasticsearchHandler:
    """The handler for the settings, with its dropped-records counter on `meter` (or the global meter)."""
    if meter is None:
        from opentelemetry import metrics

        meter = metrics.get_meter("agentwatch")
    counter = meter.create_counter(
        sc.METRIC_ES_DROPPED_RECORDS, unit=sc.UNIT_RECORD,
        description="Log records the Elasticsearch handler could not deliver, by error.type "
                    "(queue_full, rejected, retries_exhausted, shutdown, serialization).")
    warn_insecure(es)
    handler = ElasticsearchHandler(build_client(es, quiet=True), es.namespace, queue_size=es.queue_size,
                                   dropped_counter=counter, settings=es, **options)
    _log.debug("agentwatch: log records go to Elasticsearch data stream %s at %s", handler.index, es.url)
    return handler
