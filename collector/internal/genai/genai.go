// Package genai reads GenAI semantic-convention spans the way the Python agentwatch processor does
// (processor.py operation_of, usage_from_attributes, _failed), including the older attribute names
// other instrumentations still emit. Every name comes from the generated semconv package.
package genai

import (
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/agentwatch/agentwatch/collector/internal/prices"
	sc "github.com/agentwatch/agentwatch/collector/internal/semconv"
)

var inference = func() map[string]bool {
	m := map[string]bool{}
	for _, op := range sc.InferenceOperations {
		m[op] = true
	}
	return m
}()

// IsInference reports whether an operation name is an LLM call (a step of an agent run).
func IsInference(op string) bool { return inference[op] }

// Operation is gen_ai.operation.name, or the operation an older `llm.request.type` implies; "" if none.
func Operation(attrs pcommon.Map) string {
	if v, ok := attrs.Get(sc.GenAIOperationName); ok {
		return v.AsString()
	}
	if v, ok := attrs.Get(sc.LegacyLLMRequestType); ok && v.Type() == pcommon.ValueTypeStr {
		return sc.LegacyLLMRequestTypes[v.Str()]
	}
	return ""
}

// nonNegInt is Python's `type(value) is int and value >= 0` (a double, bool or string is not a count).
func nonNegInt(v pcommon.Value) (int64, bool) {
	if v.Type() != pcommon.ValueTypeInt || v.Int() < 0 {
		return 0, false
	}
	return v.Int(), true
}

func firstOf(attrs pcommon.Map, names ...string) pcommon.Value {
	for _, n := range names {
		if v, ok := attrs.Get(n); ok {
			return v
		}
	}
	return pcommon.NewValueEmpty()
}

// optionalCount is the first of the names holding a non-negative int, else 0 (Python's _int_attr or 0).
func optionalCount(attrs pcommon.Map, names ...string) int64 {
	for _, n := range names {
		if v, ok := attrs.Get(n); ok {
			if i, ok := nonNegInt(v); ok {
				return i
			}
		}
	}
	return 0
}

var (
	reasoningNames  = append([]string{sc.GenAIUsageReasoningOutputTokens}, sc.LegacyUsageReasoningTokens...)
	cacheWriteNames = append([]string{sc.GenAIUsageCacheWriteInputTokens}, sc.LegacyUsageCacheWriteTokens...)
)

// UsageOf is the call's token usage from current or legacy names; false when not reported or malformed
// (a string, a double, a negative count): never a guessed number.
func UsageOf(attrs pcommon.Map) (prices.Usage, bool) {
	in, ok1 := nonNegInt(firstOf(attrs, sc.GenAIUsageInputTokens, sc.LegacyUsagePromptTokens))
	out, ok2 := nonNegInt(firstOf(attrs, sc.GenAIUsageOutputTokens, sc.LegacyUsageCompletionTokens))
	if !ok1 || !ok2 {
		return prices.Usage{}, false
	}
	return prices.Usage{
		Input:      in,
		Output:     out,
		CacheRead:  optionalCount(attrs, sc.GenAIUsageCacheReadInputTokens, sc.LegacyUsageCacheReadTokens),
		CacheWrite: optionalCount(attrs, cacheWriteNames...),
		Reasoning:  optionalCount(attrs, reasoningNames...),
	}, true
}

// Truthy is Python truthiness of an attribute value (empty string, 0, false and empty lists are false).
func Truthy(v pcommon.Value) bool {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return v.Str() != ""
	case pcommon.ValueTypeBool:
		return v.Bool()
	case pcommon.ValueTypeInt:
		return v.Int() != 0
	case pcommon.ValueTypeDouble:
		return v.Double() != 0
	case pcommon.ValueTypeSlice:
		return v.Slice().Len() > 0
	case pcommon.ValueTypeMap:
		return v.Map().Len() > 0
	case pcommon.ValueTypeBytes:
		return v.Bytes().Len() > 0
	}
	return false
}

// StringOr is str(attributes.get(name) or fallback) over the names in order.
func StringOr(attrs pcommon.Map, fallback string, names ...string) string {
	for _, n := range names {
		if v, ok := attrs.Get(n); ok && Truthy(v) {
			return v.AsString()
		}
	}
	return fallback
}

// Failed is the span's error.type, "_OTHER" when it only has an ERROR status, "" when it succeeded.
func Failed(span ptrace.Span) string {
	if v, ok := span.Attributes().Get(sc.ErrorType); ok && Truthy(v) {
		return v.AsString()
	}
	if span.Status().Code() == ptrace.StatusCodeError {
		return sc.ErrorOther
	}
	return ""
}

// Call is what the pricing and the per-call metrics need of an inference span.
type Call struct {
	Operation     string
	Provider      string
	RequestModel  string
	ResponseModel string
}

// CallOf reads the provider and models as the Python processor's _price_foreign_call does.
func CallOf(attrs pcommon.Map, op string) Call {
	return Call{
		Operation:     op,
		Provider:      StringOr(attrs, "", sc.GenAIProviderName, sc.LegacyGenAISystem),
		RequestModel:  StringOr(attrs, "unknown", sc.GenAIRequestModel),
		ResponseModel: StringOr(attrs, "", sc.GenAIResponseModel),
	}
}

// Price prices the call with the response model, then the request model when that differs (as
// agentwatch's own instrumentation does); false when unknown.
func Price(book *prices.PriceBook, c Call, u prices.Usage, t time.Time) (float64, bool) {
	m := c.ResponseModel
	if m == "" {
		m = c.RequestModel
	}
	if cost, ok := book.Cost(c.Provider, m, u, t); ok {
		return cost, true
	}
	if c.ResponseModel != "" && c.ResponseModel != c.RequestModel {
		return book.Cost(c.Provider, c.RequestModel, u, t)
	}
	return 0, false
}

// InProcess reports whether the resource is a process running the agentwatch Python package, whose
// metrics were already emitted in-process (the connector makes none from its spans).
func InProcess(res pcommon.Resource) bool {
	v, ok := res.Attributes().Get(sc.AgentwatchResourceMetricsInProcess)
	return ok && v.Type() == pcommon.ValueTypeBool && v.Bool()
}
