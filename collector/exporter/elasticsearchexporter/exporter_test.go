package elasticsearchexporter

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	sc "github.com/agentwatch/agentwatch/collector/internal/semconv"
)

// fakeES answers /_bulk like Elasticsearch: scripted HTTP statuses first, then per-item results.
type fakeES struct {
	mu       sync.Mutex
	statuses []int // answered (and consumed) before accepting
	reject   bool  // reject every document (item status 400)
	auth     []string
	docs     []map[string]any
	actions  []map[string]any
}

func (f *fakeES) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.auth = append(f.auth, r.Header.Get("Authorization"))
	if r.URL.Path != "/_bulk" || r.Header.Get("Content-Type") != "application/x-ndjson" {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	if len(f.statuses) > 0 {
		w.WriteHeader(f.statuses[0])
		f.statuses = f.statuses[1:]
		return
	}
	sc := bufio.NewScanner(r.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	var items []map[string]any
	for sc.Scan() {
		var action map[string]any
		_ = json.Unmarshal(sc.Bytes(), &action)
		sc.Scan()
		var doc map[string]any
		_ = json.Unmarshal(sc.Bytes(), &doc)
		f.actions = append(f.actions, action)
		status := 201
		if f.reject {
			status = 400
		} else {
			f.docs = append(f.docs, doc)
		}
		item := map[string]any{"status": status}
		if f.reject {
			item["error"] = map[string]any{"type": "mapper_parsing_exception"}
		}
		items = append(items, map[string]any{"create": item})
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": f.reject, "items": items})
}

func logs() plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr(sc.ServiceName, "support-agent")
	r := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	r.SetTimestamp(pcommon.NewTimestampFromTime(time.Date(2026, 12, 1, 12, 0, 0, 123456000, time.UTC)))
	r.Body().SetStr("invoke_agent support ok")
	r.SetSeverityText("info")
	r.SetTraceID([16]byte{0x5b, 0x8e, 1})
	r.SetSpanID([8]byte{0xee, 0xe1, 2})
	r.Attributes().PutStr(sc.GenAIAgentName, "support")
	r.Attributes().PutInt(sc.GenAIUsageInputTokens, 1200)
	r.Attributes().PutStr("data_stream.dataset", "agentwatch")
	return ld
}

func newExporter(t *testing.T, cfg *Config) func(plog.Logs) error {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	exp, err := NewFactory().CreateLogs(context.Background(), exportertest.NewNopSettings(typeStr), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := exp.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = exp.Shutdown(context.Background()) })
	return func(ld plog.Logs) error { return exp.ConsumeLogs(context.Background(), ld) }
}

func testConfig(endpoint string) *Config {
	cfg := createDefaultConfig().(*Config)
	cfg.Endpoint = endpoint
	cfg.LogsIndex = "logs-agentwatch-default"
	cfg.QueueSettings = configoptional.None[exporterhelper.QueueBatchConfig]() // synchronous, for the test
	cfg.BackOff.InitialInterval = 10 * time.Millisecond
	cfg.BackOff.MaxInterval = 20 * time.Millisecond
	cfg.BackOff.MaxElapsedTime = 5 * time.Second
	return cfg
}

func TestECSDocumentsIntoTheDataStream(t *testing.T) {
	es := &fakeES{}
	srv := httptest.NewServer(es)
	defer srv.Close()
	cfg := testConfig(srv.URL)
	cfg.APIKey = "aWQ6a2V5"
	send := newExporter(t, cfg)
	if err := send(logs()); err != nil {
		t.Fatal(err)
	}
	if len(es.docs) != 1 {
		t.Fatalf("%d documents", len(es.docs))
	}
	want := map[string]any{
		sc.ECSTimestamp: "2026-12-01T12:00:00.123456Z", sc.ECSMessage: "invoke_agent support ok", sc.ECSLogLevel: "info",
		sc.ECSTraceID: "5b8e0100000000000000000000000000", sc.ECSSpanID: "eee1020000000000",
		sc.ServiceName: "support-agent", sc.GenAIAgentName: "support", sc.GenAIUsageInputTokens: 1200.0,
		"data_stream.dataset": "agentwatch",
	}
	for k, v := range want {
		if es.docs[0][k] != v {
			t.Errorf("%s = %v, want %v (doc %v)", k, es.docs[0][k], v, es.docs[0])
		}
	}
	if got := es.actions[0]["create"].(map[string]any)["_index"]; got != "logs-agentwatch-default" {
		t.Errorf("index %v", got)
	}
	if es.auth[0] != "ApiKey aWQ6a2V5" {
		t.Errorf("auth %q", es.auth[0])
	}
}

func TestRetriesThrottlingAndBasicAuth(t *testing.T) {
	es := &fakeES{statuses: []int{429, 503}}
	srv := httptest.NewServer(es)
	defer srv.Close()
	cfg := testConfig(srv.URL)
	cfg.User, cfg.Password = "elastic", "s3cret"
	if err := newExporter(t, cfg)(logs()); err != nil {
		t.Fatal(err)
	}
	if len(es.docs) != 1 || len(es.auth) != 3 {
		t.Fatalf("%d docs after %d requests", len(es.docs), len(es.auth))
	}
	if es.auth[2] != "Basic ZWxhc3RpYzpzM2NyZXQ=" {
		t.Errorf("auth %q", es.auth[2])
	}
}

func TestRejectedDocumentsAreAPermanentError(t *testing.T) {
	es := &fakeES{reject: true}
	srv := httptest.NewServer(es)
	defer srv.Close()
	err := newExporter(t, testConfig(srv.URL))(logs())
	if err == nil || !strings.Contains(err.Error(), "rejected 1 of 1") {
		t.Fatalf("error %v", err)
	}
	if len(es.auth) != 1 {
		t.Errorf("a rejected document must not be retried: %d requests", len(es.auth))
	}
	es2 := &fakeES{statuses: []int{400}}
	srv2 := httptest.NewServer(es2)
	defer srv2.Close()
	if err := newExporter(t, testConfig(srv2.URL))(logs()); err == nil || len(es2.auth) != 1 {
		t.Fatalf("HTTP 400: error %v after %d requests", err, len(es2.auth))
	}
}

// The shipped configs' elasticsearch section decodes, with the env defaults that leave credentials empty.
func TestShippedConfigKeys(t *testing.T) {
	conf := confmap.NewFromStringMap(map[string]any{
		"endpoint": "http://elasticsearch:9200", "mapping": map[string]any{"mode": "ecs"},
		"logs_index": "logs-agentwatch-default", "api_key": "", "tls": map[string]any{"ca_file": ""},
		"user": "", "password": "",
	})
	cfg := createDefaultConfig().(*Config)
	if err := conf.Unmarshal(cfg); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := confmap.NewFromStringMap(map[string]any{"endpoint": "http://x:9200", "logs_index": "l", "traces_index": "t"})
	if err := bad.Unmarshal(createDefaultConfig()); err == nil {
		t.Error("a contrib setting this exporter does not implement must be rejected")
	}
	for _, c := range []*Config{
		{Endpoint: "elasticsearch:9200", LogsIndex: "l", Mapping: MappingConfig{"ecs"}, Timeout: time.Second},
		{Endpoint: "http://x:9200", LogsIndex: "l", Mapping: MappingConfig{"otel"}, Timeout: time.Second},
		{Endpoint: "http://x:9200", Mapping: MappingConfig{"ecs"}, Timeout: time.Second},
		{Endpoint: "http://x:9200", LogsIndex: "l", Mapping: MappingConfig{"ecs"}, APIKey: "k", User: "u", Timeout: time.Second},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v validated", c)
		}
	}
}
