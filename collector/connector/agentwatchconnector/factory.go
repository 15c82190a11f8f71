package agentwatchconnector

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/connector"
	"go.opentelemetry.io/collector/consumer"
)

// typeStr is the component name in collector configs (`connectors: {agentwatch: ...}`).
var typeStr = component.MustNewType("agentwatch")

// NewFactory is the agentwatch connector's factory: traces -> metrics (the run metrics), and traces ->
// traces (the same spans, passed on once their trace is decided, with each run's totals on its
// invoke_agent span, for a tail sampler downstream). The two are separate instances, each with its own
// buffer.
func NewFactory() connector.Factory {
	return connector.NewFactory(typeStr, createDefaultConfig,
		connector.WithTracesToMetrics(createTracesToMetrics, component.StabilityLevelAlpha),
		connector.WithTracesToTraces(createTracesToTraces, component.StabilityLevelAlpha))
}

func createTracesToMetrics(_ context.Context, set connector.Settings, cfg component.Config, next consumer.Metrics) (connector.Traces, error) {
	return newConnector(cfg.(*Config), set.TelemetrySettings, next, nil)
}

func createTracesToTraces(_ context.Context, set connector.Settings, cfg component.Config, next consumer.Traces) (connector.Traces, error) {
	return newConnector(cfg.(*Config), set.TelemetrySettings, nil, next)
}
