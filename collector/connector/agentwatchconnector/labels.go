package agentwatchconnector

import (
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/agentwatch/agentwatch/collector/internal/genai"
	sc "github.com/agentwatch/agentwatch/collector/internal/semconv"
)

// callLabels are the attribute sets of one kind of LLM call, as telemetry.py MetricLabels builds them.
type callLabels struct {
	call       *labels // operation duration: with error.type
	input      *labels // token usage, gen_ai.token.type=input
	output     *labels
	price      *labels // cost and unpriced counters: provider, request and response model
	embeddings bool    // no output-token point for embeddings, as in Python
}

type callKey struct {
	op, provider, request, response, address string
	port                                     int64
	errType                                  string
}

// labelCacheSize bounds the interned call label sets (Python: _LABEL_CACHE_SIZE, cleared when full).
const labelCacheSize = 4096

// labelSet holds the label limiters (first `limit` values pass, the rest become _OTHER) and the interned
// call label sets. Python limits model, agent and tool names; here provider, operation and server address
// are limited too, so no input can grow memory without bound.
type labelSet struct {
	models, agents, tools, providers, ops, addresses, errors *limiter
	calls                                                    map[callKey]*callLabels
}

func newLabelSet(limit int) *labelSet {
	return &labelSet{
		models: newLimiter(limit), agents: newLimiter(limit), tools: newLimiter(limit),
		providers: newLimiter(limit), ops: newLimiter(limit), addresses: newLimiter(limit),
		errors: newLimiter(50), // processor.py: LabelLimiter(50) for error.type
		calls:  map[callKey]*callLabels{},
	}
}

func (l *labelSet) call(c genai.Call, attrs pcommon.Map, errType string) *callLabels {
	k := callKey{
		op: l.ops.of(c.Operation), provider: l.providers.of(c.Provider), request: l.models.of(c.RequestModel),
		errType: errType,
	}
	if c.ResponseModel != "" {
		k.response = l.models.of(c.ResponseModel)
	}
	if v, ok := attrs.Get(sc.ServerAddress); ok && genai.Truthy(v) {
		k.address = l.addresses.of(v.AsString())
		if p, ok := attrs.Get(sc.ServerPort); ok && p.Type() == pcommon.ValueTypeInt && p.Int() != 0 {
			k.port = p.Int()
		}
	}
	if cl := l.calls[k]; cl != nil {
		return cl
	}
	if len(l.calls) >= labelCacheSize {
		l.calls = map[callKey]*callLabels{}
	}
	base := []attr{str(sc.GenAIOperationName, k.op), str(sc.GenAIProviderName, k.provider), str(sc.GenAIRequestModel, k.request)}
	if k.response != "" {
		base = append(base, str(sc.GenAIResponseModel, k.response))
	}
	if k.address != "" {
		base = append(base, str(sc.ServerAddress, k.address))
		if k.port != 0 {
			base = append(base, attr{k: sc.ServerPort, i: k.port, isInt: true})
		}
	}
	cl := &callLabels{embeddings: k.op == sc.OpEmbeddings}
	call := append([]attr(nil), base...)
	if errType != "" {
		call = append(call, str(sc.ErrorType, errType))
	}
	cl.call = mkLabels(call...)
	cl.input = mkLabels(append(append([]attr(nil), base...), str(sc.GenAITokenType, sc.TokenTypeInput))...)
	cl.output = mkLabels(append(append([]attr(nil), base...), str(sc.GenAITokenType, sc.TokenTypeOutput))...)
	response := k.response
	if response == "" {
		response = k.request
	}
	cl.price = mkLabels(str(sc.GenAIProviderName, k.provider), str(sc.GenAIRequestModel, k.request), str(sc.GenAIResponseModel, response))
	l.calls[k] = cl
	return cl
}
