package agentwatchprocessor

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"

	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/processor/processortest"

	sc "github.com/agentwatch/agentwatch/collector/internal/semconv"
	"github.com/agentwatch/agentwatch/collector/internal/testutil"
)

type attrs map[string]any

func put(m pcommon.Map, a attrs) {
	for k, v := range a {
		switch x := v.(type) {
		case string:
			m.PutStr(k, x)
		case int:
			m.PutInt(k, int64(x))
		case int64:
			m.PutInt(k, x)
		case float64:
			m.PutDouble(k, x)
		case bool:
			m.PutBool(k, x)
		}
	}
}

// run sends one span per attribute set through a real processor and returns the spans it passed on.
func run(t *testing.T, cfg *Config, spans []attrs) ([]ptrace.Span, *testutil.Meter) {
	t.Helper()
	meter := testutil.NewMeter()
	set := processortest.NewNopSettings(typeStr)
	set.TelemetrySettings.MeterProvider = meter.Provider
	sink := new(consumertest.TracesSink)
	p, err := NewFactory().CreateTraces(context.Background(), set, cfg, sink)
	if err != nil {
		t.Fatal(err)
	}
	td := ptrace.NewTraces()
	ss := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty()
	for _, a := range spans {
		put(ss.Spans().AppendEmpty().Attributes(), a)
	}
	if err := p.ConsumeTraces(context.Background(), td); err != nil {
		t.Fatal(err)
	}
	var out []ptrace.Span
	for _, got := range sink.AllTraces() {
		s := got.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
		for i := 0; i < s.Len(); i++ {
			out = append(out, s.At(i))
		}
	}
	if len(out) != len(spans) {
		t.Fatalf("%d spans in, %d out", len(spans), len(out))
	}
	return out, meter
}

func chat(model string, in, out any) attrs {
	return attrs{sc.GenAIOperationName: sc.OpChat, sc.GenAIProviderName: "openai", sc.GenAIRequestModel: model,
		sc.GenAIUsageInputTokens: in, sc.GenAIUsageOutputTokens: out}
}

func with(a attrs, more attrs) attrs {
	out := attrs{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range more {
		if v == nil {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	return out
}

const (
	wantSkip = iota
	wantCost
	wantUnknown
)

func TestPricing(t *testing.T) {
	usage := [5]int64{12345, 678, 4000, 1000, 300}
	gpt4o, ok := testutil.PythonCost(t, "openai", "gpt-4o", usage)
	if !ok {
		t.Fatal("python prices gpt-4o")
	}
	plain := chat("gpt-4o", 12345, 678)
	cached := with(plain, attrs{sc.GenAIUsageCacheReadInputTokens: 4000, sc.GenAIUsageCacheWriteInputTokens: 1000,
		sc.GenAIUsageReasoningOutputTokens: 300})

	cases := []struct {
		name string
		in   attrs
		want int
		cost float64
	}{
		{"current names, cache and reasoning", cached, wantCost, gpt4o},
		{"legacy names (gen_ai.system, prompt/completion tokens, llm.request.type, old cache/reasoning names)", attrs{
			sc.LegacyLLMRequestType: "chat", sc.LegacyGenAISystem: "openai", sc.GenAIRequestModel: "gpt-4o",
			sc.LegacyUsagePromptTokens: 12345, sc.LegacyUsageCompletionTokens: 678, sc.LegacyUsageCacheReadTokens: 4000,
			sc.LegacyUsageCacheWriteTokens[1]: 1000, sc.LegacyUsageReasoningTokens[1]: 300}, wantCost, gpt4o},
		{"response model unpriced, request model priced", with(cached, attrs{sc.GenAIResponseModel: "gpt-4o-nonexistent-snapshot"}), wantCost, gpt4o},
		{"already priced: left alone", with(plain, attrs{sc.AgentwatchCostUSD: 0.5}), wantSkip, 0.5},
		{"already unknown: left alone", with(plain, attrs{sc.AgentwatchCostUnknown: true}), wantSkip, 0},
		{"unknown model", chat("no-such-model-anywhere", 10, 10), wantUnknown, 0},
		{"no model at all", with(plain, attrs{sc.GenAIRequestModel: nil}), wantUnknown, 0},
		{"empty model", with(plain, attrs{sc.GenAIRequestModel: ""}), wantUnknown, 0},
		{"cache larger than input", with(plain, attrs{sc.GenAIUsageCacheReadInputTokens: 20000}), wantUnknown, 0},
		{"reasoning larger than output", with(plain, attrs{sc.GenAIUsageReasoningOutputTokens: 700}), wantUnknown, 0},
		{"usage as strings", chat("gpt-4o", "12345", "678"), wantSkip, 0},
		{"negative usage", chat("gpt-4o", -1, 678), wantSkip, 0},
		{"usage as doubles", chat("gpt-4o", 12345.0, 678.0), wantSkip, 0},
		{"usage as bools", chat("gpt-4o", true, true), wantSkip, 0},
		{"no output count", with(plain, attrs{sc.GenAIUsageOutputTokens: nil}), wantSkip, 0},
		{"a tool span with usage is not an LLM call", with(plain, attrs{sc.GenAIOperationName: sc.OpExecuteTool}), wantSkip, 0},
		{"no operation", with(plain, attrs{sc.GenAIOperationName: nil}), wantSkip, 0},
		{"a malformed optional count counts as 0 (as in Python)", with(plain, attrs{sc.GenAIUsageCacheReadInputTokens: "x"}), wantCost, -1},
		{"model as an int", with(plain, attrs{sc.GenAIRequestModel: 4}), wantUnknown, 0},
	}
	var in []attrs
	for _, c := range cases {
		in = append(in, c.in)
	}
	out, meter := run(t, &Config{}, in)
	wantPriced, wantUnpriced := 0, 0
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := out[i].Attributes()
			cost, hasCost := a.Get(sc.AgentwatchCostUSD)
			unknown, hasUnknown := a.Get(sc.AgentwatchCostUnknown)
			switch c.want {
			case wantCost:
				if !hasCost || hasUnknown {
					t.Fatalf("want a cost, got %v", a.AsRaw())
				}
				if c.cost >= 0 && math.Float64bits(cost.Double()) != math.Float64bits(c.cost) {
					t.Fatalf("cost %v, Python %v", cost.Double(), c.cost)
				}
				if cost.Double() <= 0 {
					t.Fatalf("cost %v", cost.Double())
				}
			case wantUnknown:
				if hasCost || !hasUnknown || !unknown.Bool() {
					t.Fatalf("want cost_unknown=true and no cost, got %v", a.AsRaw())
				}
			case wantSkip:
				_, inHadCost := c.in[sc.AgentwatchCostUSD]
				_, inHadUnknown := c.in[sc.AgentwatchCostUnknown]
				if hasCost != inHadCost || hasUnknown != inHadUnknown {
					t.Fatalf("span changed: %v", a.AsRaw())
				}
				if hasCost && cost.Double() != c.cost {
					t.Fatalf("existing cost overwritten: %v", cost.Double())
				}
			}
		})
		switch c.want {
		case wantCost:
			wantPriced++
		case wantUnknown:
			wantUnpriced++
		}
	}
	if got := meter.Sum(t, sc.MetricCollectorPricedSpans); got != int64(wantPriced) {
		t.Errorf("priced counter %d, want %d", got, wantPriced)
	}
	if got := meter.Sum(t, sc.MetricCollectorUnpricedSpans); got != int64(wantUnpriced) {
		t.Errorf("unpriced counter %d, want %d", got, wantUnpriced)
	}
}

func TestHugeUsageIsPricedLikePython(t *testing.T) {
	u := [5]int64{1<<53 + 1, 1 << 40, 1 << 33, 1 << 32, 1 << 39}
	want, ok := testutil.PythonCost(t, "openai", "gpt-4o", u)
	if !ok {
		t.Fatal("python prices it")
	}
	out, _ := run(t, &Config{}, []attrs{with(chat("gpt-4o", int64(u[0]), int64(u[1])), attrs{
		sc.GenAIUsageCacheReadInputTokens: u[2], sc.GenAIUsageCacheWriteInputTokens: u[3],
		sc.GenAIUsageReasoningOutputTokens: u[4]})})
	got, _ := out[0].Attributes().Get(sc.AgentwatchCostUSD)
	if got.Double() != want {
		t.Fatalf("%v != python %v", got.Double(), want)
	}
	// the largest int64 counts: finite in float64, so a (huge) known cost, no overflow, no panic
	out, _ = run(t, &Config{}, []attrs{chat("gpt-4o", int64(math.MaxInt64), int64(math.MaxInt64))})
	if v, ok := out[0].Attributes().Get(sc.AgentwatchCostUSD); !ok || math.IsInf(v.Double(), 0) || v.Double() <= 0 {
		t.Fatalf("max int64 usage: %v", out[0].Attributes().AsRaw())
	}
	// cache read + cache write overflowing int64 must not pass the consistency check
	out, _ = run(t, &Config{}, []attrs{with(chat("gpt-4o", 10, 10), attrs{
		sc.GenAIUsageCacheReadInputTokens: int64(math.MaxInt64), sc.GenAIUsageCacheWriteInputTokens: int64(math.MaxInt64)})})
	if _, ok := out[0].Attributes().Get(sc.AgentwatchCostUnknown); !ok {
		t.Fatalf("overflowing cache parts: %v", out[0].Attributes().AsRaw())
	}
}

func TestPriceFileOverridesAndExtends(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "prices.yaml")
	if err := os.WriteFile(path, []byte(`models:
  - model: ft:gpt-4o-mini:acme::abc123
    provider: openai
    input: 0.30
    output: 1.20
    cache_read: 0.15
  - model_prefix: my-llama-
    input: 0
    output: 0
  - model: gpt-4o
    input: 1
    output: 2
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := &Config{PricesFile: path}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	out, _ := run(t, cfg, []attrs{
		with(chat("ft:gpt-4o-mini:acme::abc123", 1000, 100), attrs{sc.GenAIUsageCacheReadInputTokens: 400}),
		chat("my-llama-3-70b", 5000, 500),
		chat("gpt-4o", 1000000, 1000000),
	})
	want := []float64{
		float64(600)*(0.30/1e6) + float64(400)*(0.15/1e6) + float64(100)*(1.20/1e6),
		0,
		float64(1000000)*(1/1e6) + float64(1000000)*(2/1e6),
	}
	for i, w := range want {
		got, ok := out[i].Attributes().Get(sc.AgentwatchCostUSD)
		if !ok || math.Abs(got.Double()-w) > 1e-15 {
			t.Errorf("span %d: cost %v, want %v (%v)", i, got.Double(), w, out[i].Attributes().AsRaw())
		}
	}
}

func TestBadPriceFileIsAClearError(t *testing.T) {
	dir := t.TempDir()
	cases := map[string]string{
		"models: 3\n":                                                                                     "'models' must be a list",
		"models:\n  - model: x\n    input: 1\n":                                                           "missing required price 'output'",
		"models:\n  - model: x\n    input: -1\n    output: 1\n":                                           "must be a finite number >= 0",
		"models:\n  - model: x\n    input: 1e-6\n    output: 1\n":                                         "PyYAML reads 1e-6 as text",
		"models:\n  - model: x\n    input: one\n    output: 1\n":                                          "must be a number",
		"models:\n  - model: x\n    model_prefix: y\n    input: 1\n    output: 1\n":                       "exactly one of",
		"models:\n  - model: x\n    inptu: 1\n    output: 1\n":                                            "unknown key(s) 'inptu'",
		"models:\n  - model: X\n    input: 1\n    output: 1\n  - model: x\n    input: 2\n    output: 2\n": "duplicate of models[0]",
		"other: 1\n":  "exactly one key 'models'",
		"models: [\n": "not valid YAML",
	}
	for text, want := range cases {
		path := filepath.Join(dir, "p.yaml")
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		err := (&Config{PricesFile: path}).Validate()
		if err == nil || !contains(err.Error(), want) || !contains(err.Error(), path) {
			t.Errorf("%q: error %v, want one naming the file and %q", text, err, want)
		}
	}
	if err := (&Config{PricesFile: filepath.Join(dir, "missing.yaml")}).Validate(); err == nil {
		t.Error("a missing price file must fail validation")
	}
}

func contains(s, sub string) bool {
	return len(sub) == 0 || (len(s) >= len(sub) && indexOf(s, sub) >= 0)
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

func TestTenThousandSpanTrace(t *testing.T) {
	spans := make([]attrs, 10000)
	for i := range spans {
		switch i % 4 {
		case 0:
			spans[i] = chat("gpt-4o", 1000, 500)
		case 1:
			spans[i] = chat("gpt-4o", "x", -5)
		case 2:
			spans[i] = chat("no-such-model", 1, 1)
		default:
			spans[i] = attrs{sc.GenAIOperationName: sc.OpExecuteTool}
		}
	}
	want, _ := testutil.PythonCost(t, "openai", "gpt-4o", [5]int64{1000, 500, 0, 0, 0})
	out, meter := run(t, &Config{}, spans)
	for i, s := range out {
		c, ok := s.Attributes().Get(sc.AgentwatchCostUSD)
		if (i%4 == 0) != ok || (ok && c.Double() != want) {
			t.Fatalf("span %d: %v", i, s.Attributes().AsRaw())
		}
	}
	if meter.Sum(t, sc.MetricCollectorPricedSpans) != 2500 || meter.Sum(t, sc.MetricCollectorUnpricedSpans) != 2500 {
		t.Fatal("counters")
	}
}
