package resourcedetectionprocessor

import (
	"context"
	"os"
	"runtime"
	"testing"

	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor/processortest"

	sc "github.com/agentwatch/agentwatch/collector/internal/semconv"
)

func TestEnvAndSystemDetectors(t *testing.T) {
	t.Setenv(sc.EnvOtelResourceAttributes, "deployment.environment.name=prod, team=agents%20core,"+sc.HostName+"=from-env")
	host, _ := os.Hostname()
	for _, c := range []struct {
		override bool
		detector []string
		wantHost string
		wantSvc  string
	}{
		{false, []string{"env", "system"}, "from-env", "kept"},
		{false, []string{"system"}, host, "kept"},
		{true, []string{"system", "env"}, host, "kept"},
	} {
		cfg := &Config{Detectors: c.detector, Override: c.override, System: SystemConfig{HostnameSources: []string{"os"}}}
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		sink := new(consumertest.TracesSink)
		p, err := NewFactory().CreateTraces(context.Background(), processortest.NewNopSettings(typeStr), cfg, sink)
		if err != nil {
			t.Fatal(err)
		}
		td := ptrace.NewTraces()
		res := td.ResourceSpans().AppendEmpty().Resource().Attributes()
		res.PutStr(sc.ServiceName, "kept")
		if err := p.ConsumeTraces(context.Background(), td); err != nil {
			t.Fatal(err)
		}
		got := sink.AllTraces()[0].ResourceSpans().At(0).Resource().Attributes()
		if v, _ := got.Get(sc.HostName); v.Str() != c.wantHost {
			t.Errorf("%v: host.name %q, want %q", c.detector, v.Str(), c.wantHost)
		}
		if v, _ := got.Get(sc.OsType); v.Str() != runtime.GOOS {
			t.Errorf("os.type %q", v.Str())
		}
		if v, _ := got.Get(sc.ServiceName); v.Str() != c.wantSvc {
			t.Errorf("service.name %q", v.Str())
		}
		_, hasTeam := got.Get("team")
		if hasTeam != (c.detector[0] == "env" || len(c.detector) > 1) {
			t.Errorf("%v: team attribute present=%v", c.detector, hasTeam)
		}
		if v, ok := got.Get("team"); ok && v.Str() != "agents core" {
			t.Errorf("percent-decoding: %q", v.Str())
		}
	}
}

func TestUnsupportedSettingsAreRejected(t *testing.T) {
	for _, cfg := range []*Config{
		{Detectors: []string{"ec2"}},
		{Detectors: []string{"system"}, System: SystemConfig{HostnameSources: []string{"dns"}}},
	} {
		if cfg.Validate() == nil {
			t.Errorf("%+v validated", cfg)
		}
	}
	t.Setenv(sc.EnvOtelResourceAttributes, "novalue")
	if _, err := detect(&Config{Detectors: []string{"env"}}); err == nil {
		t.Error("a malformed OTEL_RESOURCE_ATTRIBUTES must be an error")
	}
}
