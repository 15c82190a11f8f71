// Package elasticsearchexporter is agentwatch's own `elasticsearch` logs exporter: the subset of the
// contrib exporter the shipped configs use (endpoint, logs_index, mapping.mode: ecs, api_key or
// user/password, tls), because the contrib module is not available at the pinned release here. It writes
// log records into an Elasticsearch data stream with the Bulk API, in the contrib exporter's ECS layout:
// attributes at the document root under their own names, body -> message, severity text -> log.level,
// trace and span ids -> trace.id / span.id, resource service.name -> service.name. Any other setting
// of the contrib exporter is rejected at validation, so a config never silently means less than it says.
package elasticsearchexporter

import (
	"errors"
	"net/url"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/config/configtls"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
)

// MappingConfig is the document layout; only "ecs" is implemented.
type MappingConfig struct {
	Mode string `mapstructure:"mode"`
}

// Config of the elasticsearch exporter.
type Config struct {
	Endpoint  string                 `mapstructure:"endpoint"`
	LogsIndex string                 `mapstructure:"logs_index"`
	Mapping   MappingConfig          `mapstructure:"mapping"`
	APIKey    configopaque.String    `mapstructure:"api_key"`
	User      string                 `mapstructure:"user"`
	Password  configopaque.String    `mapstructure:"password"`
	TLS       configtls.ClientConfig `mapstructure:"tls"`
	Timeout   time.Duration          `mapstructure:"timeout"`

	QueueSettings configoptional.Optional[exporterhelper.QueueBatchConfig] `mapstructure:"sending_queue"`
	BackOff       configretry.BackOffConfig                                `mapstructure:"retry_on_failure"`
}

var _ component.Config = (*Config)(nil)

func createDefaultConfig() component.Config {
	return &Config{
		Mapping:       MappingConfig{Mode: "ecs"},
		Timeout:       30 * time.Second,
		QueueSettings: configoptional.Some(exporterhelper.NewDefaultQueueConfig()),
		BackOff:       configretry.NewDefaultBackOffConfig(),
	}
}

// Validate checks what the exporter can do; an empty credential (an unset env default) means none.
func (c *Config) Validate() error {
	var errs []error
	u, err := url.Parse(c.Endpoint)
	if c.Endpoint == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, errors.New("endpoint must be an http(s) URL of Elasticsearch, e.g. http://localhost:9200"))
	}
	if c.LogsIndex == "" {
		errs = append(errs, errors.New("logs_index must name the data stream (e.g. logs-agentwatch-default)"))
	}
	if c.Mapping.Mode != "ecs" {
		errs = append(errs, errors.New(`mapping.mode: only "ecs" is supported by agentwatch's elasticsearch exporter`))
	}
	if c.APIKey != "" && (c.User != "" || c.Password != "") {
		errs = append(errs, errors.New("give api_key or user/password, not both"))
	}
	if c.Timeout <= 0 {
		errs = append(errs, errors.New("timeout must be positive"))
	}
	return errors.Join(errs...)
}
