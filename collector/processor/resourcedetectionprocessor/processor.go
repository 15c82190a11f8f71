// Package resourcedetectionprocessor is agentwatch's own `resourcedetection` processor: the `env` and
// `system` (hostname_sources: [os]) detectors of the contrib processor, which the shipped agent and
// standalone configs use. The contrib module cannot be built at the pinned release here (modules of its
// cloud detectors are not served). Any other detector or setting is rejected at validation.
package resourcedetectionprocessor

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"runtime"
	"strings"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processorhelper"

	sc "github.com/agentwatch/agentwatch/collector/internal/semconv"
)

var typeStr = component.MustNewType("resourcedetection")

// SystemConfig is the system detector's settings; only the "os" hostname source is implemented.
type SystemConfig struct {
	HostnameSources []string `mapstructure:"hostname_sources"`
}

// Config of the resourcedetection processor.
type Config struct {
	Detectors []string      `mapstructure:"detectors"`
	Timeout   time.Duration `mapstructure:"timeout"`
	Override  bool          `mapstructure:"override"`
	System    SystemConfig  `mapstructure:"system"`
}

func createDefaultConfig() component.Config {
	return &Config{Detectors: []string{"env"}, Timeout: 5 * time.Second, Override: true}
}

// Validate accepts the detectors this processor has.
func (c *Config) Validate() error {
	var errs []error
	for _, d := range c.Detectors {
		if d != "env" && d != "system" {
			errs = append(errs, fmt.Errorf("detector %q: agentwatch's resourcedetection has only env and system", d))
		}
	}
	for _, s := range c.System.HostnameSources {
		if s != "os" {
			errs = append(errs, fmt.Errorf("system.hostname_sources: %q is not supported (only os)", s))
		}
	}
	return errors.Join(errs...)
}

// NewFactory is the resourcedetection processor's factory (traces, metrics, logs).
func NewFactory() processor.Factory {
	return processor.NewFactory(typeStr, createDefaultConfig,
		processor.WithTraces(createTraces, component.StabilityLevelAlpha),
		processor.WithMetrics(createMetrics, component.StabilityLevelAlpha),
		processor.WithLogs(createLogs, component.StabilityLevelAlpha))
}

// detected is the resource the detectors found once at creation (the process' environment and host do
// not change while it runs).
type detected struct {
	attrs    pcommon.Map
	override bool
}

func detect(cfg *Config) (*detected, error) {
	d := &detected{attrs: pcommon.NewMap(), override: cfg.Override}
	for _, name := range cfg.Detectors {
		switch name {
		case "env":
			if err := parseResourceAttributes(os.Getenv(sc.EnvOtelResourceAttributes), d.attrs); err != nil {
				return nil, fmt.Errorf("resourcedetection env: %s: %w", sc.EnvOtelResourceAttributes, err)
			}
		case "system":
			host, err := os.Hostname()
			if err != nil {
				return nil, fmt.Errorf("resourcedetection system: %w", err)
			}
			if _, ok := d.attrs.Get(sc.HostName); !ok { // an earlier detector wins, as in contrib
				d.attrs.PutStr(sc.HostName, host)
			}
			if _, ok := d.attrs.Get(sc.OsType); !ok {
				d.attrs.PutStr(sc.OsType, runtime.GOOS)
			}
		}
	}
	return d, nil
}

// parseResourceAttributes reads `k1=v1,k2=v2` with percent-encoded values (the OTel SDK env format).
func parseResourceAttributes(s string, into pcommon.Map) error {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil
	}
	for _, pair := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(pair, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return fmt.Errorf("%q is not key=value", pair)
		}
		val, err := url.PathUnescape(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("%q: %w", pair, err)
		}
		if _, seen := into.Get(k); !seen {
			into.PutStr(k, val)
		}
	}
	return nil
}

func (d *detected) apply(res pcommon.Resource) {
	attrs := res.Attributes()
	d.attrs.Range(func(k string, v pcommon.Value) bool {
		if _, has := attrs.Get(k); !has || d.override {
			v.CopyTo(attrs.PutEmpty(k))
		}
		return true
	})
}

func createTraces(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Traces) (processor.Traces, error) {
	d, err := detect(cfg.(*Config))
	if err != nil {
		return nil, err
	}
	return processorhelper.NewTraces(ctx, set, cfg, next, func(_ context.Context, td ptrace.Traces) (ptrace.Traces, error) {
		for i := 0; i < td.ResourceSpans().Len(); i++ {
			d.apply(td.ResourceSpans().At(i).Resource())
		}
		return td, nil
	}, processorhelper.WithCapabilities(consumer.Capabilities{MutatesData: true}))
}

func createMetrics(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Metrics) (processor.Metrics, error) {
	d, err := detect(cfg.(*Config))
	if err != nil {
		return nil, err
	}
	return processorhelper.NewMetrics(ctx, set, cfg, next, func(_ context.Context, md pmetric.Metrics) (pmetric.Metrics, error) {
		for i := 0; i < md.ResourceMetrics().Len(); i++ {
			d.apply(md.ResourceMetrics().At(i).Resource())
		}
		return md, nil
	}, processorhelper.WithCapabilities(consumer.Capabilities{MutatesData: true}))
}

func createLogs(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Logs) (processor.Logs, error) {
	d, err := detect(cfg.(*Config))
	if err != nil {
		return nil, err
	}
	return processorhelper.NewLogs(ctx, set, cfg, next, func(_ context.Context, ld plog.Logs) (plog.Logs, error) {
		for i := 0; i < ld.ResourceLogs().Len(); i++ {
			d.apply(ld.ResourceLogs().At(i).Resource())
		}
		return ld, nil
	}, processorhelper.WithCapabilities(consumer.Capabilities{MutatesData: true}))
}
