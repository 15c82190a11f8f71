package agentwatchprocessor

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/metric"

	"github.com/agentwatch/agentwatch/collector/internal/genai"
	"github.com/agentwatch/agentwatch/collector/internal/prices"
	sc "github.com/agentwatch/agentwatch/collector/internal/semconv"
)

const scopeName = "github.com/agentwatch/agentwatch/collector/processor/agentwatchprocessor"

// pricer holds the price book and the collector-telemetry counters.
type pricer struct {
	book     *prices.PriceBook
	priced   metric.Int64Counter
	unpriced metric.Int64Counter
	now      func() time.Time
}

func newPricer(cfg *Config, tel component.TelemetrySettings) (*pricer, error) {
	book, err := prices.NewDefault(cfg.PricesFile)
	if err != nil {
		return nil, err
	}
	meter := tel.MeterProvider.Meter(scopeName)
	priced, err := meter.Int64Counter(sc.MetricCollectorPricedSpans, metric.WithUnit(sc.UnitSpan),
		metric.WithDescription("Inference spans the agentwatch processor gave a cost."))
	if err != nil {
		return nil, err
	}
	unpriced, err := meter.Int64Counter(sc.MetricCollectorUnpricedSpans, metric.WithUnit(sc.UnitSpan),
		metric.WithDescription("Inference spans the agentwatch processor marked cost_unknown (no price for the model, or inconsistent usage)."))
	if err != nil {
		return nil, err
	}
	return &pricer{book: book, priced: priced, unpriced: unpriced, now: time.Now}, nil
}

// processTraces prices, in place, every inference span with usage and neither a cost nor a cost_unknown
// mark. Spans without usage, or whose usage is malformed, pass unchanged (there is nothing to price).
func (p *pricer) processTraces(ctx context.Context, td ptrace.Traces) (ptrace.Traces, error) {
	at := p.now()
	var priced, unpriced int64
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				switch priceSpan(p.book, spans.At(k), at) {
				case outcomePriced:
					priced++
				case outcomeUnpriced:
					unpriced++
				}
			}
		}
	}
	if priced > 0 {
		p.priced.Add(ctx, priced)
	}
	if unpriced > 0 {
		p.unpriced.Add(ctx, unpriced)
	}
	return td, nil
}

type outcome uint8

const (
	outcomeSkipped outcome = iota
	outcomePriced
	outcomeUnpriced
)

// priceSpan is the Python processor's _price_foreign_call for one span.
func priceSpan(book *prices.PriceBook, span ptrace.Span, at time.Time) outcome {
	attrs := span.Attributes()
	op := genai.Operation(attrs)
	if !genai.IsInference(op) {
		return outcomeSkipped
	}
	if _, has := attrs.Get(sc.AgentwatchCostUSD); has {
		return outcomeSkipped
	}
	if v, has := attrs.Get(sc.AgentwatchCostUnknown); has && genai.Truthy(v) {
		return outcomeSkipped
	}
	usage, ok := genai.UsageOf(attrs)
	if !ok {
		return outcomeSkipped
	}
	if cost, ok := genai.Price(book, genai.CallOf(attrs, op), usage, at); ok {
		attrs.PutDouble(sc.AgentwatchCostUSD, cost)
		return outcomePriced
	}
	attrs.PutBool(sc.AgentwatchCostUnknown, true)
	return outcomeUnpriced
}
