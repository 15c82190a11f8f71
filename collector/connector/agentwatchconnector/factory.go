package agentwatchconnector

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/connector"
	"go.opentelemetry.io/collector/consumer"
)

// typeStr is the component name in collector configs (`connectors: {agentwatch: ...}`).
var typeStr = component.MustNewType("agentwatch")

// NewFactory is the agentwatch connector's factory (traces -> metrics).
func NewFactory() connector.Factory {
	return connector.NewFactory(typeStr, createDefaultConfig,
		connector.WithTracesToMetrics(createTracesToMetrics, component.StabilityLevelAlpha))
}

func createTracesToMetrics(_ context.Context, set connector.Settings, cfg component.Config, next consumer.Metrics) (connector.Traces, error) {
	return newConnector(cfg.(*Config), set.TelemetrySettings, next)
}
