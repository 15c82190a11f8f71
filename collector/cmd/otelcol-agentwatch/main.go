// Command otelcol-agentwatch is agentwatch's OpenTelemetry Collector distribution: the upstream
// components the shipped configs use (collector/*.yaml, deploy/) plus agentwatch's own processor and
// connector, which price LLM calls and turn agent spans into run metrics for agents in any language.
package main

import (
	"fmt"
	"os"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/envprovider"
	"go.opentelemetry.io/collector/confmap/provider/fileprovider"
	"go.opentelemetry.io/collector/confmap/provider/yamlprovider"
	"go.opentelemetry.io/collector/otelcol"
)

// version is the distribution's release; -ldflags "-X main.version=..." may override it.
var version = "0.1.0"

// settings wires the component list and the config sources (file:, env:, yaml:) the configs use.
func settings() otelcol.CollectorSettings {
	return otelcol.CollectorSettings{
		BuildInfo: component.BuildInfo{
			Command:     "otelcol-agentwatch",
			Description: "agentwatch OpenTelemetry Collector distribution",
			Version:     version,
		},
		Factories: components,
		ConfigProviderSettings: otelcol.ConfigProviderSettings{
			ResolverSettings: confmap.ResolverSettings{
				ProviderFactories: []confmap.ProviderFactory{
					envprovider.NewFactory(),
					fileprovider.NewFactory(),
					yamlprovider.NewFactory(),
				},
				DefaultScheme: "env",
			},
		},
	}
}

func main() {
	if err := otelcol.NewCommand(settings()).Execute(); err != nil {
		// cobra has already printed the error; say which program failed for scripts that merge output.
		fmt.Fprintln(os.Stderr, "otelcol-agentwatch:", err)
		os.Exit(1)
	}
}
