package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/otelcol"

	sc "github.com/agentwatch/agentwatch/collector/internal/semconv"
)

// The distribution holds what the shipped configs use (new component names of the pinned release) and
// agentwatch's own components.
func TestComponents(t *testing.T) {
	f, err := components()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"receiver":  {"otlp"},
		"processor": {"memory_limiter", "batch", "tail_sampling", "transform", "filter", "attributes", "span", "resource", "redaction", "resourcedetection", "agentwatch"},
		"exporter":  {"otlp_grpc", "otlp_http", "load_balancing", "prometheus", "prometheus_remote_write", "debug", "file", "elasticsearch"},
		"extension": {"health_check", "pprof", "zpages"},
		"connector": {"agentwatch"},
	}
	have := map[string]map[string]bool{"receiver": {}, "processor": {}, "exporter": {}, "extension": {}, "connector": {}}
	for k, v := range f.Receivers {
		if k == v.Type() { // not a deprecated alias (e.g. otlp for otlp_grpc), which the release keeps
			have["receiver"][k.String()] = true
		}
	}
	for k, v := range f.Processors {
		if k == v.Type() { // not a deprecated alias (e.g. otlp for otlp_grpc), which the release keeps
			have["processor"][k.String()] = true
		}
	}
	for k, v := range f.Exporters {
		if k == v.Type() { // not a deprecated alias (e.g. otlp for otlp_grpc), which the release keeps
			have["exporter"][k.String()] = true
		}
	}
	for k, v := range f.Extensions {
		if k == v.Type() { // not a deprecated alias (e.g. otlp for otlp_grpc), which the release keeps
			have["extension"][k.String()] = true
		}
	}
	for k, v := range f.Connectors {
		if k == v.Type() { // not a deprecated alias (e.g. otlp for otlp_grpc), which the release keeps
			have["connector"][k.String()] = true
		}
	}
	for kind, names := range want {
		for _, n := range names {
			if !have[kind][n] {
				t.Errorf("%s %s missing", kind, n)
			}
		}
		if len(have[kind]) != len(names) {
			t.Errorf("%ss: have %v, want exactly %v", kind, have[kind], names)
		}
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// The distribution starts with a minimal config and runs a semconv-only trace (OTLP/HTTP JSON, as the
// JavaScript and Go SDKs send it) through the agentwatch processor and connector: the LLM span comes out
// priced, the run span with its totals (the traces route) and the run metrics out of the connector.
func TestStartsAndRunsATrace(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	tracesOut, metricsOut := filepath.Join(dir, "traces.json"), filepath.Join(dir, "metrics.json")
	config := fmt.Sprintf(`
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:%d
processors:
  memory_limiter:
    check_interval: 1s
    limit_percentage: 80
    spike_limit_percentage: 20
  agentwatch: {}
  batch:
    timeout: 50ms
connectors:
  agentwatch:
    decision_wait: 100ms
    metrics_flush_interval: 100ms
exporters:
  file/traces:
    path: %s
    flush_interval: 50ms
  file/metrics:
    path: %s
    flush_interval: 50ms
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    traces:
      receivers: [otlp]
      processors: [memory_limiter, agentwatch, batch]
      exporters: [agentwatch]
    traces/decided:
      receivers: [agentwatch]
      exporters: [file/traces]
    metrics:
      receivers: [agentwatch]
      exporters: [file/metrics]
`, port, tracesOut, metricsOut)
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	set := settings()
	set.ConfigProviderSettings.ResolverSettings.URIs = []string{"file:" + cfgPath}
	col, err := otelcol.NewCollector(set)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- col.Run(ctx) }()
	deadline := time.Now().Add(30 * time.Second)
	for col.GetState() != otelcol.StateRunning {
		if time.Now().After(deadline) {
			t.Fatalf("collector state %v after 30 s", col.GetState())
		}
		select {
		case err := <-done:
			t.Fatalf("collector stopped: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	now := time.Now().UnixNano()
	body := fmt.Sprintf(`{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"ts-agent"}}]},
"scopeSpans":[{"scope":{"name":"my-js-sdk"},"spans":[
{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"invoke_agent support","kind":1,
 "startTimeUnixNano":"%d","endTimeUnixNano":"%d","attributes":[
 {"key":%q,"value":{"stringValue":%q}},{"key":%q,"value":{"stringValue":"support"}}]},
{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b175","parentSpanId":"eee19b7ec3c1b174","name":"chat gpt-4o","kind":3,
 "startTimeUnixNano":"%d","endTimeUnixNano":"%d","attributes":[
 {"key":%q,"value":{"stringValue":%q}},{"key":%q,"value":{"stringValue":"openai"}},
 {"key":%q,"value":{"stringValue":"gpt-4o"}},{"key":%q,"value":{"intValue":"1000"}},{"key":%q,"value":{"intValue":"500"}}]}
]}]}]}`, now-2e9, now, sc.GenAIOperationName, sc.OpInvokeAgent, sc.GenAIAgentName,
		now-19e8, now-1e8, sc.GenAIOperationName, sc.OpChat, sc.GenAIProviderName, sc.GenAIRequestModel,
		sc.GenAIUsageInputTokens, sc.GenAIUsageOutputTokens)
	resp, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d/v1/traces", port), "application/json", bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("OTLP/HTTP status %d", resp.StatusCode)
	}
	wait := func(path string, want ...string) {
		t.Helper()
		for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
			data, _ := os.ReadFile(path)
			ok := true
			for _, w := range want {
				ok = ok && strings.Contains(string(data), w)
			}
			if ok {
				return
			}
		}
		data, _ := os.ReadFile(path)
		t.Fatalf("%s lacks %v:\n%.2000s", filepath.Base(path), want, data)
	}
	wait(tracesOut, `"`+sc.AgentwatchCostUSD+`"`, `"`+sc.GenAIInvokeAgentInferenceCallsAttr+`"`)
	wait(metricsOut, sc.MetricInvokeAgentDuration, sc.MetricInvokeAgentInferenceCalls, sc.MetricAgentCost,
		sc.MetricLLMCost, sc.MetricClientTokenUsage, `"support"`)
	col.Shutdown()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
