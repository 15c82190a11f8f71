// Package agentwatchprocessor prices every inference span that carries token usage but no cost, from an
// SDK in any language, exactly as the agentwatch Python package prices it: the span gets
// agentwatch.usage.cost_usd, or agentwatch.usage.cost_unknown=true when the model has no price (never $0).
package agentwatchprocessor

import (
	"errors"
	"os"

	"go.opentelemetry.io/collector/component"

	"github.com/agentwatch/agentwatch/collector/internal/prices"
)

// Config of the agentwatch processor.
type Config struct {
	// PricesFile is a user price file (the AGENTWATCH_PRICES_FILE format) that overrides or extends the
	// bundled genai-prices table; empty for none.
	PricesFile string `mapstructure:"prices_file"`
}

var _ component.Config = (*Config)(nil)

// Validate loads the price file, so a malformed one fails `validate` and start-up with a clear message.
func (c *Config) Validate() error {
	if c.PricesFile == "" {
		return nil
	}
	if _, err := os.Stat(c.PricesFile); err != nil {
		return errors.New("prices_file: " + err.Error())
	}
	_, err := prices.LoadOverrides(c.PricesFile)
	return err
}

func createDefaultConfig() component.Config { return &Config{} }
