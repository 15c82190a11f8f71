"""Shared machinery of the LLM-client instrumentors: one `InferenceCall` per API call.

A client module (openai.py, anthropic.py) turns its SDK's request and response objects into the plain values
an `InferenceCall` takes; everything the telemetry contract says about an inference (span attributes,
metrics, cost, the log record, exactly-once ending) lives here, once. Every entry point into agentwatch code
from a patched method is guarded: an agentwatch bug is counted, logged (rate-limited) and swallowed.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import weakref
from typing import Any, Callable, Iterable

import wrapt
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from agentwatch import semconv as sc
from agentwatch.runtime.logs import emit as emit_log
from agentwatch.runtime.logs import redact
from agentwatch.pricing import TokenUsage
from agentwatch.runtime.runs import BudgetExceeded, check_current_budget
from agentwatch.runtime.telemetry import Telemetry, report_internal_error

_log = logging.getLogger("agentwatch")

def is_raw_response(result: Any) -> bool:
    """`with_raw_response` calls return an APIResponse wrapper instead of the parsed body."""
    return hasattr(result, "http_response") and hasattr(result, "parse")


def watch_raw_stream(call: "InferenceCall", raw: Any, observe: "ChunkObserver", is_async: bool) -> Any:
    """A raw streamed response (`with_raw_response` / `with_streaming_response`): its stream comes from
    `parse()`, so what `parse()` returns is wrapped (once); a raw response never parsed ends the call as
    abandoned when it is collected."""
    original = raw.parse
    proxy_cls = AsyncStreamProxy if is_async else SyncStreamProxy
    watched: dict[int, Any] = {}

    def wrap(parsed: Any) -> Any:
        key = id(parsed)
        if key not in watched:
            if hasattr(parsed, "__anext__" if is_async else "__next__"):
                watched[key] = proxy_cls(parsed, call, observe)
            else:
                call.end()
                watched[key] = parsed
        return watched[key]

    if is_async:
        async def parse(*args: Any, **kwargs: Any) -> Any:
            return wrap(await original(*args, **kwargs))
    else:
        def parse(*args: Any, **kwargs: Any) -> Any:
            return wrap(original(*args, **kwargs))

    raw.parse = parse
    weakref.finalize(raw, call.end, stream_outcome="abandoned")
    return raw


def parsed_body(result: Any) -> Any:
    return result.parse() if is_raw_response(result) else result


# --- value helpers -------------------------------------------------------------------------------------
class MalformedUsage(ValueError):
    """The provider's usage block is present but not a set of non-negative integers."""


def token_count(value: Any, *, optional: bool = False) -> int:
    """A reported token count; None is 0 for optional fields, anything not a non-negative int is malformed."""
    if value is None and optional:
        return 0
    if type(value) is int and value >= 0:
        return value
    raise MalformedUsage(f"token count {value!r}")


def error_type_of(exc: BaseException) -> str:
    return type(exc).__qualname__


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "…[truncated]"


def message_parts(content: Any) -> list[dict[str, Any]]:
    """Semconv message parts from a string or a list of provider content blocks."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "content": content}]
    parts: list[dict[str, Any]] = []
    for block in content if isinstance(content, (list, tuple)) else [content]:
        if isinstance(block, str):
            parts.append({"type": "text", "content": block})
            continue
        get = block.get if isinstance(block, dict) else (lambda k, _b=block: getattr(_b, k, None))
        kind = get("type")
        if kind in ("text", "input_text", "output_text"):
            parts.append({"type": "text", "content": get("text")})
        elif kind == "tool_use":
            parts.append({"type": "tool_call", "id": get("id"), "name": get("name"), "arguments": get("input")})
        elif kind == "tool_result":
            parts.append({"type": "tool_call_response", "id": get("tool_use_id"),
                          "response": get("content")})
        else:
            parts.append({"type": str(kind or "unknown")})
    return parts


def to_json(value: Any, limit: int) -> str:
    return truncate(json.dumps(value, default=lambda o: getattr(o, "__dict__", str(o)), ensure_ascii=False), limit)


# --- one API call --------------------------------------------------------------------------------------
class InferenceCall:
    """Telemetry of one LLM API call, from request to the end of its response or stream; ends once."""

    __slots__ = (
        "tel", "span", "provider", "operation", "request_model", "server_address", "server_port",
        "start", "start_ns", "first_chunk", "last_activity_ns", "response_id", "response_model", "finish_reasons",
        "usage", "usage_malformed", "output_text", "output_tool_calls", "ended", "lock",
    )

    def __init__(
        self,
        tel: Telemetry,
        provider: str,
        operation: str,
        request_model: str,
        server_address: str | None,
        server_port: int | None,
        request_attributes: dict[str, Any],
    ):
        self.tel = tel
        self.provider = provider
        self.operation = operation
        self.request_model = request_model
        self.server_address = server_address
        self.server_port = server_port
        attributes = {
            sc.GEN_AI_OPERATION_NAME: operation,
            sc.GEN_AI_PROVIDER_NAME: provider,
            sc.GEN_AI_REQUEST_MODEL: request_model,
        }
        if server_address:
            attributes[sc.SERVER_ADDRESS] = server_address
            if server_port:
                attributes[sc.SERVER_PORT] = server_port
        attributes.update(request_attributes)
        self.span = tel.tracer.start_span(f"{operation} {request_model}", kind=SpanKind.CLIENT, attributes=attributes)
        self.start = time.perf_counter()
        self.start_ns = time.time_ns()
        self.first_chunk: float | None = None
        self.last_activity_ns: int | None = None
        self.response_id: str | None = None
        self.response_model: str | None = None
        self.finish_reasons: list[str] = []
        self.usage: TokenUsage | None = None
        self.usage_malformed = False
        self.output_text: list[str] | None = [] if tel.settings.capture_content else None
        self.output_tool_calls: list[dict[str, Any]] = []
        self.ended = False
        self.lock = threading.Lock()

    # -- while the call runs
    def activate(self) -> object:
        """Makes the span current (so HTTP-level spans nest under it); returns the token for `deactivate`."""
        return otel_context.attach(trace.set_span_in_context(self.span))

    @staticmethod
    def deactivate(token: object) -> None:
        otel_context.detach(token)

    def chunk_seen(self) -> None:
        if self.first_chunk is None:
            self.first_chunk = time.perf_counter()
        self.last_activity_ns = time.time_ns()

    def set_usage(self, build: Callable[[], TokenUsage]) -> None:
        """Records usage from a provider-specific builder; a malformed block marks usage unavailable."""
        try:
            self.usage = build()
            self.usage_malformed = False
        except (MalformedUsage, TypeError, AttributeError) as exc:
            self.usage = None
            self.usage_malformed = True
            _log.debug("agentwatch: malformed usage from %s: %s", self.provider, exc)

    def set_input_messages(self, messages: list[dict[str, Any]]) -> None:
        self.span.set_attribute(sc.GEN_AI_INPUT_MESSAGES, to_json(messages, self.tel.settings.content_max_length))

    def set_system_instructions(self, parts: list[dict[str, Any]]) -> None:
        self.span.set_attribute(sc.GEN_AI_SYSTEM_INSTRUCTIONS, to_json(parts, self.tel.settings.content_max_length))

    # -- the end, exactly once
    def end(self, error: BaseException | None = None, *, stream_outcome: str | None = None,
            error_type: str | None = None) -> None:
        with self.lock:
            if self.ended:
                return
            self.ended = True
        try:
            self._record(error, stream_outcome, error_type)
        except Exception:  # noqa: BLE001 - fail open
            report_internal_error("InferenceCall.end")
            try:
                self.span.end()
            except Exception:  # noqa: BLE001
                pass

    def _record(self, error: BaseException | None, stream_outcome: str | None, error_type: str | None) -> None:
        tel = self.tel
        span = self.span
        end_ns = None
        if stream_outcome == "abandoned" and self.last_activity_ns is not None:
            end_ns = self.last_activity_ns
            elapsed = (self.last_activity_ns - self.start_ns) / 1e9
        else:
            elapsed = time.perf_counter() - self.start
        if error is not None and error_type is None:
            error_type = error_type_of(error)

        out: dict[str, Any] = {}  # span attributes, set in one call
        if self.response_id:
            out[sc.GEN_AI_RESPONSE_ID] = self.response_id
        if self.response_model:
            out[sc.GEN_AI_RESPONSE_MODEL] = self.response_model
        if self.finish_reasons:
            out[sc.GEN_AI_RESPONSE_FINISH_REASONS] = self.finish_reasons
        if stream_outcome is not None:
            out[sc.AGENTWATCH_STREAM_OUTCOME] = stream_outcome

        usage = self.usage
        cost: float | None = None
        cost_unknown = False
        if usage is not None:
            out[sc.GEN_AI_USAGE_INPUT_TOKENS] = usage.input_tokens
            out[sc.GEN_AI_USAGE_OUTPUT_TOKENS] = usage.output_tokens
            if usage.cache_read_tokens:
                out[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = usage.cache_read_tokens
            if usage.cache_write_tokens:
                out[sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] = usage.cache_write_tokens
            if usage.reasoning_tokens:
                out[sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = usage.reasoning_tokens
            prices = tel.prices()
            cost = prices.cost(self.provider, self.response_model or self.request_model, usage)
            if cost is None and self.response_model and self.response_model != self.request_model:
                cost = prices.cost(self.provider, self.request_model, usage)
            if cost is None:
                cost_unknown = True
                out[sc.AGENTWATCH_COST_UNKNOWN] = True
            else:
                out[sc.AGENTWATCH_COST_USD] = cost
        else:
            out[sc.AGENTWATCH_USAGE_UNAVAILABLE] = True

        if self.output_text is not None and (self.output_text or self.output_tool_calls):
            parts: list[dict[str, Any]] = []
            if self.output_text:
                parts.append({"type": "text", "content": "".join(self.output_text)})
            parts.extend(self.output_tool_calls)
            message = {"role": "assistant", "parts": parts,
                       "finish_reason": self.finish_reasons[0] if self.finish_reasons else None}
            out[sc.GEN_AI_OUTPUT_MESSAGES] = to_json([message], tel.settings.content_max_length)

        if error_type is not None:
            out[sc.ERROR_TYPE] = error_type
            span.set_status(Status(StatusCode.ERROR, error_type))
        span.set_attributes(out)

        labels = tel.metric_labels(self.operation, self.provider, self.request_model, self.response_model,
                                   self.server_address, self.server_port, error_type)
        tel.duration.record(max(elapsed, 0.0), labels.call)
        if self.first_chunk is not None:
            tel.time_to_first_chunk.record(self.first_chunk - self.start, labels.call)
        if usage is not None:
            tel.token_usage.record(usage.input_tokens, labels.input_tokens)
            if self.operation != sc.OP_EMBEDDINGS:
                tel.token_usage.record(usage.output_tokens, labels.output_tokens)
        if cost is not None:
            tel.cost.add(cost, labels.price)
        elif cost_unknown:
            tel.unpriced.add(1, labels.price)

        self._log(elapsed, usage, cost, cost_unknown, error, error_type, stream_outcome)
        if end_ns is not None:
            span.end(end_time=end_ns)
        else:
            span.end()

    def _log(self, elapsed: float, usage: TokenUsage | None, cost: float | None, cost_unknown: bool,
             error: BaseException | None, error_type: str | None, stream_outcome: str | None) -> None:
        tel = self.tel
        fields: dict[str, Any] = {
            "event.outcome": "failure" if error_type else "success",
            "event.duration": int(elapsed * 1e9),
            sc.GEN_AI_OPERATION_NAME: self.operation,
            sc.GEN_AI_PROVIDER_NAME: self.provider,
            sc.GEN_AI_REQUEST_MODEL: self.request_model,
        }
        if self.response_model:
            fields[sc.GEN_AI_RESPONSE_MODEL] = self.response_model
        if self.response_id:
            fields[sc.GEN_AI_RESPONSE_ID] = self.response_id
        if self.finish_reasons:
            fields[sc.GEN_AI_RESPONSE_FINISH_REASONS] = self.finish_reasons
        if usage is not None:
            fields[sc.GEN_AI_USAGE_INPUT_TOKENS] = usage.input_tokens
            fields[sc.GEN_AI_USAGE_OUTPUT_TOKENS] = usage.output_tokens
        else:
            fields[sc.AGENTWATCH_USAGE_UNAVAILABLE] = True
        if cost is not None:
            fields[sc.AGENTWATCH_COST_USD] = cost
        elif cost_unknown:
            fields[sc.AGENTWATCH_COST_UNKNOWN] = True
        if stream_outcome is not None:
            fields[sc.AGENTWATCH_STREAM_OUTCOME] = stream_outcome
        if error_type is not None:
            fields["error.type"] = error_type
            if error is not None:
                fields["error.message"] = redact(str(error))
        outcome = error_type or "ok"
        message = f"{self.operation} {self.request_model} {outcome} in {elapsed * 1000:.0f} ms"
        ctx = self.span.get_span_context()
        emit_log(
            tel.otel_logger, tel.log_sink,
            event=sc.LOG_EVENT_LLM_CALL, message=message, fields=fields, failed=error_type is not None,
            context=trace.set_span_in_context(self.span), trace_id=ctx.trace_id, span_id=ctx.span_id,
            service_name=tel.service_name() if tel.log_sink is not None else None, start_ns=self.start_ns,
        )


# --- streams -------------------------------------------------------------------------------------------
ChunkObserver = Callable[[InferenceCall, Any], bool]
"""Reads one chunk into the call; returns False for a chunk to hide from user code (the injected usage chunk)."""


def _observe(call: InferenceCall, observe: ChunkObserver, item: Any) -> bool:
    try:
        call.chunk_seen()
        return observe(call, item)
    except Exception:  # noqa: BLE001 - fail open: the chunk still reaches user code
        report_internal_error("stream observer")
        return True


class SyncStreamProxy(wrapt.ObjectProxy):
    """The SDK's stream object, unchanged for user code, ending the call's span once however the stream ends."""

    def __init__(self, wrapped: Any, call: InferenceCall, observe: ChunkObserver):
        super().__init__(wrapped)
        self._self_call = call
        self._self_observe = observe

    def __iter__(self):
        return self

    def __next__(self):
        call = self._self_call
        while True:
            try:
                item = self.__wrapped__.__next__()
            except StopIteration:
                call.end(stream_outcome="completed")
                raise
            except BaseException as exc:
                call.end(exc, stream_outcome="error")
                raise
            if _observe(call, self._self_observe, item):
                return item

    def __enter__(self):
        self.__wrapped__.__enter__()
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            return self.__wrapped__.__exit__(exc_type, exc, tb)
        finally:
            self._self_call.end(exc, stream_outcome="error" if exc is not None else "closed")

    def close(self, *args: Any, **kwargs: Any):
        try:
            return self.__wrapped__.close(*args, **kwargs)
        finally:
            self._self_call.end(stream_outcome="closed")

    def __del__(self):
        call = getattr(self, "_self_call", None)
        if call is not None and not call.ended:
            call.end(stream_outcome="abandoned")


class AsyncStreamProxy(wrapt.ObjectProxy):
    """Async twin of SyncStreamProxy."""

    def __init__(self, wrapped: Any, call: InferenceCall, observe: ChunkObserver):
        super().__init__(wrapped)
        self._self_call = call
        self._self_observe = observe

    def __aiter__(self):
        return self

    async def __anext__(self):
        call = self._self_call
        while True:
            try:
                item = await self.__wrapped__.__anext__()
            except StopAsyncIteration:
                call.end(stream_outcome="completed")
                raise
            except BaseException as exc:
                call.end(exc, stream_outcome="error")
                raise
            if _observe(call, self._self_observe, item):
                return item

    async def __aenter__(self):
        await self.__wrapped__.__aenter__()
        return self

    async def __aexit__(self, exc_type, exc, tb):
        try:
            return await self.__wrapped__.__aexit__(exc_type, exc, tb)
        finally:
            self._self_call.end(exc, stream_outcome="error" if exc is not None else "closed")

    async def close(self, *args: Any, **kwargs: Any):
        try:
            return await self.__wrapped__.close(*args, **kwargs)
        finally:
            self._self_call.end(stream_outcome="closed")

    async def aclose(self, *args: Any, **kwargs: Any):
        try:
            return await self.__wrapped__.aclose(*args, **kwargs)
        finally:
            self._self_call.end(stream_outcome="closed")

    def __del__(self):
        call = getattr(self, "_self_call", None)
        if call is not None and not call.ended:
            call.end(stream_outcome="abandoned")


# --- the wrapper every patched method goes through -----------------------------------------------------
Begin = Callable[[Any, tuple, dict], "tuple[InferenceCall, dict, Any] | None"]
"""(instance, args, kwargs) -> (call, kwargs to send, state for finish), or None to pass the call through."""
Finish = Callable[[InferenceCall, Any, dict, Any], Any]
"""(call, SDK result, kwargs sent, state) -> what user code gets: the result itself or a stream proxy."""


def enforce_budget() -> None:
    """Raises BudgetExceeded (to the caller, before any request) when the current run is over budget."""
    try:
        check_current_budget()
    except BudgetExceeded:
        raise
    except Exception:  # noqa: BLE001
        report_internal_error("budget check")


def sync_wrapper(begin: Begin, finish: Finish):
    """A wrapt wrapper: `begin` builds the call (and may adjust kwargs); `finish` handles the result.

    The user's own exceptions propagate untouched; agentwatch's are swallowed at each step.
    """

    def wrapper(wrapped, instance, args, kwargs):
        enforce_budget()
        try:
            started = begin(instance, args, kwargs)
        except Exception:  # noqa: BLE001
            report_internal_error("begin")
            started = None
        if started is None:
            return wrapped(*args, **kwargs)
        call, call_kwargs, state = started
        token = call.activate()
        try:
            result = wrapped(*args, **call_kwargs)
        except BaseException as exc:
            call.end(exc)
            raise
        finally:
            InferenceCall.deactivate(token)
        return _finish_safely(finish, call, result, call_kwargs, state)

    return wrapper


def async_wrapper(begin: Begin, finish: Finish):
    def wrapper(wrapped, instance, args, kwargs):
        enforce_budget()
        try:
            started = begin(instance, args, kwargs)
        except Exception:  # noqa: BLE001
            report_internal_error("begin")
            started = None
        if started is None:
            return wrapped(*args, **kwargs)
        call, call_kwargs, state = started

        async def run():
            token = call.activate()
            try:
                result = await wrapped(*args, **call_kwargs)
            except BaseException as exc:
                call.end(exc)
                raise
            finally:
                InferenceCall.deactivate(token)
            return _finish_safely(finish, call, result, call_kwargs, state)

        return run()

    return wrapper


def _finish_safely(finish: Finish, call: InferenceCall, result: Any, kwargs: dict, state: Any) -> Any:
    try:
        return finish(call, result, kwargs, state)
    except Exception:  # noqa: BLE001 - the user gets the SDK's own result
        report_internal_error("finish")
        call.end()
        return result


def server_of(resource: Any) -> tuple[str | None, int | None]:
    """server.address / server.port from an SDK resource's client base URL."""
    try:
        url = resource._client.base_url
        host = url.host or None
        port = url.port
        if port is None:
            port = 443 if url.scheme == "https" else 80
        return host, port
    except Exception:  # noqa: BLE001
        return None, None


def request_attributes(kwargs: dict, mapping: Iterable[tuple[str, str, type | tuple[type, ...]]]) -> dict[str, Any]:
    """Span attributes from request kwargs: (kwarg name, attribute, accepted type) triples."""
    out: dict[str, Any] = {}
    for key, attribute, kind in mapping:
        value = kwargs.get(key)
        if value is not None and isinstance(value, kind) and not isinstance(value, bool):
            out[attribute] = value
    return out
