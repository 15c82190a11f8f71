"""Anthropic client instrumentation: messages.create (sync, async, stream=True) and the messages.stream helper.

The stream helper sends its request when its manager is entered, through a private request callable; we
wrap that callable so the span starts with the request and the raw event stream feeds usage. If a future SDK
renames it, the helper still works, uninstrumented, and a debug line says so.

Recent Anthropic SDKs also emit their own `anthropic.messages.create` span; under agentwatch it nests below
our inference span (set `ANTHROPIC_OPEN_TELEMETRY=false` to turn the SDK's own span off).
"""

from __future__ import annotations

import logging
from typing import Any, Collection

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor
from opentelemetry.instrumentation.utils import unwrap
from wrapt import wrap_function_wrapper

from agentwatch import semconv as sc
from agentwatch.runtime.instrumentors._inference import (
    AsyncStreamProxy,
    InferenceCall,
    SyncStreamProxy,
    Telemetry,
    async_wrapper,
    enforce_budget,
    is_raw_response,
    parsed_body,
    message_parts,
    report_internal_error,
    request_attributes,
    server_of,
    sync_wrapper,
    token_count,
    watch_raw_stream,
)
from agentwatch.pricing import TokenUsage
from agentwatch.runtime.processor import ensure_processor
from agentwatch.runtime.telemetry import telemetry_for

_log = logging.getLogger("agentwatch")

_MODULE = "anthropic.resources.messages.messages"
_REQUEST = (
    ("max_tokens", sc.GEN_AI_REQUEST_MAX_TOKENS, int),
    ("temperature", sc.GEN_AI_REQUEST_TEMPERATURE, (int, float)),
    ("top_p", sc.GEN_AI_REQUEST_TOP_P, (int, float)),
    ("top_k", "gen_ai.request.top_k", int),
)
_SYNC_MANAGER_REQUEST = "_MessageStreamManager__api_request"
_ASYNC_MANAGER_REQUEST = "_AsyncMessageStreamManager__api_request"


def _usage(input_tokens: Any, output_tokens: Any, cache_read: Any, cache_write: Any, thinking: Any) -> TokenUsage:
    """Anthropic's input_tokens excludes cached tokens; semconv's includes them."""
    read = token_count(cache_read, optional=True)
    write = token_count(cache_write, optional=True)
    return TokenUsage(
        input_tokens=token_count(input_tokens) + read + write,
        output_tokens=token_count(output_tokens),
        cache_read_tokens=read,
        cache_write_tokens=write,
        reasoning_tokens=token_count(thinking, optional=True),
    )


def _message_usage(usage: Any) -> TokenUsage:
    return _usage(
        usage.input_tokens, usage.output_tokens,
        getattr(usage, "cache_read_input_tokens", None), getattr(usage, "cache_creation_input_tokens", None),
        getattr(getattr(usage, "output_tokens_details", None), "thinking_tokens", None),
    )


def _record_message(call: InferenceCall, message: Any) -> None:
    call.response_id = getattr(message, "id", None)
    call.response_model = getattr(message, "model", None)
    stop = getattr(message, "stop_reason", None)
    if stop:
        call.finish_reasons = [stop]
    usage = getattr(message, "usage", None)
    if usage is not None:
        call.set_usage(lambda: _message_usage(usage))
    if call.output_text is not None:
        for part in message_parts(getattr(message, "content", None)):
            if part.get("type") == "text" and part.get("content"):
                call.output_text.append(part["content"])
            elif part.get("type") == "tool_call":
                call.output_tool_calls.append(part)


class _StreamUsage:
    """Follows a raw event stream: message_start gives input counts, message_delta the final output count.

    Usage is recorded only at message_delta, so a stream that breaks earlier reports usage unavailable
    rather than a partial output count.
    """

    __slots__ = ("input", "cache_read", "cache_write", "thinking")

    def __init__(self):
        self.input: Any = None
        self.cache_read: Any = None
        self.cache_write: Any = None
        self.thinking: Any = None

    def __call__(self, call: InferenceCall, event: Any) -> bool:
        kind = getattr(event, "type", None)
        if kind == "message_start":
            message = event.message
            call.response_id = getattr(message, "id", None)
            call.response_model = getattr(message, "model", None)
            usage = getattr(message, "usage", None)
            if usage is not None:
                self.input = usage.input_tokens
                self.cache_read = getattr(usage, "cache_read_input_tokens", None)
                self.cache_write = getattr(usage, "cache_creation_input_tokens", None)
        elif kind == "message_delta":
            stop = getattr(event.delta, "stop_reason", None)
            if stop:
                call.finish_reasons = [stop]
            usage = getattr(event, "usage", None)
            if usage is not None:
                # newer APIs repeat the (cumulative) input counts here; they win when present
                for field, attr in (("input", "input_tokens"), ("cache_read", "cache_read_input_tokens"),
                                    ("cache_write", "cache_creation_input_tokens")):
                    value = getattr(usage, attr, None)
                    if value is not None:
                        setattr(self, field, value)
                self.thinking = getattr(getattr(usage, "output_tokens_details", None), "thinking_tokens", None)
                output = usage.output_tokens
                call.set_usage(lambda: _usage(self.input, output, self.cache_read, self.cache_write, self.thinking))
        elif call.output_text is not None:
            if kind == "content_block_delta" and getattr(event.delta, "type", None) == "text_delta":
                call.output_text.append(event.delta.text)
            elif kind == "content_block_start" and getattr(event.content_block, "type", None) == "tool_use":
                block = event.content_block
                call.output_tool_calls.append({"type": "tool_call", "id": block.id, "name": block.name})
        return True


class _Begin:
    __slots__ = ("tel",)

    def __init__(self, tel: Telemetry):
        self.tel = tel

    def __call__(self, instance: Any, args: tuple, kwargs: dict):
        model = kwargs.get("model")
        model = model if isinstance(model, str) and model else "unknown"
        attributes = request_attributes(kwargs, _REQUEST)
        if kwargs.get("stream") is True:
            attributes[sc.GEN_AI_REQUEST_STREAM] = True
        host, port = server_of(instance)
        call = InferenceCall(self.tel, sc.PROVIDER_ANTHROPIC, sc.OP_CHAT, model, host, port, attributes)
        if self.tel.settings.capture_content:
            messages = [
                {"role": m.get("role"), "parts": message_parts(m.get("content"))}
                for m in kwargs.get("messages") or () if isinstance(m, dict)
            ]
            call.set_input_messages(messages)
            system = kwargs.get("system")
            if isinstance(system, (str, list)):
                call.set_system_instructions(message_parts(system))
        return call, kwargs, None


class _Finish:
    __slots__ = ("proxy", "is_async")

    def __init__(self, is_async: bool):
        self.is_async = is_async
        self.proxy = AsyncStreamProxy if is_async else SyncStreamProxy

    def __call__(self, call: InferenceCall, result: Any, kwargs: dict, state: Any) -> Any:
        if kwargs.get("stream") is True:
            if is_raw_response(result):
                return watch_raw_stream(call, result, _StreamUsage(), self.is_async)
            return self.proxy(result, call, _StreamUsage())
        body = parsed_body(result)
        _record_message(call, body)
        call.end()
        return result


def _stream_helper_wrapper(begin: _Begin, is_async: bool):
    """Wraps messages.stream(): the manager's request callable starts the span and yields a watched stream."""
    attribute = _ASYNC_MANAGER_REQUEST if is_async else _SYNC_MANAGER_REQUEST
    proxy = AsyncStreamProxy if is_async else SyncStreamProxy

    def wrapper(wrapped, instance, args, kwargs):
        manager = wrapped(*args, **kwargs)
        try:
            original = getattr(manager, attribute, None)
            if original is None:
                _log.debug("agentwatch: %s has no %s; stream helper left uninstrumented",
                           type(manager).__name__, attribute)
                return manager
            span_kwargs = dict(kwargs, stream=True)

            def start():
                enforce_budget()
                try:
                    call, _, _ = begin(instance, args, span_kwargs)
                    return call
                except Exception:  # noqa: BLE001
                    report_internal_error("anthropic stream begin")
                    return None

            if is_async:
                async def request():
                    call = start()
                    if call is None:
                        return await original
                    token = call.activate()
                    try:
                        raw = await original
                    except BaseException as exc:
                        call.end(exc)
                        raise
                    finally:
                        InferenceCall.deactivate(token)
                    return proxy(raw, call, _StreamUsage())

                setattr(manager, attribute, request())
            else:
                def request():
                    call = start()
                    if call is None:
                        return original()
                    token = call.activate()
                    try:
                        raw = original()
                    except BaseException as exc:
                        call.end(exc)
                        raise
                    finally:
                        InferenceCall.deactivate(token)
                    return proxy(raw, call, _StreamUsage())

                setattr(manager, attribute, request)
        except Exception:  # noqa: BLE001
            report_internal_error("anthropic stream helper")
        return manager

    return wrapper


class AnthropicInstrumentor(BaseInstrumentor):
    """Patches the Anthropic SDK (`anthropic` >= 0.40) for spans, metrics, logs and cost of every LLM call."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("anthropic >= 0.40",)

    def _instrument(self, **kwargs: Any) -> None:
        import anthropic  # noqa: F401 - fails clearly when the SDK is absent

        tel = telemetry_for(kwargs)
        ensure_processor(kwargs.get("tracer_provider"))
        begin = _Begin(tel)
        wrap_function_wrapper(_MODULE, "Messages.create", sync_wrapper(begin, _Finish(False)))
        wrap_function_wrapper(_MODULE, "AsyncMessages.create", async_wrapper(begin, _Finish(True)))
        wrap_function_wrapper(_MODULE, "Messages.stream", _stream_helper_wrapper(begin, False))
        wrap_function_wrapper(_MODULE, "AsyncMessages.stream", _stream_helper_wrapper(begin, True))

    def _uninstrument(self, **kwargs: Any) -> None:
        from anthropic.resources.messages import messages

        for cls in (messages.Messages, messages.AsyncMessages):
            unwrap(cls, "create")
            unwrap(cls, "stream")
