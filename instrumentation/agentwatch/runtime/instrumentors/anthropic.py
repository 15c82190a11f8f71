"""Anthropic client instrumentation: messages.create (sync, async, stream=True) and the messages.stream helper.

The stream helper sends its request when its manager is entered, through a private request callable; we
wrap that callable so the span starts with the request and the raw event stream feeds usage. If a future SDK
renames it, the helper still works, uninstrumented, and a debug line says so.

The SDK's own tracing (anthropic 2.x: a CLIENT span `anthropic.messages.create`, scope
`com.anthropic.sdk.python`, on by default whenever a tracer provider is registered) follows one rule
(README, "One inference span per LLM call"): for a client the user did not configure (no `open_telemetry=`
option, no `ANTHROPIC_OPEN_TELEMETRY*` variable) agentwatch switches the SDK's span off for the calls it
instruments and its own span is the one; a client whose tracing the user turned on explicitly keeps the
SDK's span, agentwatch makes none and the span processor enriches the SDK's. Either way the SDK records
content only when `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT` is on too.
"""

from __future__ import annotations

import contextvars
import logging
from typing import Any, Collection

import wrapt
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor

from agentwatch import config
from agentwatch import semconv as sc
from agentwatch.runtime.content import message_parts, reusable
from agentwatch.runtime.instrumentors._inference import (
    AsyncStreamProxy,
    CallSite,
    InferenceCall,
    SyncStreamProxy,
    Telemetry,
    async_wrapper,
    is_raw_response,
    parsed_body,
    report_internal_error,
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

_log = logging.getLogger("agentwatch")

_MODULE = "anthropic.resources.messages"  # a module in anthropic < 0.50, a package (re-exporting) after
_REQUEST = (
    ("max_tokens", sc.GEN_AI_REQUEST_MAX_TOKENS, int),
    ("temperature", sc.GEN_AI_REQUEST_TEMPERATURE, (int, float)),
    ("top_p", sc.GEN_AI_REQUEST_TOP_P, (int, float)),
    ("top_k", sc.GEN_AI_REQUEST_TOP_K, int),
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
    if call.capture:
        builder = call.output(0)
        for part in message_parts(getattr(message, "content", None)):
            if part.get("type") == "text":
                builder.text(part.get("content"))
            else:
                builder.part(part)


class _StreamUsage:
    """Follows a raw event stream: message_start gives input counts, message_delta the final output count;
    with capture on, content blocks (text deltas, tool_use with its `input_json_delta` arguments) build
    the output message.

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
        elif call.capture:
            if kind == "content_block_delta":
                delta = event.delta
                delta_type = getattr(delta, "type", None)
                if delta_type == "text_delta":
                    call.output(0).text(delta.text)
                elif delta_type == "input_json_delta":
                    call.output(0).tool_call(event.index, arguments=delta.partial_json)
            elif kind == "content_block_start":
                block = event.content_block
                if getattr(block, "type", None) == "tool_use":
                    call.output(0).tool_call(event.index, block.id, block.name)
        return True


class _Begin:
    __slots__ = ("tel",)

    def __init__(self, tel: Telemetry):
        self.tel = tel

    def __call__(self, instance: Any, args: tuple, kwargs: dict, observe: Any):
        model = kwargs.get("model")
        model = model if isinstance(model, str) and model else "unknown"
        attributes = request_attributes(kwargs, _REQUEST)
        if kwargs.get("stream") is True:
            attributes[sc.GEN_AI_REQUEST_STREAM] = True
        host, port = server_of(instance)
        call = InferenceCall(self.tel, sc.PROVIDER_ANTHROPIC, sc.OP_CHAT, model, host, port, attributes, observe)
        if call.capture:
            messages, kwargs = reusable(kwargs, "messages")
            call.set_input_messages([
                {"role": m.get("role"), "parts": message_parts(m.get("content"))}
                for m in messages or () if isinstance(m, dict)
            ])
            system, kwargs = reusable(kwargs, "system")
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


def _stream_helper_wrapper(site: CallSite, is_async: bool):
    """Wraps messages.stream(): the manager's request callable starts the call and yields a watched stream."""
    attribute = _ASYNC_MANAGER_REQUEST if is_async else _SYNC_MANAGER_REQUEST
    proxy = AsyncStreamProxy if is_async else SyncStreamProxy

    def wrapper(wrapped, instance, args, kwargs):
        if site.begin.tel.settings.capture_content:  # type: ignore[attr-defined]
            # read below, when the request is made: a one-shot iterable must reach the SDK as a list
            for key in ("messages", "system"):
                _value, kwargs = reusable(kwargs, key)
        manager = wrapped(*args, **kwargs)
        try:
            original = getattr(manager, "__dict__", {}).get(attribute)  # the SDK's own manager holds it
            if original is None:
                # another instrumentation's manager (it traces the call), or a renamed SDK internal: no span
                # of ours; the SDK's default span stays off while the manager sends the request
                _log.debug("agentwatch: %s has no %s; stream helper not traced by agentwatch",
                           type(manager).__name__, attribute)
                sdk = site.sdk
                return _SdkOffManager(manager, sdk) if sdk is not None and not sdk.explicit(instance) else manager
            span_kwargs = dict(kwargs, stream=True)

            if is_async:
                async def request():
                    call, _kwargs, _state = site.start(wrapped, instance, args, span_kwargs)
                    if call is None:
                        return await original
                    with call:
                        raw = await original
                    return proxy(raw, call, _StreamUsage())

                setattr(manager, attribute, request())
            else:
                def request():
                    call, _kwargs, _state = site.start(wrapped, instance, args, span_kwargs)
                    if call is None:
                        return original()
                    with call:
                        raw = original()
                    return proxy(raw, call, _StreamUsage())

                setattr(manager, attribute, request)
        except Exception:  # noqa: BLE001
            report_internal_error("anthropic stream helper")
        return manager

    return wrapper


class _SdkOffManager(wrapt.ObjectProxy):
    """A stream manager whose request (sent on enter) and stream make no SDK span of their own."""

    def __init__(self, wrapped: Any, sdk: "SdkTracing"):
        super().__init__(wrapped)
        self._self_sdk = sdk

    def __enter__(self):
        token = self._self_sdk.switch_off()
        try:
            return self.__wrapped__.__enter__()
        finally:
            self._self_sdk.restore(token)

    def __exit__(self, *exc: Any):
        return self.__wrapped__.__exit__(*exc)

    async def __aenter__(self):
        token = self._self_sdk.switch_off()
        try:
            return await self.__wrapped__.__aenter__()
        finally:
            self._self_sdk.restore(token)

    async def __aexit__(self, *exc: Any):
        return await self.__wrapped__.__aexit__(*exc)


# --- the SDK's own tracing -----------------------------------------------------------------------------
_EXPLICIT = "_agentwatch_open_telemetry_explicit"  # set on each client by the patched _set_open_telemetry
_SDK_SPAN_OFF: contextvars.ContextVar[bool] = contextvars.ContextVar("agentwatch_anthropic_sdk_span_off",
                                                                      default=False)


def _env_explicit() -> bool:
    """Whether the environment configures the SDK's spans (ANTHROPIC_OPEN_TELEMETRY=false turns them off)."""
    return config.anthropic_sdk_tracing_configured()


class _Inherited(dict):
    """The option `copy()` / `with_options()` gives a copy of a client: marked with the source's choice."""

    explicit = False


class SdkTracing:
    """The anthropic SDK's own tracing: whether the user configured it per client, and switching its span
    off per call (a context variable read by the SDK's `_tracer`), plus the content-capture cap."""

    def __init__(self, tel: Telemetry):
        self.tel = tel
        self.patched: list[tuple[type, str, Any]] = []

    # -- SdkTracing protocol (see _inference)
    def explicit(self, instance: Any) -> bool:
        client = getattr(instance, "_client", None)
        options = getattr(client, "_open_telemetry", None)
        if not isinstance(options, dict) or not options.get("traces", {}).get("enabled", True):
            return False  # no SDK tracing on this client (or an SDK without it)
        explicit = getattr(client, _EXPLICIT, None)
        if explicit is None:  # a client made before agentwatch patched the SDK: judge by what it resolved to
            traces = options["traces"]
            explicit = (_env_explicit() or "tracer_provider" in options
                        or "conversation_id" in options or traces.get("content_mode") == "content")
        return explicit

    def switch_off(self) -> object:
        return _SDK_SPAN_OFF.set(True)

    def restore(self, token: object) -> None:
        _SDK_SPAN_OFF.reset(token)  # type: ignore[arg-type]

    # -- patching
    def patch(self) -> None:
        try:
            from anthropic._base_client import BaseClient
        except ImportError:
            return
        tracer = BaseClient.__dict__.get("_tracer")
        if not isinstance(tracer, property) or not callable(getattr(BaseClient, "_set_open_telemetry", None)):
            return  # an SDK without its own tracing (anthropic < 2) or with another design: nothing to do
        fget = tracer.fget

        def sdk_tracer(client: Any) -> Any:
            return None if _SDK_SPAN_OFF.get() else fget(client)

        self._replace(BaseClient, "_tracer", property(sdk_tracer, doc=tracer.__doc__))
        set_option = BaseClient._set_open_telemetry
        copy_option = getattr(BaseClient, "_copy_open_telemetry", None)

        def set_open_telemetry(client: Any, option: Any) -> None:
            set_option(client, option)
            try:
                explicit = option.explicit if isinstance(option, _Inherited) else (
                    option is not None or _env_explicit())
                object.__setattr__(client, _EXPLICIT, explicit)
            except Exception:  # noqa: BLE001
                report_internal_error("anthropic.open_telemetry")

        self._replace(BaseClient, "_set_open_telemetry", set_open_telemetry)
        if callable(copy_option):
            def copy_open_telemetry(client: Any, option: Any) -> Any:
                result = copy_option(client, option)
                if option is None and isinstance(result, dict):
                    result = _Inherited(result)
                    result.explicit = bool(getattr(client, _EXPLICIT, False))
                return result

            self._replace(BaseClient, "_copy_open_telemetry", copy_open_telemetry)
        self._cap_content()

    def _cap_content(self) -> None:
        """The SDK's `content_mode` records prompts only while the GenAI content-capture setting is on."""
        try:
            from anthropic.lib._tracing._config import OpenTelemetryConfig
        except ImportError:
            return
        records = OpenTelemetryConfig.__dict__.get("records_content")
        if not isinstance(records, property):
            return
        fget = records.fget
        tel = self.tel

        def records_content(config: Any) -> bool:
            return bool(tel.settings.capture_content) and fget(config)

        self._replace(OpenTelemetryConfig, "records_content", property(records_content, doc=records.__doc__))

    def _replace(self, owner: type, name: str, value: Any) -> None:
        self.patched.append((owner, name, owner.__dict__[name]))
        setattr(owner, name, value)

    def unpatch(self) -> None:
        for owner, name, original in reversed(self.patched):
            setattr(owner, name, original)
        self.patched = []


class AnthropicInstrumentor(BaseInstrumentor):
    """Patches the Anthropic SDK (`anthropic` >= 1.0) for spans, metrics, logs and cost of every LLM call."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("anthropic >= 1.0",)

    def _instrument(self, **kwargs: Any) -> None:
        patches = self._patches = ImportPatches("anthropic")  # ModuleNotFoundError when the SDK is absent
        tel = telemetry_for(kwargs)
        ensure_processor(kwargs.get("tracer_provider"))
        begin = _Begin(tel)
        sdk = self._sdk_tracing = SdkTracing(tel)
        # the SDK's own tracing is switched when its client module is imported (before any client exists)
        patches.when_imported("anthropic._base_client", lambda _module, _patches: sdk.patch())
        patches.wrap(_MODULE, "Messages.create", sync_wrapper(begin, _Finish(False), sdk, "anthropic"))
        patches.wrap(_MODULE, "AsyncMessages.create", async_wrapper(begin, _Finish(True), sdk, "anthropic"))
        patches.wrap(_MODULE, "Messages.stream", _stream_helper_wrapper(CallSite(begin, None, sdk, "anthropic"), False))
        patches.wrap(_MODULE, "AsyncMessages.stream", _stream_helper_wrapper(CallSite(begin, None, sdk, "anthropic"), True))
        patches.start()  # patched when the application imports anthropic, not before

    def _uninstrument(self, **kwargs: Any) -> None:
        self._patches.stop()
        self._sdk_tracing.unpatch()
