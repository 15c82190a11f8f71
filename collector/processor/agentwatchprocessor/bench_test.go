package agentwatchprocessor

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/pdata/ptrace"

	sc "github.com/agentwatch/agentwatch/collector/internal/semconv"
)

// benchBatch is a realistic batch: per 8 spans, 5 LLM calls to priced models (one tiered, one with cache
// and reasoning, one legacy-named), one to an unknown model, and two tool spans.
func benchBatch(n int) ptrace.Traces {
	td := ptrace.NewTraces()
	ss := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty()
	for i := 0; i < n; i++ {
		a := ss.Spans().AppendEmpty().Attributes()
		switch i % 8 {
		case 0, 1:
			put(a, chat("gpt-4o", 1200+i%100, 300))
		case 2:
			put(a, with(chat("claude-sonnet-4-5", 250000, 1000), attrs{sc.GenAIProviderName: "anthropic"}))
		case 3:
			put(a, with(chat("gpt-5", 5000, 2000), attrs{sc.GenAIUsageCacheReadInputTokens: 1000, sc.GenAIUsageReasoningOutputTokens: 500, sc.GenAIResponseModel: "gpt-5-2025-08-07"}))
		case 4:
			put(a, attrs{sc.LegacyLLMRequestType: "chat", sc.LegacyGenAISystem: "openai", sc.GenAIRequestModel: "gpt-4o-mini",
				sc.LegacyUsagePromptTokens: 800, sc.LegacyUsageCompletionTokens: 200})
		case 5:
			put(a, chat("in-house-llm", 100, 100))
		default:
			put(a, attrs{sc.GenAIOperationName: sc.OpExecuteTool, sc.GenAIToolName: "search"})
		}
	}
	return td
}

// BenchmarkProcessor prices batches of 1024 spans; run with -cpu 1 for the one-core figure. The copy of
// the unpriced batch per iteration is outside the timer (and outside the allocation count).
func BenchmarkProcessor(b *testing.B) {
	const batch = 1024
	p, err := newPricer(&Config{}, componenttest.NewNopTelemetrySettings())
	if err != nil {
		b.Fatal(err)
	}
	template := benchBatch(batch)
	work := ptrace.NewTraces()
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	var paused time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		t0 := time.Now()
		template.CopyTo(work)
		paused += time.Since(t0)
		b.StartTimer()
		if _, err := p.processTraces(ctx, work); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	elapsed := time.Since(start) - paused
	b.ReportMetric(float64(b.N*batch)/elapsed.Seconds(), "spans/s")
	b.ReportMetric(float64(elapsed.Nanoseconds())/float64(b.N*batch), "ns/span")
}
