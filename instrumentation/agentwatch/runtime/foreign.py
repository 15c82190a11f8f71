"""Other instrumentations of the same LLM clients, and how agentwatch recognises them.

The rule (README, "One inference span per LLM call"): when another GenAI instrumentation the user installed
traces a call, its span is THE inference span of that call; agentwatch makes no span of its own and the span
processor enriches the other one (cost, the cost counters, the log record, and the gen_ai.client.* points
when that instrumentation records none). It is recognised in either wrapping order:

- its LLM-call span is the current span when agentwatch's wrapper runs (it wraps outside agentwatch);
- one of the instrumentations below is instrumented for the same client (it patches the same methods as
  agentwatch; some, like OpenLLMetry's anthropic one, do not make their span current);
- a wrapt wrapper of another GenAI instrumentation sits between agentwatch's wrapper and the SDK method
  (an uninstrumented known one, whose wrapper outlived `uninstrument()`, passes calls through: not counted).

The provider SDKs' own tracing (anthropic 2.x) is handled by the client modules; its scope is listed here
because its spans carry no gen_ai.client.* metric points.
"""

from __future__ import annotations

import sys
from typing import Any, Callable

import wrapt

from agentwatch import config
from agentwatch import semconv as sc

SCOPE = "agentwatch"

# package of a GenAI instrumentation -> (its BaseInstrumentor class, the client it instruments (the same
# methods agentwatch patches), whether it records gen_ai.client.* points)
KNOWN_INSTRUMENTATIONS: dict[str, tuple[str, str, Callable[[], bool]]] = {
    # opentelemetry-python-contrib: opentelemetry-instrumentation-genai-openai / -genai-anthropic
    "opentelemetry.instrumentation.genai.openai": ("OpenAIInstrumentor", "openai", lambda: True),
    "opentelemetry.instrumentation.genai.anthropic": ("AnthropicInstrumentor", "anthropic", lambda: True),
    # the older contrib package name
    "opentelemetry.instrumentation.openai_v2": ("OpenAIInstrumentor", "openai", lambda: True),
    # OpenLLMetry (Traceloop): opentelemetry-instrumentation-openai / -anthropic; metrics unless turned off
    "opentelemetry.instrumentation.openai": ("OpenAIInstrumentor", "openai", lambda: _traceloop_metrics()),
    "opentelemetry.instrumentation.anthropic": ("AnthropicInstrumentor", "anthropic", lambda: _traceloop_metrics()),
}
# Any other wrapper from these namespaces on an SDK's inference method is taken for a GenAI instrumentation.
OTHER_INSTRUMENTATION_NAMESPACES = ("opentelemetry.instrumentation.", "openinference.instrumentation.", "openlit.")

# Instrumentation scopes whose inference spans come without gen_ai.client.* metric points.
SCOPES_WITHOUT_CLIENT_METRICS = ("com.anthropic.sdk.python",)  # the anthropic SDK's own tracing (+ ".<platform>")


def _traceloop_metrics() -> bool:
    return config.traceloop_metrics_enabled()


def _package_of(module: str) -> str | None:
    for package in KNOWN_INSTRUMENTATIONS:
        if module == package or module.startswith(package + "."):
            return package
    if module.startswith(OTHER_INSTRUMENTATION_NAMESPACES) and not module.startswith("opentelemetry.instrumentation.instrumentor"):
        return module
    return None


def _active(package: str, default: bool = True) -> bool:
    """Whether the package's instrumentor is instrumented now (`default` when that cannot be told)."""
    known = KNOWN_INSTRUMENTATIONS.get(package)
    if known is None:
        return default
    module = sys.modules.get(package)
    if module is None:
        return False if not default else default
    instance = getattr(getattr(module, known[0], None), "_instance", None)
    if instance is None:
        return default
    return bool(getattr(instance, "_is_instrumented_by_opentelemetry", default))


def instrumented_for(client: str) -> str | None:
    """The package of a known GenAI instrumentation that is instrumented for `client` now, if any."""
    for package, (_cls, instrumented_client, _metrics) in KNOWN_INSTRUMENTATIONS.items():
        if instrumented_client == client and package in sys.modules and _active(package, default=False):
            return package
    return None


# wrapt's function wrappers (wrapt 2 implements them apart from wrapt.ObjectProxy)
_FUNCTION_WRAPPERS = tuple(cls for cls in (getattr(wrapt, "FunctionWrapper", None),
                                           getattr(wrapt, "BoundFunctionWrapper", None)) if isinstance(cls, type))


def wrapper_below(wrapped: Any) -> str | None:
    """The package of an active GenAI instrumentation whose wrapt wrapper is under agentwatch's, if any."""
    layer = wrapped
    for _ in range(8):  # wrapper chains are short; bounded in case of a cycle
        if not isinstance(layer, _FUNCTION_WRAPPERS):
            return None
        function = getattr(layer, "_self_wrapper", None)
        module = getattr(function, "__module__", None) or ""
        if module and not module.startswith("agentwatch."):
            package = _package_of(module)
            if package is not None and _active(package):
                return package
        layer = layer.__wrapped__
    return None


def emits_client_metrics(package_or_scope: str) -> bool:
    """Whether the spans of this instrumentation (package or scope name) come with gen_ai.client.* points."""
    if package_or_scope.startswith(SCOPES_WITHOUT_CLIENT_METRICS):
        return False
    known = KNOWN_INSTRUMENTATIONS.get(package_or_scope)
    return known[2]() if known is not None else True


def scope_of(span: Any) -> str:
    scope = getattr(span, "instrumentation_scope", None)
    return getattr(scope, "name", None) or ""


def is_inference_span(attributes: Any) -> bool:
    op = attributes.get(sc.GEN_AI_OPERATION_NAME)
    if op is None:
        op = sc.LEGACY_LLM_REQUEST_TYPES.get(attributes.get(sc.LEGACY_LLM_REQUEST_TYPE))
    return op in sc.INFERENCE_OPERATIONS


def current_inference_span(span: Any) -> tuple[Any, bool] | None:
    """(span, is agentwatch's) when `span` (the current one) is a recording LLM-call span, else None."""
    if not span.is_recording():
        return None
    attributes = getattr(span, "attributes", None)
    if not attributes or not is_inference_span(attributes):
        return None
    return span, scope_of(span) == SCOPE
