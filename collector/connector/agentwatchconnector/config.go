// Package agentwatchconnector turns GenAI spans (traces) into the metric series the agentwatch Python
// package emits in-process, with the same names, units, bucket boundaries (every threshold value is a
// boundary) and attributes, so the shipped dashboards and alert rules work for agents in any language.
//
// Per LLM call: gen_ai.client.token.usage, gen_ai.client.operation.duration, agentwatch.llm.cost and
// agentwatch.pricing.unpriced_calls. Per run (invoke_agent span): gen_ai.invoke_agent.duration (error.type
// is the outcome), gen_ai.invoke_agent.inference_calls, gen_ai.invoke_agent.tool_calls,
// agentwatch.agent.cost and agentwatch.agent.token.usage. Per tool call: gen_ai.execute_tool.duration.
//
// Run totals need the whole run: the connector keeps a compact record of every span of a trace until no
// span of it has arrived for decision_wait (like the tail sampler's decision_wait), then computes the runs
// as the Python processor does: a nested run counts for its parents, an LLM-call span inside another is
// counted once, the same tool seen twice nested (an MCP client and server) once. Memory is bounded by
// max_traces and max_spans; a trace pushed out early still gives its per-call and tool metrics, but no run
// metrics (they could be incomplete), and is counted in agentwatch.collector.evicted_traces.
//
// Used as a traces -> traces connector too (as an exporter of one traces pipeline and the receiver of
// another), it passes every span on once its trace is decided, with each run's totals on its invoke_agent
// span as the Python processor writes them (inference and tool calls, tool errors, tokens,
// agentwatch.usage.cost_usd, cost_unknown), so a tail sampler after it keeps a run over $1 whatever
// language the agent is in. An evicted trace goes on without totals; no span is dropped.
//
// Spans of a resource with agentwatch.metrics.in_process=true (a process running the agentwatch Python
// package, which emitted these metrics itself) make no metrics here; they still count for an enclosing run
// of another process.
package agentwatchconnector

import (
	"errors"
	"time"

	"go.opentelemetry.io/collector/component"

	"github.com/agentwatch/agentwatch/collector/internal/prices"
	sc "github.com/agentwatch/agentwatch/collector/internal/semconv"
)

// Config of the agentwatch connector.
type Config struct {
	// DecisionWait is how long a trace stays buffered after its last span arrived. A run's invoke_agent
	// span ends (and is exported) last, so this is the wait for stragglers from other services.
	DecisionWait time.Duration `mapstructure:"decision_wait"`
	// MaxTraces and MaxSpans bound the buffer; past them the least recently updated trace is evicted.
	MaxTraces int `mapstructure:"max_traces"`
	MaxSpans  int `mapstructure:"max_spans"`
	// MetricsFlushInterval is how often the cumulative metrics are sent on.
	MetricsFlushInterval time.Duration `mapstructure:"metrics_flush_interval"`
	// ClientMetrics turns the per-call gen_ai.client.* histograms on (default). Turn them off when the
	// agents' own SDK instrumentation already emits gen_ai.client.* metrics; cost and unpriced counters stay.
	ClientMetrics bool `mapstructure:"client_metrics"`
	// LabelLimit bounds the distinct model, agent and tool names per metric (the rest become _OTHER).
	LabelLimit int `mapstructure:"label_limit"`
	// MaxSeries bounds the series of each metric; the overflow goes to one otel.metric.overflow series.
	MaxSeries int `mapstructure:"max_series"`
	// PricesFile is the user price file for spans that reach the connector without a cost.
	PricesFile string `mapstructure:"prices_file"`
}

var _ component.Config = (*Config)(nil)

func createDefaultConfig() component.Config {
	return &Config{
		DecisionWait:         30 * time.Second,
		MaxTraces:            100_000,
		MaxSpans:             2_000_000,
		MetricsFlushInterval: 15 * time.Second,
		ClientMetrics:        true,
		LabelLimit:           sc.DefaultModelLabelLimit,
		MaxSeries:            2000,
	}
}

// Validate rejects settings that would make the buffer unbounded or the metrics never flow.
func (c *Config) Validate() error {
	var errs []error
	if c.DecisionWait <= 0 {
		errs = append(errs, errors.New("decision_wait must be positive"))
	}
	if c.MaxTraces <= 0 || c.MaxSpans <= 0 {
		errs = append(errs, errors.New("max_traces and max_spans must be positive"))
	}
	if c.MetricsFlushInterval <= 0 {
		errs = append(errs, errors.New("metrics_flush_interval must be positive"))
	}
	if c.LabelLimit <= 0 || c.MaxSeries <= 0 {
		errs = append(errs, errors.New("label_limit and max_series must be positive"))
	}
	if c.PricesFile != "" {
		if _, err := prices.LoadOverrides(c.PricesFile); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
