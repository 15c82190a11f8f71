"""Shared machinery of the LLM-client instrumentors: one `InferenceCall` per API call, one call lifecycle.

A client module (openai.py, anthropic.py, and every provider to come) supplies four small pieces:

- `begin(instance, args, kwargs, observe) -> (InferenceCall, kwargs to send, state) | None`: reads the request;
- `finish(call, result, kwargs, state) -> result`: reads the response, or returns a stream proxy
  (`SyncStreamProxy` / `AsyncStreamProxy` with a `ChunkObserver`) that reads it as user code iterates;
- usage builders (`TokenUsage` from the provider's usage object, via `token_count`);
- optionally an `SdkTracing` for an SDK that traces its own calls.

`sync_wrapper(begin, finish)` / `async_wrapper(begin, finish)` turn them into wrapt wrappers; a helper that
sends its request elsewhere (the Anthropic stream manager) uses `CallSite.start` and `with call:` the same
way. Everything the telemetry contract says about an inference (span attributes, metrics, cost, the log
record, ending exactly once) lives here and in `Telemetry`, once.

Who makes the span (README, "One inference span per LLM call"), decided per call by `CallSite.start`:
- another instrumentation's LLM-call span is current, or its wrapper is below ours, or the SDK's own
  tracing was turned on explicitly: agentwatch OBSERVES (no span, no gen_ai.client.* points of its own; the
  span processor enriches that span);
- agentwatch's own LLM-call span is current (an SDK method calling another): the call passes through;
- otherwise agentwatch OWNS the call's span, with the SDK's default tracing switched off for it.

Every entry point into agentwatch code from a patched method is guarded: an agentwatch bug is counted,
logged (rate-limited) and swallowed.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import weakref
from typing import Any, Callable, Iterable, Protocol

import wrapt
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from agentwatch import semconv as sc
from agentwatch.pricing import TokenUsage
from agentwatch.runtime import foreign
from agentwatch.runtime.content import content_json, message_parts, output_message, reusable, text_part  # noqa: F401
from agentwatch.runtime.runs import BudgetExceeded, check_current_budget
from agentwatch.runtime.telemetry import Telemetry, report_internal_error

_log = logging.getLogger("agentwatch")

INNER = object()
"""`observe` value: another instrumentation's LLM-call span will be made below agentwatch's wrapper."""


# --- raw responses -------------------------------------------------------------------------------------
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


def json_arguments(text: Any) -> Any:
    """Tool-call arguments as an object when they are a JSON string (semconv asks for the object)."""
    if isinstance(text, str):
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


class OutputBuilder:
    """The parts of one output message (one per choice), built from a response or from stream deltas; text
    beyond the content length limit is not kept (it would be truncated anyway)."""

    __slots__ = ("parts", "_text", "_calls", "_room")

    def __init__(self, room: int):
        self.parts: list[Any] = []
        self._text: list[str] | None = None
        self._calls: dict[Any, dict[str, Any]] = {}
        self._room = room

    def text(self, chunk: Any) -> None:
        if not isinstance(chunk, str) or not chunk or self._room <= 0:
            return
        self._room -= len(chunk)
        if self._text is None:
            self._text = []
            self.parts.append(self._text)
        self._text.append(chunk)

    def part(self, part: dict[str, Any]) -> None:
        self._text = None
        self.parts.append(part)

    def tool_call(self, key: Any, call_id: Any = None, name: Any = None, arguments: Any = None) -> None:
        """Starts (first `key`) or continues a tool call; string arguments are concatenated (stream deltas)."""
        entry = self._calls.get(key)
        if entry is None:
            entry = self._calls[key] = {"type": "tool_call", "id": call_id, "name": name, "arguments": []}
            self._text = None
            self.parts.append(entry)
        else:
            if call_id and not entry["id"]:
                entry["id"] = call_id
            if name and not entry["name"]:
                entry["name"] = name
        if isinstance(arguments, str):
            if arguments and self._room > 0:
                self._room -= len(arguments)
                entry["arguments"].append(arguments)
        elif arguments is not None:
            entry["arguments"] = arguments

    def message(self) -> dict[str, Any]:
        parts = []
        for part in self.parts:
            if isinstance(part, list):
                parts.append(text_part("".join(part)))
            elif part.get("type") == "tool_call" and isinstance(part.get("arguments"), list):
                arguments = "".join(part["arguments"])
                parts.append(dict(part, arguments=json_arguments(arguments) if arguments else None))
            else:
                parts.append(part)
        return output_message(parts)


# --- one API call --------------------------------------------------------------------------------------
class InferenceCall:
    """Telemetry of one LLM API call, from request to the end of its response or stream; ends once.

    `with call:` runs the SDK method with the call's span current (so HTTP-level spans nest under it) and the
    SDK's default tracing off; an exception from the SDK ends the call with it and propagates unchanged.

    Observing (another instrumentation's span is the call's span): `span` is None, nothing is recorded
    here except the stream outcome on the other span when it is still open; the span processor enriches it.
    """

    __slots__ = (
        "tel", "span", "foreign", "provider", "operation", "request_model", "server_address", "server_port",
        "start", "start_ns", "first_chunk", "last_activity_ns", "response_id", "response_model", "finish_reasons",
        "usage", "usage_malformed", "outputs", "ended", "lock", "_token", "_sdk", "_sdk_token",
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
        observe: Any = None,
    ):
        self.tel = tel
        self.provider = provider
        self.operation = operation
        self.request_model = request_model
        self.server_address = server_address
        self.server_port = server_port
        if observe is None:
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
            self.span = tel.tracer.start_span(f"{operation} {request_model}", kind=SpanKind.CLIENT,
                                              attributes=attributes)
            self.foreign = None
            self.outputs: dict[Any, OutputBuilder] | None = {} if tel.settings.capture_content else None
        else:
            self.span = None
            self.foreign = None if observe is INNER else observe
            self.outputs = None
        self.start = time.perf_counter()
        self.start_ns = time.time_ns()
        self.first_chunk: float | None = None
        self.last_activity_ns: int | None = None
        self.response_id: str | None = None
        self.response_model: str | None = None
        self.finish_reasons: list[str] = []
        self.usage: TokenUsage | None = None
        self.usage_malformed = False
        self.ended = False
        self.lock = threading.Lock()
        self._token: object = None
        self._sdk: SdkTracing | None = None
        self._sdk_token: object = None

    @property
    def capture(self) -> bool:
        """Whether this call records content (capture on, and the span is agentwatch's)."""
        return self.outputs is not None

    # -- while the SDK method runs
    def __enter__(self) -> "InferenceCall":
        if self.span is not None:
            self._token = otel_context.attach(trace.set_span_in_context(self.span))
        if self._sdk is not None:
            self._sdk_token = self._sdk.switch_off()
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        try:
            if self._sdk is not None:
                self._sdk.restore(self._sdk_token)
                self._sdk_token = None
            if self._token is not None:
                otel_context.detach(self._token)
                self._token = None
        finally:
            if exc is not None:
                self.end(exc)
        # returns None: the exception (if any) propagates unchanged

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

    # -- content (only with capture on)
    def output(self, index: Any = 0) -> OutputBuilder:
        """The output message of choice `index` (call only when `capture`)."""
        builder = self.outputs.get(index)  # type: ignore[union-attr]
        if builder is None:
            builder = self.outputs[index] = OutputBuilder(self.tel.settings.content_max_length)  # type: ignore[index]
        return builder

    def set_input_messages(self, messages: list[dict[str, Any]]) -> None:
        self.span.set_attribute(sc.GEN_AI_INPUT_MESSAGES, content_json(messages, self.tel.settings.content_max_length))

    def set_system_instructions(self, parts: list[dict[str, Any]]) -> None:
        self.span.set_attribute(sc.GEN_AI_SYSTEM_INSTRUCTIONS,
                                content_json(parts, self.tel.settings.content_max_length))

    # -- the end, exactly once
    def end(self, error: BaseException | None = None, *, stream_outcome: str | None = None,
            error_type: str | None = None) -> None:
        with self.lock:
            if self.ended:
                return
            self.ended = True
        try:
            if self.span is None:
                self._observed_end(error, stream_outcome)
            else:
                self._record(error, stream_outcome, error_type)
        except Exception:  # noqa: BLE001 - fail open
            report_internal_error("InferenceCall.end")
            try:
                if self.span is not None:
                    self.span.end()
            except Exception:  # noqa: BLE001
                pass

    def _observed_end(self, error: BaseException | None, stream_outcome: str | None) -> None:
        span = self.foreign
        if stream_outcome is not None and span is not None and span.is_recording():
            span.set_attribute(sc.AGENTWATCH_STREAM_OUTCOME, stream_outcome)

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
        ttfc = self.first_chunk - self.start if self.first_chunk is not None else None
        if ttfc is not None:
            out[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = ttfc

        usage = self.usage
        cost: float | None = None
        cost_unknown = False
        if usage is not None:
            out.update(usage_attributes(usage))
            cost = tel.price(self.provider, self.request_model, self.response_model, usage)
            if cost is None:
                cost_unknown = True
                out[sc.AGENTWATCH_COST_UNKNOWN] = True
            else:
                out[sc.AGENTWATCH_COST_USD] = cost
        else:
            out[sc.AGENTWATCH_USAGE_UNAVAILABLE] = True

        if self.outputs:
            messages = [self.outputs[index].message() for index in sorted(self.outputs, key=_index_order)]
            out[sc.GEN_AI_OUTPUT_MESSAGES] = content_json(messages, tel.settings.content_max_length)

        if error_type is not None:
            out[sc.ERROR_TYPE] = error_type
            span.set_status(Status(StatusCode.ERROR, error_type))
        span.set_attributes(out)

        tel.record_call(self, elapsed=elapsed, time_to_first_chunk=ttfc, usage=usage, cost=cost,
                        cost_unknown=cost_unknown, error_type=error_type)
        tel.log_call(self, span, elapsed=elapsed, usage=usage, cost=cost, cost_unknown=cost_unknown, error=error,
                     error_type=error_type, stream_outcome=stream_outcome)
        if end_ns is not None:
            span.end(end_time=end_ns)
        else:
            span.end()


def _index_order(index: Any) -> tuple[int, Any]:
    return (0, index) if isinstance(index, int) else (1, str(index))


def usage_attributes(usage: TokenUsage) -> dict[str, int]:
    """The gen_ai.usage.* span attributes of one call's usage (current semconv names)."""
    out = {sc.GEN_AI_USAGE_INPUT_TOKENS: usage.input_tokens, sc.GEN_AI_USAGE_OUTPUT_TOKENS: usage.output_tokens}
    if usage.cache_read_tokens:
        out[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = usage.cache_read_tokens
    if usage.cache_write_tokens:
        out[sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS] = usage.cache_write_tokens
    if usage.reasoning_tokens:
        out[sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = usage.reasoning_tokens
    return out


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
        sdk = call._sdk
        while True:
            token = sdk.switch_off() if sdk is not None else None
            try:
                item = self.__wrapped__.__next__()
            except StopIteration:
                call.end(stream_outcome="completed")
                raise
            except BaseException as exc:
                call.end(exc, stream_outcome="error")
                raise
            finally:
                if sdk is not None:
                    sdk.restore(token)
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
        sdk = call._sdk
        while True:
            token = sdk.switch_off() if sdk is not None else None
            try:
                item = await self.__wrapped__.__anext__()
            except StopAsyncIteration:
                call.end(stream_outcome="completed")
                raise
            except BaseException as exc:
                call.end(exc, stream_outcome="error")
                raise
            finally:
                if sdk is not None:
                    sdk.restore(token)
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


# --- who makes the span, and the wrapper every patched method goes through ------------------------------
class SdkTracing(Protocol):
    """A provider SDK that traces its own calls (anthropic 2.x)."""

    def explicit(self, instance: Any) -> bool:
        """The user turned the SDK's tracing on for this client: its span is the call's span."""

    def switch_off(self) -> object:
        """Switches the SDK's own span off for the call running in this context; returns a restore token."""

    def restore(self, token: object) -> None: ...


Begin = Callable[[Any, tuple, dict, Any], "tuple[InferenceCall, dict, Any] | None"]
"""(instance, args, kwargs, observe) -> (call, kwargs to send, state for finish), or None to pass the call
through. `observe` goes to InferenceCall: None (agentwatch's span), a foreign span, or INNER."""
Finish = Callable[[InferenceCall, Any, dict, Any], Any]
"""(call, SDK result, kwargs sent, state) -> what user code gets: the result itself or a stream proxy."""

_PASS = object()


def enforce_budget() -> None:
    """Raises BudgetExceeded (to the caller, before any request) when the current run is over budget."""
    try:
        check_current_budget()
    except BudgetExceeded:
        raise
    except Exception:  # noqa: BLE001
        report_internal_error("budget check")


def standing(wrapped: Any, client: str, sdk_explicit: bool) -> Any:
    """None (agentwatch makes the span), a foreign span / INNER (observe it), or _PASS (already traced)."""
    current = foreign.current_inference_span(trace.get_current_span())
    if current is not None:
        span, ours = current
        return _PASS if ours else span
    if sdk_explicit or foreign.instrumented_for(client) is not None or foreign.wrapper_below(wrapped) is not None:
        return INNER
    return None


class CallSite:
    """One patched SDK method: decides who makes the span, builds the call, finishes the result safely."""

    __slots__ = ("begin", "finish", "sdk", "client")

    def __init__(self, begin: Begin, finish: Finish | None = None, sdk: SdkTracing | None = None,
                 client: str = ""):
        self.begin = begin
        self.finish = finish
        self.sdk = sdk
        self.client = client  # the SDK's package name (openai, anthropic): whose other instrumentations count

    def start(self, wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> tuple[InferenceCall | None, dict, Any]:
        """(call or None to pass through, kwargs to send, state); BudgetExceeded propagates."""
        enforce_budget()
        try:
            sdk = self.sdk
            sdk_explicit = sdk is not None and sdk.explicit(instance)
            observe = standing(wrapped, self.client, sdk_explicit)
            if observe is _PASS:
                return None, kwargs, None
            started = self.begin(instance, args, kwargs, observe)
            if started is None:
                return None, kwargs, None
            call, call_kwargs, state = started
            if sdk is not None and not sdk_explicit:
                call._sdk = sdk  # the SDK's default span is off for this call, whoever's span it gets
            return call, call_kwargs, state
        except Exception:  # noqa: BLE001
            report_internal_error("begin")
            return None, kwargs, None

    def finished(self, call: InferenceCall, result: Any, kwargs: dict, state: Any) -> Any:
        try:
            return self.finish(call, result, kwargs, state)  # type: ignore[misc]
        except Exception:  # noqa: BLE001 - the user gets the SDK's own result
            report_internal_error("finish")
            call.end()
            return result


def sync_wrapper(begin: Begin, finish: Finish, sdk: SdkTracing | None = None, client: str = ""):
    """A wrapt wrapper: `begin` builds the call (and may adjust kwargs); `finish` handles the result.

    The user's own exceptions propagate untouched; agentwatch's are swallowed at each step.
    """
    site = CallSite(begin, finish, sdk, client)

    def wrapper(wrapped, instance, args, kwargs):
        call, call_kwargs, state = site.start(wrapped, instance, args, kwargs)
        if call is None:
            return wrapped(*args, **call_kwargs)
        with call:
            result = wrapped(*args, **call_kwargs)
        return site.finished(call, result, call_kwargs, state)

    return wrapper


def async_wrapper(begin: Begin, finish: Finish, sdk: SdkTracing | None = None, client: str = ""):
    site = CallSite(begin, finish, sdk, client)

    def wrapper(wrapped, instance, args, kwargs):
        call, call_kwargs, state = site.start(wrapped, instance, args, kwargs)
        if call is None:
            return wrapped(*args, **call_kwargs)

        async def run():
            with call:
                result = await wrapped(*args, **call_kwargs)
            return site.finished(call, result, call_kwargs, state)

        return run()

    return wrapper


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
