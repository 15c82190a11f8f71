package agentwatchconnector

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/connector/connectortest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/agentwatch/agentwatch/collector/internal/prices"
	sc "github.com/agentwatch/agentwatch/collector/internal/semconv"
	"github.com/agentwatch/agentwatch/collector/internal/testutil"
)

// --- building traces -----------------------------------------------------------------------------------
type sp struct {
	id, parent int // 0: no parent
	attrs      map[string]any
	start, end float64 // seconds
	errStatus  bool
	name       string
}

func run(id, parent int, agent string, start, end float64) sp {
	return sp{id: id, parent: parent, start: start, end: end, name: "invoke_agent " + agent,
		attrs: map[string]any{sc.GenAIOperationName: sc.OpInvokeAgent, sc.GenAIAgentName: agent}}
}

func chat(id, parent int, model string, in, out int, start, end float64) sp {
	return sp{id: id, parent: parent, start: start, end: end, name: "chat " + model, attrs: map[string]any{
		sc.GenAIOperationName: sc.OpChat, sc.GenAIProviderName: "openai", sc.GenAIRequestModel: model,
		sc.GenAIUsageInputTokens: in, sc.GenAIUsageOutputTokens: out}}
}

func tool(id, parent int, name string, failed bool, start, end float64) sp {
	s := sp{id: id, parent: parent, start: start, end: end, name: "execute_tool " + name, attrs: map[string]any{
		sc.GenAIOperationName: sc.OpExecuteTool, sc.GenAIToolName: name}}
	if failed {
		s.attrs[sc.ErrorType] = "TimeoutError"
	}
	return s
}

func (s sp) with(k string, v any) sp {
	a := map[string]any{}
	for kk, vv := range s.attrs {
		a[kk] = vv
	}
	if v == nil {
		delete(a, k)
	} else {
		a[k] = v
	}
	s.attrs = a
	return s
}

var epoch = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func ts(sec float64) pcommon.Timestamp {
	return pcommon.NewTimestampFromTime(epoch.Add(time.Duration(sec * float64(time.Second))))
}

func spanID(trace, id int) pcommon.SpanID {
	var b [8]byte
	b[0], b[1], b[6], b[7] = byte(trace>>8), byte(trace), byte(id>>8), byte(id)
	b[3] = 1
	return b
}

// traces builds one batch: one trace per element of `runs`, all under one resource.
func traces(service string, inProcess bool, traceNo int, spans ...sp) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr(sc.ServiceName, service)
	if inProcess {
		rs.Resource().Attributes().PutBool(sc.AgentwatchResourceMetricsInProcess, true)
	}
	ss := rs.ScopeSpans().AppendEmpty()
	var tid [16]byte
	tid[0], tid[1], tid[2], tid[3], tid[15] = byte(traceNo>>24), byte(traceNo>>16), byte(traceNo>>8), byte(traceNo), 1
	for _, s := range spans {
		span := ss.Spans().AppendEmpty()
		span.SetTraceID(tid)
		span.SetSpanID(spanID(traceNo, s.id))
		if s.parent != 0 {
			span.SetParentSpanID(spanID(traceNo, s.parent))
		}
		span.SetName(s.name)
		span.SetStartTimestamp(ts(s.start))
		span.SetEndTimestamp(ts(s.end))
		if s.errStatus {
			span.Status().SetCode(ptrace.StatusCodeError)
		}
		for k, v := range s.attrs {
			switch x := v.(type) {
			case string:
				span.Attributes().PutStr(k, x)
			case int:
				span.Attributes().PutInt(k, int64(x))
			case int64:
				span.Attributes().PutInt(k, x)
			case float64:
				span.Attributes().PutDouble(k, x)
			case bool:
				span.Attributes().PutBool(k, x)
			}
		}
	}
	return td
}

// --- running the connector with a fake clock ---------------------------------------------------------
type harness struct {
	t     *testing.T
	c     *agentwatchConnector
	sink  *consumertest.MetricsSink
	now   time.Time
	meter *testutil.Meter
}

func newHarness(t *testing.T, mod func(*Config)) *harness {
	t.Helper()
	cfg := createDefaultConfig().(*Config)
	cfg.DecisionWait = time.Second
	if mod != nil {
		mod(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, sink: new(consumertest.MetricsSink), now: epoch, meter: testutil.NewMeter()}
	set := connectortest.NewNopSettings(typeStr)
	set.TelemetrySettings.MeterProvider = h.meter.Provider
	conn, err := NewFactory().CreateTracesToMetrics(context.Background(), set, cfg, h.sink)
	if err != nil {
		t.Fatal(err)
	}
	h.c = conn.(*agentwatchConnector)
	h.c.clock = func() time.Time { return h.now }
	return h
}

func (h *harness) send(td ptrace.Traces) {
	h.t.Helper()
	if err := h.c.ConsumeTraces(context.Background(), td); err != nil {
		h.t.Fatal(err)
	}
}

// decide lets decision_wait pass, evaluates and flushes; it returns the latest cumulative metrics.
func (h *harness) decide() metrics {
	h.t.Helper()
	h.now = h.now.Add(h.c.cfg.DecisionWait + time.Millisecond)
	h.c.decideIdle()
	if err := h.c.flush(context.Background()); err != nil {
		h.t.Fatal(err)
	}
	all := h.sink.AllMetrics()
	if len(all) == 0 {
		return metrics{}
	}
	return collect(all[len(all)-1])
}

// metrics: metric name -> series (attributes rendered "k=v,k=v" sorted, resource service first)
type series struct {
	count  uint64
	sum    float64
	bounds []float64
	counts []uint64
	value  float64
}

type metrics map[string]map[string]*series

func collect(md pmetric.Metrics) metrics {
	out := metrics{}
	for i := 0; i < md.ResourceMetrics().Len(); i++ {
		rm := md.ResourceMetrics().At(i)
		svc, _ := rm.Resource().Attributes().Get(sc.ServiceName)
		for j := 0; j < rm.ScopeMetrics().Len(); j++ {
			sm := rm.ScopeMetrics().At(j)
			for k := 0; k < sm.Metrics().Len(); k++ {
				m := sm.Metrics().At(k)
				if out[m.Name()] == nil {
					out[m.Name()] = map[string]*series{}
				}
				switch m.Type() {
				case pmetric.MetricTypeHistogram:
					for p := 0; p < m.Histogram().DataPoints().Len(); p++ {
						dp := m.Histogram().DataPoints().At(p)
						out[m.Name()][key(svc.AsString(), dp.Attributes())] = &series{count: dp.Count(), sum: dp.Sum(),
							bounds: dp.ExplicitBounds().AsRaw(), counts: dp.BucketCounts().AsRaw()}
					}
				case pmetric.MetricTypeSum:
					for p := 0; p < m.Sum().DataPoints().Len(); p++ {
						dp := m.Sum().DataPoints().At(p)
						v := dp.DoubleValue()
						if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
							v = float64(dp.IntValue())
						}
						out[m.Name()][key(svc.AsString(), dp.Attributes())] = &series{value: v}
					}
				}
			}
		}
	}
	return out
}

func key(svc string, attrs pcommon.Map) string {
	var parts []string
	attrs.Range(func(k string, v pcommon.Value) bool {
		parts = append(parts, k+"="+v.AsString())
		return true
	})
	sort.Strings(parts)
	return svc + "|" + strings.Join(parts, ",")
}

func (m metrics) get(t *testing.T, name, svc string, kv ...string) *series {
	t.Helper()
	var parts []string
	for i := 0; i+1 < len(kv); i += 2 {
		parts = append(parts, kv[i]+"="+kv[i+1])
	}
	sort.Strings(parts)
	k := svc + "|" + strings.Join(parts, ",")
	s := m[name][k]
	if s == nil {
		var have []string
		for hk := range m[name] {
			have = append(have, hk)
		}
		t.Fatalf("no series %s{%s}; have %v", name, k, have)
	}
	return s
}

func (m metrics) total(name string) (count uint64, sum float64) {
	for _, s := range m[name] {
		count += s.count
		sum += s.sum + s.value
	}
	return count, sum
}

// pythonCost is the Python-computed cost of a parity usage (testdata/parity_gen.json).
func pythonCost(t *testing.T, model string, in, out int64) float64 {
	t.Helper()
	c, ok := testutil.PythonCost(t, "openai", model, [5]int64{in, out, 0, 0, 0})
	if !ok {
		t.Fatalf("python does not price %s", model)
	}
	return c
}

// goCost is the price book's cost (its parity with Python is proven in internal/prices).
func goCost(t *testing.T, model string, in, out int64) float64 {
	t.Helper()
	book, err := prices.NewDefault("")
	if err != nil {
		t.Fatal(err)
	}
	c, ok := book.Cost("openai", model, prices.Usage{Input: in, Output: out}, time.Now())
	if !ok {
		t.Fatalf("no price for %s", model)
	}
	return c
}

const agentAttr = sc.GenAIAgentName

// --- tests -----------------------------------------------------------------------------------------------

// A semconv-only agent in another language: one run, three priced calls, two tools (one failing).
func TestOneRunOfAnAgentInAnotherLanguage(t *testing.T) {
	h := newHarness(t, nil)
	// children end (and are exported) before their run; two batches, child batch first
	h.send(traces("ts-agent", false, 1,
		chat(2, 1, "gpt-4o", 1000, 500, 0.1, 1.1),
		tool(3, 1, "search", false, 1.2, 1.5),
		chat(4, 1, "gpt-4o", 1000, 500, 1.6, 2.6),
		tool(5, 1, "fetch", true, 2.7, 2.9),
	))
	h.send(traces("ts-agent", false, 1,
		chat(6, 1, "gpt-4o", 1000, 500, 3.0, 4.0),
		run(1, 0, "support", 0, 4.5),
	))
	m := h.decide()
	perCall := pythonCost(t, "gpt-4o", 1000, 500)
	wantRunCost := perCall + perCall + perCall // Python adds the calls' costs as they end

	if s := m.get(t, sc.MetricInvokeAgentDuration, "ts-agent", agentAttr, "support"); s.count != 1 || math.Abs(s.sum-4.5) > 1e-9 {
		t.Errorf("run duration %+v", s)
	}
	if s := m.get(t, sc.MetricInvokeAgentInferenceCalls, "ts-agent", agentAttr, "support"); s.sum != 3 || s.count != 1 {
		t.Errorf("inference calls %+v", s)
	}
	if s := m.get(t, sc.MetricInvokeAgentToolCalls, "ts-agent", agentAttr, "support"); s.sum != 2 {
		t.Errorf("tool calls %+v", s)
	}
	if s := m.get(t, sc.MetricAgentCost, "ts-agent", agentAttr, "support"); s.sum != wantRunCost {
		t.Errorf("run cost %v, want %v", s.sum, wantRunCost)
	}
	if s := m.get(t, sc.MetricAgentTokenUsage, "ts-agent", agentAttr, "support"); s.sum != 4500 {
		t.Errorf("run tokens %v", s.sum)
	}
	if s := m.get(t, sc.MetricExecuteToolDuration, "ts-agent", agentAttr, "support", sc.GenAIToolName, "fetch", sc.ErrorType, "TimeoutError"); s.count != 1 {
		t.Errorf("failing tool %+v", s)
	}
	if s := m.get(t, sc.MetricExecuteToolDuration, "ts-agent", agentAttr, "support", sc.GenAIToolName, "search"); math.Abs(s.sum-0.3) > 1e-9 {
		t.Errorf("tool duration %+v", s)
	}
	call := []string{sc.GenAIOperationName, sc.OpChat, sc.GenAIProviderName, "openai", sc.GenAIRequestModel, "gpt-4o"}
	if s := m.get(t, sc.MetricClientOperationDuration, "ts-agent", call...); s.count != 3 || math.Abs(s.sum-3) > 1e-9 {
		t.Errorf("call durations %+v", s)
	}
	if s := m.get(t, sc.MetricClientTokenUsage, "ts-agent", append(call, sc.GenAITokenType, sc.TokenTypeInput)...); s.sum != 3000 || s.count != 3 {
		t.Errorf("input tokens %+v", s)
	}
	if s := m.get(t, sc.MetricClientTokenUsage, "ts-agent", append(call, sc.GenAITokenType, sc.TokenTypeOutput)...); s.sum != 1500 {
		t.Errorf("output tokens %+v", s)
	}
	price := []string{sc.GenAIProviderName, "openai", sc.GenAIRequestModel, "gpt-4o", sc.GenAIResponseModel, "gpt-4o"}
	if s := m.get(t, sc.MetricLLMCost, "ts-agent", price...); s.value != wantRunCost {
		t.Errorf("llm cost %v, want %v", s.value, wantRunCost)
	}
	if len(m[sc.MetricPricingUnpricedCalls]) != 0 {
		t.Errorf("unpriced calls: %v", m[sc.MetricPricingUnpricedCalls])
	}
}

// The histograms carry the generated boundaries, with every threshold value as a boundary.
func TestBucketsHaveTheThresholdsAsBoundaries(t *testing.T) {
	h := newHarness(t, nil)
	h.send(traces("a", false, 1, chat(2, 1, "gpt-4o", 60000, 1, 0, 61), run(1, 0, "slow", 0, 60)))
	m := h.decide()
	cases := []struct {
		metric    string
		threshold float64
		value     float64 // the run's value: it must land in the bucket whose upper bound is the threshold
	}{
		{sc.MetricInvokeAgentDuration, sc.ThresholdP99Latency, 60},
		{sc.MetricAgentTokenUsage, sc.ThresholdTokensPerRun, 60001},
		{sc.MetricInvokeAgentInferenceCalls, sc.ThresholdStepsPerRun, 1},
	}
	for _, c := range cases {
		s := m.get(t, c.metric, "a", agentAttr, "slow")
		i := sort.SearchFloat64s(s.bounds, c.threshold)
		if i == len(s.bounds) || s.bounds[i] != c.threshold {
			t.Errorf("%s: %v is not a boundary of %v", c.metric, c.threshold, s.bounds)
			continue
		}
		j := sort.SearchFloat64s(s.bounds, c.value)
		if s.counts[j] != 1 {
			t.Errorf("%s: value %v not in bucket %d (%v)", c.metric, c.value, j, s.counts)
		}
	}
	if s := m.get(t, sc.MetricInvokeAgentDuration, "a", agentAttr, "slow"); s.counts[sort.SearchFloat64s(s.bounds, 60)] != 1 {
		t.Error("a 60 s run must be counted at or below the 60 s boundary (le=60)")
	}
}

// Nested runs count for their parents; a nested LLM-call span counts once; one tool seen twice nested
// counts once.
func TestNestingAsThePythonProcessorCounts(t *testing.T) {
	h := newHarness(t, nil)
	h.send(traces("a", false, 1,
		run(1, 0, "planner", 0, 10),
		chat(2, 1, "gpt-4o", 100, 10, 0, 1),
		run(3, 1, "researcher", 1, 9),
		chat(4, 3, "gpt-4o", 200, 20, 1, 2),
		// an SDK's own span inside the instrumentation's: counted once, the inner one's cost is used
		chat(5, 3, "gpt-4o", 300, 30, 2, 3).with(sc.GenAIUsageInputTokens, 300),
		chat(6, 5, "gpt-4o", 300, 30, 2.1, 2.9).with(sc.AgentwatchCostUSD, 0.25),
		// MCP client span and server span of one call: one tool call
		tool(7, 3, "search", false, 3, 4),
		tool(8, 7, "search", false, 3.1, 3.9),
		// a different tool inside a tool: two calls
		tool(9, 3, "browse", false, 4, 5),
		tool(10, 9, "fetch", false, 4.1, 4.9),
	))
	m := h.decide()
	if s := m.get(t, sc.MetricInvokeAgentInferenceCalls, "a", agentAttr, "researcher"); s.sum != 2 {
		t.Errorf("researcher inference calls %v, want 2 (nested chat counted once)", s.sum)
	}
	if s := m.get(t, sc.MetricInvokeAgentInferenceCalls, "a", agentAttr, "planner"); s.sum != 3 {
		t.Errorf("planner inference calls %v, want 3 (its own + the sub-agent's)", s.sum)
	}
	if s := m.get(t, sc.MetricInvokeAgentToolCalls, "a", agentAttr, "researcher"); s.sum != 3 {
		t.Errorf("researcher tool calls %v, want 3 (search once, browse, fetch)", s.sum)
	}
	if s := m.get(t, sc.MetricInvokeAgentToolCalls, "a", agentAttr, "planner"); s.sum != 3 {
		t.Errorf("planner tool calls %v, want 3", s.sum)
	}
	c2, c4 := goCost(t, "gpt-4o", 100, 10), goCost(t, "gpt-4o", 200, 20)
	wantResearcher := c4 + 0.25
	if s := m.get(t, sc.MetricAgentCost, "a", agentAttr, "researcher"); s.sum != wantResearcher {
		t.Errorf("researcher cost %v, want %v", s.sum, wantResearcher)
	}
	if s := m.get(t, sc.MetricAgentCost, "a", agentAttr, "planner"); s.sum != c2+c4+0.25 {
		t.Errorf("planner cost %v, want %v", s.sum, c2+c4+0.25)
	}
	if s := m.get(t, sc.MetricAgentTokenUsage, "a", agentAttr, "planner"); s.sum != 110+220+330 {
		t.Errorf("planner tokens %v", s.sum)
	}
	if n, _ := m.total(sc.MetricClientOperationDuration); n != 3 {
		t.Errorf("%d call duration points, want 3 (the nested span makes none)", n)
	}
	if n, _ := m.total(sc.MetricExecuteToolDuration); n != 3 {
		t.Errorf("%d tool duration points, want 3", n)
	}
}

// The marker: a Python agentwatch process already emitted its metrics; nothing is counted twice.
func TestInProcessMarkerCountsOnce(t *testing.T) {
	h := newHarness(t, nil)
	h.send(traces("py-agent", true, 1,
		run(1, 0, "py", 0, 3),
		chat(2, 1, "gpt-4o", 100, 10, 0, 1).with(sc.AgentwatchCostUSD, 0.01),
		tool(3, 1, "search", false, 1, 2),
	))
	m := h.decide()
	if len(m) != 0 {
		t.Fatalf("metrics from an in-process resource: %v", m)
	}
	// a Go run calling a Python sub-agent in another process: the sub-agent's call counts for the Go run,
	// but makes no per-call point here (the Python process emitted it)
	h.send(traces("go-agent", false, 2, run(1, 0, "go", 0, 5)))
	h.send(traces("py-agent", true, 2,
		run(2, 1, "py", 1, 4),
		chat(3, 2, "gpt-4o", 100, 10, 1, 2).with(sc.AgentwatchCostUSD, 0.01),
	))
	m = h.decide()
	if s := m.get(t, sc.MetricInvokeAgentInferenceCalls, "go-agent", agentAttr, "go"); s.sum != 1 {
		t.Errorf("go run inference calls %v", s.sum)
	}
	if s := m.get(t, sc.MetricAgentCost, "go-agent", agentAttr, "go"); s.sum != 0.01 {
		t.Errorf("go run cost %v", s.sum)
	}
	if len(m[sc.MetricClientOperationDuration]) != 0 || len(m[sc.MetricLLMCost]) != 0 {
		t.Errorf("per-call points for an in-process call: %v %v", m[sc.MetricClientOperationDuration], m[sc.MetricLLMCost])
	}
	if _, ok := m[sc.MetricInvokeAgentDuration]["py-agent|"+agentAttr+"=py"]; ok {
		t.Error("run metrics for the in-process sub-agent")
	}
}

// Outcomes: error.type, or _OTHER for an ERROR status without one.
func TestRunOutcome(t *testing.T) {
	h := newHarness(t, nil)
	failedStatus := run(1, 0, "a", 0, 1)
	failedStatus.errStatus = true
	h.send(traces("s", false, 1, failedStatus))
	h.send(traces("s", false, 2, run(1, 0, "a", 0, 1).with(sc.ErrorType, "budget_exceeded")))
	h.send(traces("s", false, 3, run(1, 0, "a", 0, 1)))
	m := h.decide()
	m.get(t, sc.MetricInvokeAgentDuration, "s", agentAttr, "a", sc.ErrorType, sc.ErrorOther)
	m.get(t, sc.MetricInvokeAgentDuration, "s", agentAttr, "a", sc.ErrorType, sc.ErrorBudgetExceeded)
	if s := m.get(t, sc.MetricInvokeAgentDuration, "s", agentAttr, "a"); s.count != 1 {
		t.Errorf("successful runs %d", s.count)
	}
	if s := m.get(t, sc.MetricInvokeAgentInferenceCalls, "s", agentAttr, "a"); s.count != 3 {
		t.Errorf("inference-calls points carry no outcome: %d", s.count)
	}
}

// Malformed usage, no model, unknown model: no crash, no wrong cost.
func TestBadInput(t *testing.T) {
	h := newHarness(t, nil)
	h.send(traces("s", false, 1,
		run(1, 0, "bad-usage", 0, 9),
		chat(2, 1, "gpt-4o", 100, 10, 0, 1).with(sc.GenAIUsageInputTokens, "100"),
		chat(3, 1, "gpt-4o", 100, 10, 1, 2),
	))
	h.send(traces("s", false, 2,
		run(1, 0, "no-model", 0, 9),
		chat(2, 1, "gpt-4o", 100, 10, 0, 1).with(sc.GenAIRequestModel, nil),
	))
	h.send(traces("s", false, 3,
		run(1, 0, "negative", 0, 9),
		chat(2, 1, "gpt-4o", -100, 10, 0, 1),
	))
	h.send(traces("s", false, 4,
		run(1, 0, "huge", 0, 9),
		chat(2, 1, "gpt-4o", math.MaxInt64, math.MaxInt64, 0, 1),
		chat(3, 1, "gpt-4o", math.MaxInt64, math.MaxInt64, 1, 2),
	))
	h.send(traces("s", false, 5,
		run(1, 0, "string-cost", 0, 9),
		chat(2, 1, "gpt-4o", 100, 10, 0, 1).with(sc.AgentwatchCostUSD, "0.5"),
	))
	m := h.decide()
	for _, agent := range []string{"bad-usage", "no-model", "negative", "string-cost"} {
		if _, ok := m[sc.MetricAgentCost]["s|"+agentAttr+"="+agent]; ok {
			t.Errorf("%s: a run with an unknown cost must record no run cost", agent)
		}
	}
	if s := m.get(t, sc.MetricInvokeAgentInferenceCalls, "s", agentAttr, "bad-usage"); s.sum != 2 {
		t.Errorf("calls with bad usage still count as steps: %v", s.sum)
	}
	if _, ok := m[sc.MetricAgentTokenUsage]["s|"+agentAttr+"=bad-usage"]; ok {
		t.Error("tokens of a run with a call without usage are unknown")
	}
	if s := m.get(t, sc.MetricPricingUnpricedCalls, "s", sc.GenAIProviderName, "openai", sc.GenAIRequestModel, "unknown", sc.GenAIResponseModel, "unknown"); s.value != 1 {
		t.Errorf("a call without a model is an unpriced call: %v", s.value)
	}
	if s := m.get(t, sc.MetricAgentTokenUsage, "s", agentAttr, "huge"); s.sum != math.MaxInt64 {
		t.Errorf("huge token totals saturate instead of wrapping: %v", s.sum)
	}
	if s := m.get(t, sc.MetricAgentCost, "s", agentAttr, "huge"); s.sum <= 0 || math.IsInf(s.sum, 0) {
		t.Errorf("huge run cost %v", s.sum)
	}
}

// Parent-link cycles, duplicated spans, 10 000-span traces and a 10 000-deep chain.
func TestHostileTraceShapes(t *testing.T) {
	h := newHarness(t, nil)
	cycle := []sp{chat(1, 2, "gpt-4o", 1, 1, 0, 1), chat(2, 1, "gpt-4o", 1, 1, 0, 1)}
	h.send(traces("s", false, 1, cycle...))
	dup := []sp{run(1, 0, "dup", 0, 5), chat(2, 1, "gpt-4o", 10, 10, 0, 1)}
	h.send(traces("s", false, 2, dup...))
	h.send(traces("s", false, 2, dup[1])) // delivered twice
	wide := []sp{run(1, 0, "wide", 0, 100)}
	for i := 2; i <= 10000; i++ {
		wide = append(wide, chat(i, 1, "gpt-4o", 10, 10, float64(i)/1000, float64(i)/1000+0.001))
	}
	h.send(traces("s", false, 3, wide...))
	deep := []sp{run(1, 0, "deep", 0, 100)}
	for i := 2; i <= 10000; i++ {
		deep = append(deep, tool(i, i-1, fmt.Sprintf("t%d", i%2), false, 0, 1))
	}
	h.send(traces("s", false, 4, deep...))
	m := h.decide()
	if s := m.get(t, sc.MetricInvokeAgentInferenceCalls, "s", agentAttr, "dup"); s.sum != 1 {
		t.Errorf("a span delivered twice counted %v times", s.sum)
	}
	if s := m.get(t, sc.MetricInvokeAgentInferenceCalls, "s", agentAttr, "wide"); s.sum != 9999 {
		t.Errorf("wide run: %v calls", s.sum)
	}
	if s := m.get(t, sc.MetricInvokeAgentToolCalls, "s", agentAttr, "deep"); s.sum != 9999 {
		t.Errorf("deep run: %v tool calls", s.sum)
	}
	if h.c.spans != 0 || len(h.c.traces) != 0 {
		t.Errorf("buffer not empty after the decision: %d spans, %d traces", h.c.spans, len(h.c.traces))
	}
}

// The buffer is bounded: the oldest trace is evicted and counted; it gives no run metrics, but its calls
// are still counted (once).
func TestEvictionIsBoundedAndCounted(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxTraces = 2; c.MaxSpans = 100 })
	for i := 1; i <= 3; i++ {
		h.send(traces("s", false, i, run(1, 0, "r", 0, 1), chat(2, 1, "gpt-4o", 10, 10, 0, 1)))
		h.now = h.now.Add(time.Millisecond)
	}
	if got := h.meter.Sum(t, sc.MetricCollectorEvictedTraces); got != 1 {
		t.Errorf("evicted %d, want 1", got)
	}
	big := []sp{run(1, 0, "big", 0, 1)}
	for i := 2; i <= 150; i++ {
		big = append(big, chat(i, 1, "gpt-4o", 1, 1, 0, 1))
	}
	h.send(traces("s", false, 9, big...))
	if h.c.spans > 100 {
		t.Errorf("%d spans buffered, max_spans is 100", h.c.spans)
	}
	if got := h.meter.Sum(t, sc.MetricCollectorEvictedTraces); got != 4 {
		t.Errorf("evicted %d, want 4 (a 150-span trace over max_spans 100 pushes everything out)", got)
	}
	m := h.decide()
	if _, ok := m[sc.MetricInvokeAgentInferenceCalls]["s|"+agentAttr+"=r"]; ok {
		t.Error("run metrics of evicted traces")
	}
	if n, _ := m.total(sc.MetricClientOperationDuration); n != 3+149 {
		t.Errorf("%d call points, want every call once (152)", n)
	}
	if _, ok := m[sc.MetricInvokeAgentDuration]["s|"+agentAttr+"=big"]; ok {
		t.Error("an evicted run must not make run metrics")
	}
}

// Late spans after the decision are counted once, as calls outside the (already decided) run.
func TestLateSpans(t *testing.T) {
	h := newHarness(t, nil)
	h.send(traces("s", false, 1, run(1, 0, "r", 0, 5), chat(2, 1, "gpt-4o", 10, 10, 0, 1)))
	h.decide()
	h.send(traces("s", false, 1, chat(3, 1, "gpt-4o", 10, 10, 1, 2)))
	m := h.decide()
	if n, _ := m.total(sc.MetricClientOperationDuration); n != 2 {
		t.Errorf("%d call points, want 2", n)
	}
	if s := m.get(t, sc.MetricInvokeAgentInferenceCalls, "s", agentAttr, "r"); s.count != 1 || s.sum != 1 {
		t.Errorf("the run was counted again: %+v", s)
	}
}

// Label values are bounded, as in Python: past the limit they become _OTHER.
func TestLabelLimit(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.LabelLimit = 2 })
	for i := 1; i <= 4; i++ {
		h.send(traces("s", false, i, run(1, 0, fmt.Sprintf("agent-%d", i), 0, 1)))
	}
	m := h.decide()
	if s := m.get(t, sc.MetricInvokeAgentDuration, "s", agentAttr, sc.ErrorOther); s.count != 2 {
		t.Errorf("overflow agents %d", s.count)
	}
	if len(m[sc.MetricInvokeAgentDuration]) != 3 {
		t.Errorf("series %v", m[sc.MetricInvokeAgentDuration])
	}
}

// client_metrics: false keeps cost and run metrics but leaves gen_ai.client.* to the agents' SDKs.
func TestClientMetricsOff(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.ClientMetrics = false })
	h.send(traces("s", false, 1, run(1, 0, "r", 0, 5), chat(2, 1, "gpt-4o", 10, 10, 0, 1)))
	m := h.decide()
	if len(m[sc.MetricClientOperationDuration]) != 0 || len(m[sc.MetricClientTokenUsage]) != 0 {
		t.Error("client metrics emitted")
	}
	if len(m[sc.MetricLLMCost]) != 1 || len(m[sc.MetricAgentCost]) != 1 {
		t.Error("cost metrics missing")
	}
}

// The real component lifecycle: Start, traces in, Shutdown decides what is buffered and flushes.
func TestLifecycle(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.DecisionWait = time.Hour; c.MetricsFlushInterval = time.Hour })
	h.c.clock = time.Now
	if err := h.c.Start(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	h.send(traces("s", false, 1, run(1, 0, "r", 0, 5), chat(2, 1, "gpt-4o", 10, 10, 0, 1)))
	if err := h.c.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(h.sink.AllMetrics()) != 1 {
		t.Fatalf("%d metric batches at shutdown", len(h.sink.AllMetrics()))
	}
	m := collect(h.sink.AllMetrics()[0])
	m.get(t, sc.MetricInvokeAgentDuration, "s", agentAttr, "r")
}

func TestConfigValidation(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	cfg.DecisionWait, cfg.MaxSpans, cfg.PricesFile = 0, 0, "/nonexistent/prices.yaml"
	err := cfg.Validate()
	for _, want := range []string{"decision_wait", "max_spans", "/nonexistent/prices.yaml"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}

// The traces -> traces route: spans pass on once decided, each run's totals on its invoke_agent span
// (as the Python processor writes them), so a tail sampler downstream sees a run's cost.
func TestTracesRouteWritesRunTotals(t *testing.T) {
	cfg := createDefaultConfig().(*Config)
	cfg.DecisionWait = time.Second
	cfg.MaxTraces = 3
	sink := new(consumertest.TracesSink)
	conn, err := NewFactory().CreateTracesToTraces(context.Background(), connectortest.NewNopSettings(typeStr), cfg, sink)
	if err != nil {
		t.Fatal(err)
	}
	c := conn.(*agentwatchConnector)
	now := epoch
	c.clock = func() time.Time { return now }
	send := func(td ptrace.Traces) {
		if err := c.ConsumeTraces(context.Background(), td); err != nil {
			t.Fatal(err)
		}
	}
	send(traces("ts-agent", false, 1,
		chat(2, 1, "gpt-4o", 1000, 500, 0, 1).with(sc.AgentwatchCostUSD, 0.75),
		chat(3, 1, "gpt-4o", 1000, 500, 1, 2).with(sc.AgentwatchCostUSD, 0.5).with(sc.GenAIUsageCacheReadInputTokens, 100),
		tool(4, 1, "search", true, 2, 3),
	))
	send(traces("ts-agent", false, 1, run(1, 0, "support", 0, 4)))
	send(traces("ts-agent", false, 2, run(1, 0, "unpriced", 0, 4), chat(2, 1, "no-such-model", 10, 10, 0, 1),
		run(3, 1, "already", 1, 3).with(sc.GenAIInvokeAgentInferenceCallsAttr, 42)))
	if n := len(sink.AllTraces()); n != 0 {
		t.Fatalf("%d batches before the decision", n)
	}
	now = now.Add(2 * time.Second)
	c.decideIdle()
	byName := map[string]ptrace.Span{}
	total := 0
	for _, td := range sink.AllTraces() {
		total += td.SpanCount()
		rss := td.ResourceSpans()
		for i := 0; i < rss.Len(); i++ {
			if svc, _ := rss.At(i).Resource().Attributes().Get(sc.ServiceName); svc.Str() != "ts-agent" {
				t.Errorf("resource lost: %v", rss.At(i).Resource().Attributes().AsRaw())
			}
			spans := rss.At(i).ScopeSpans().At(0).Spans()
			for k := 0; k < spans.Len(); k++ {
				byName[spans.At(k).Name()] = spans.At(k)
			}
		}
	}
	if total != 7 {
		t.Fatalf("%d spans passed on, want all 7", total)
	}
	a := byName["invoke_agent support"].Attributes().AsRaw()
	want := map[string]any{sc.GenAIInvokeAgentInferenceCallsAttr: int64(2), sc.GenAIInvokeAgentToolCallsAttr: int64(1),
		sc.AgentwatchAgentToolErrors: int64(1), sc.GenAIUsageInputTokens: int64(2000), sc.GenAIUsageOutputTokens: int64(1000),
		sc.GenAIUsageCacheReadInputTokens: int64(100), sc.AgentwatchCostUSD: 0.75 + 0.5}
	for k, v := range want {
		if a[k] != v {
			t.Errorf("%s = %v, want %v", k, a[k], v)
		}
	}
	if _, has := a[sc.AgentwatchCostUnknown]; has {
		t.Error("a fully priced run is not cost_unknown")
	}
	u := byName["invoke_agent unpriced"].Attributes().AsRaw()
	if u[sc.AgentwatchCostUnknown] != true || u[sc.AgentwatchRunUnpricedCalls] != int64(1) || u[sc.AgentwatchCostUSD] != 0.0 {
		t.Errorf("unpriced run: %v", u)
	}
	if got := byName["invoke_agent already"].Attributes().AsRaw()[sc.GenAIInvokeAgentInferenceCallsAttr]; got != int64(42) {
		t.Errorf("totals already on the span were overwritten: %v", got)
	}
	if _, has := byName["chat no-such-model"].Attributes().Get(sc.AgentwatchCostUSD); has {
		t.Error("the route changes only invoke_agent spans")
	}
	// an evicted trace still goes on (never lost), without totals
	for i := 10; i < 14; i++ {
		send(traces("ts-agent", false, i, run(1, 0, "r", 0, 1)))
	}
	evicted := sink.AllTraces()[len(sink.AllTraces())-1]
	if evicted.SpanCount() != 1 {
		t.Fatalf("evicted batch %d spans", evicted.SpanCount())
	}
	if _, has := evicted.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes().Get(sc.GenAIInvokeAgentInferenceCallsAttr); has {
		t.Error("an evicted run must not get (possibly incomplete) totals")
	}
	if err := c.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, td := range sink.AllTraces() {
		n += td.SpanCount()
	}
	if n != 7+4 {
		t.Errorf("%d spans after shutdown, want 11: shutdown passes on what is buffered", n)
	}
}
