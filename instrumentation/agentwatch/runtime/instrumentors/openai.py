"""OpenAI client instrumentation: chat.completions.create, responses.create and embeddings.create.

Sync and async, streamed and not. The SDK's return values reach user code unchanged (a stream is wrapped in
a transparent proxy); request kwargs are changed only with `AGENTWATCH_STREAM_USAGE=inject`, which asks
for stream usage and hides the extra usage-only chunk again.
"""

from __future__ import annotations

from typing import Any, Collection

from opentelemetry.instrumentation.instrumentor import BaseInstrumentor

from agentwatch import semconv as sc
from agentwatch.runtime.content import message_parts, reusable, text_part, tool_call_part
from agentwatch.runtime.instrumentors._inference import (
    AsyncStreamProxy,
    InferenceCall,
    SyncStreamProxy,
    Telemetry,
    async_wrapper,
    is_raw_response,
    json_arguments,
    parsed_body,
    request_attributes,
    server_of,
    sync_wrapper,
    token_count,
    watch_raw_stream,
)
from agentwatch.runtime.instrumentors._on_import import ImportPatches
from agentwatch.pricing import TokenUsage
from agentwatch.runtime.processor import ensure_processor
from agentwatch.runtime.telemetry import telemetry_for

_CHAT_REQUEST = (
    ("max_completion_tokens", sc.GEN_AI_REQUEST_MAX_TOKENS, int),
    ("max_tokens", sc.GEN_AI_REQUEST_MAX_TOKENS, int),
    ("temperature", sc.GEN_AI_REQUEST_TEMPERATURE, (int, float)),
    ("top_p", sc.GEN_AI_REQUEST_TOP_P, (int, float)),
)
_RESPONSES_REQUEST = (
    ("max_output_tokens", sc.GEN_AI_REQUEST_MAX_TOKENS, int),
    ("temperature", sc.GEN_AI_REQUEST_TEMPERATURE, (int, float)),
    ("top_p", sc.GEN_AI_REQUEST_TOP_P, (int, float)),
)

_TARGETS = (
    ("openai.resources.chat.completions.completions", "Completions", "AsyncCompletions", "chat"),
    ("openai.resources.responses.responses", "Responses", "AsyncResponses", "responses"),
    ("openai.resources.embeddings", "Embeddings", "AsyncEmbeddings", "embeddings"),
)


# --- usage ---------------------------------------------------------------------------------------------
def _chat_usage(usage: Any) -> TokenUsage:
    details = getattr(usage, "prompt_tokens_details", None)
    out_details = getattr(usage, "completion_tokens_details", None)
    return TokenUsage(
        input_tokens=token_count(usage.prompt_tokens),
        output_tokens=token_count(usage.completion_tokens),
        cache_read_tokens=token_count(getattr(details, "cached_tokens", None), optional=True),
        reasoning_tokens=token_count(getattr(out_details, "reasoning_tokens", None), optional=True),
    )


def _responses_usage(usage: Any) -> TokenUsage:
    details = getattr(usage, "input_tokens_details", None)
    out_details = getattr(usage, "output_tokens_details", None)
    return TokenUsage(
        input_tokens=token_count(usage.input_tokens),
        output_tokens=token_count(usage.output_tokens),
        cache_read_tokens=token_count(getattr(details, "cached_tokens", None), optional=True),
        reasoning_tokens=token_count(getattr(out_details, "reasoning_tokens", None), optional=True),
    )


def _embeddings_usage(usage: Any) -> TokenUsage:
    return TokenUsage(input_tokens=token_count(usage.prompt_tokens), output_tokens=0)


# --- content (only with capture on) --------------------------------------------------------------------
def _get(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, dict) else getattr(obj, key, None)


def _chat_input_messages(messages: Any) -> list[dict[str, Any]]:
    out = []
    for message in messages or ():
        role = _get(message, "role")
        if role == "tool":
            parts = [{"type": "tool_call_response", "id": _get(message, "tool_call_id"),
                      "response": _get(message, "content")}]
        else:
            parts = message_parts(_get(message, "content"))
            for tool_call in _get(message, "tool_calls") or ():
                fn = _get(tool_call, "function")
                parts.append(tool_call_part(_get(tool_call, "id"), _get(fn, "name"),
                                            json_arguments(_get(fn, "arguments"))))
        out.append({"role": role, "parts": parts})
    return out


def _responses_input_messages(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, str):
        return [{"role": "user", "parts": [text_part(value)]}]
    out = []
    for item in value or ():
        if isinstance(item, dict):
            out.append({"role": item.get("role", item.get("type")), "parts": message_parts(item.get("content"))})
    return out


def _record_chat_choices(call: InferenceCall, choices: Any) -> None:
    """Finish reasons and (capture on) one output message per choice, in choice order."""
    for position, choice in enumerate(choices or ()):
        if choice.finish_reason:
            call.finish_reasons.append(choice.finish_reason)
        if call.capture:
            index = getattr(choice, "index", None)
            builder = call.output(index if isinstance(index, int) else position)
            message = choice.message
            builder.text(message.content)
            for tool_call in message.tool_calls or ():
                fn = getattr(tool_call, "function", None)
                builder.tool_call(tool_call.id, tool_call.id, getattr(fn, "name", None),
                                  getattr(fn, "arguments", None))


def _record_responses_output(call: InferenceCall, response: Any) -> None:
    call.response_id = getattr(response, "id", None) or call.response_id
    call.response_model = getattr(response, "model", None) or call.response_model
    status = getattr(response, "status", None)
    if status:
        call.finish_reasons = [status]
    usage = getattr(response, "usage", None)
    if usage is not None:
        call.set_usage(lambda: _responses_usage(usage))
    if call.capture:
        call.outputs.clear()  # the final response has the whole output (a stream may repeat it)
        builder = call.output(0)
        for item in getattr(response, "output", None) or ():
            kind = getattr(item, "type", None)
            if kind == "message":
                for part in getattr(item, "content", None) or ():
                    builder.text(getattr(part, "text", None))
            elif kind == "function_call":
                builder.tool_call(getattr(item, "call_id", None), getattr(item, "call_id", None),
                                  getattr(item, "name", None), getattr(item, "arguments", None))


# --- stream observers ----------------------------------------------------------------------------------
def _chat_chunk(call: InferenceCall, chunk: Any) -> bool:
    if call.response_id is None:
        call.response_id = getattr(chunk, "id", None)
    if call.response_model is None:
        call.response_model = getattr(chunk, "model", None)
    for choice in chunk.choices or ():
        if choice.finish_reason:
            call.finish_reasons.append(choice.finish_reason)
        delta = choice.delta
        if call.capture and delta is not None:
            builder = call.output(choice.index)
            builder.text(delta.content)
            for tool_call in getattr(delta, "tool_calls", None) or ():
                fn = getattr(tool_call, "function", None)
                builder.tool_call(("stream", tool_call.index), getattr(tool_call, "id", None),
                                  getattr(fn, "name", None), getattr(fn, "arguments", None))
    usage = getattr(chunk, "usage", None)
    if usage is not None:
        call.set_usage(lambda: _chat_usage(usage))
    return True


def _chat_chunk_hiding_usage(call: InferenceCall, chunk: Any) -> bool:
    """For requests where agentwatch injected include_usage: the usage-only chunk is not the user's."""
    _chat_chunk(call, chunk)
    return not (not chunk.choices and getattr(chunk, "usage", None) is not None)


def _responses_event(call: InferenceCall, event: Any) -> bool:
    kind = getattr(event, "type", None)
    if kind in ("response.completed", "response.incomplete", "response.failed", "response.created"):
        _record_responses_output(call, event.response)
    return True


# --- begin / finish ------------------------------------------------------------------------------------
class OpenAIInstrumentor(BaseInstrumentor):
    """Patches the OpenAI SDK (`openai` >= 1.66) for spans, metrics, logs and cost of every LLM call."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("openai >= 1.66",)

    def _instrument(self, **kwargs: Any) -> None:
        patches = self._patches = ImportPatches("openai")  # ModuleNotFoundError when the SDK is absent
        tel = telemetry_for(kwargs)
        ensure_processor(kwargs.get("tracer_provider"))
        for module, sync_cls, async_cls, kind in _TARGETS:
            operation = sc.OP_EMBEDDINGS if kind == "embeddings" else sc.OP_CHAT
            begin = _Begin(tel, operation, kind)
            patches.wrap(module, f"{sync_cls}.create", sync_wrapper(begin, _Finish(kind, False), None, "openai"))
            patches.wrap(module, f"{async_cls}.create", async_wrapper(begin, _Finish(kind, True), None, "openai"))
        patches.start()  # patched when the application imports openai, not before

    def _uninstrument(self, **kwargs: Any) -> None:
        self._patches.stop()


class _Begin:
    """Builds the InferenceCall for one request; may add include_usage (opt-in) to a chat stream request."""

    __slots__ = ("tel", "operation", "kind", "mapping")

    def __init__(self, tel: Telemetry, operation: str, kind: str):
        self.tel = tel
        self.operation = operation
        self.kind = kind
        self.mapping = _CHAT_REQUEST if kind == "chat" else _RESPONSES_REQUEST if kind == "responses" else ()

    def __call__(self, instance: Any, args: tuple, kwargs: dict, observe: Any):
        tel = self.tel
        kind = self.kind
        model = kwargs.get("model")
        model = model if isinstance(model, str) and model else "unknown"
        attributes = request_attributes(kwargs, self.mapping)
        stream = kwargs.get("stream") is True
        if stream:
            attributes[sc.GEN_AI_REQUEST_STREAM] = True
        if kind == "embeddings":
            fmt = kwargs.get("encoding_format")
            if isinstance(fmt, str):
                attributes[sc.GEN_AI_REQUEST_ENCODING_FORMATS] = [fmt]
        host, port = server_of(instance)
        call = InferenceCall(tel, sc.PROVIDER_OPENAI, self.operation, model, host, port, attributes, observe)
        if call.capture:
            if kind == "chat":
                messages, kwargs = reusable(kwargs, "messages")
                call.set_input_messages(_chat_input_messages(messages))
            elif kind == "responses":
                value, kwargs = reusable(kwargs, "input")
                call.set_input_messages(_responses_input_messages(value))
                if isinstance(kwargs.get("instructions"), str):
                    call.set_system_instructions([text_part(kwargs["instructions"])])
        if kind == "chat" and stream and tel.settings.inject_stream_usage and observe is None:
            options = kwargs.get("stream_options")
            options = dict(options) if isinstance(options, dict) else {}
            if not options.get("include_usage"):
                options["include_usage"] = True
                kwargs = dict(kwargs, stream_options=options)
                call.span.set_attribute(sc.AGENTWATCH_STREAM_USAGE_INJECTED, True)
                return call, kwargs, True
        return call, kwargs, False


class _Finish:
    """Turns the SDK's result into telemetry; returns the result itself, or a stream proxy around it."""

    __slots__ = ("kind", "proxy", "is_async")

    def __init__(self, kind: str, is_async: bool):
        self.kind = kind
        self.is_async = is_async
        self.proxy = AsyncStreamProxy if is_async else SyncStreamProxy

    def __call__(self, call: InferenceCall, result: Any, kwargs: dict, injected: bool) -> Any:
        kind = self.kind
        if kwargs.get("stream") is True:
            if kind == "chat":
                observer = _chat_chunk_hiding_usage if injected else _chat_chunk
            else:
                observer = _responses_event
            if is_raw_response(result):
                return watch_raw_stream(call, result, observer, self.is_async)
            return self.proxy(result, call, observer)
        body = parsed_body(result)
        if kind == "chat":
            call.response_id = getattr(body, "id", None)
            call.response_model = getattr(body, "model", None)
            _record_chat_choices(call, getattr(body, "choices", None))
            usage = getattr(body, "usage", None)
            if usage is not None:
                call.set_usage(lambda: _chat_usage(usage))
        elif kind == "responses":
            _record_responses_output(call, body)
        else:
            call.response_model = getattr(body, "model", None)
            usage = getattr(body, "usage", None)
            if usage is not None:
                call.set_usage(lambda: _embeddings_usage(usage))
        call.end()
        return result
