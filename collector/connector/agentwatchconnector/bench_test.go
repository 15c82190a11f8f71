package agentwatchconnector

import (
	"context"
	"runtime"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// runBatch is `runs` traces of 10 spans each: a run, 7 LLM calls (one model of three), 2 tools.
func runBatch(first, runs int) ptrace.Traces {
	var spans []sp
	td := ptrace.NewTraces()
	models := []string{"gpt-4o", "gpt-4o-mini", "claude-sonnet-4-5"}
	for r := 0; r < runs; r++ {
		spans = spans[:0]
		spans = append(spans, run(1, 0, "agent", 0, 30))
		for i := 0; i < 7; i++ {
			spans = append(spans, chat(2+i, 1, models[(r+i)%3], 1000+i, 200, float64(i), float64(i)+0.5))
		}
		spans = append(spans, tool(9, 1, "search", false, 8, 9), tool(10, 1, "fetch", r%10 == 0, 9, 10))
		traces("bench-agent", false, first+r, spans...).ResourceSpans().MoveAndAppendTo(td.ResourceSpans())
	}
	return td
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkConnectorMemory buffers 1 000 000 spans of 100 000 runs in flight (none decided yet) and
// reports the heap they hold, then decides them all and reports how long that takes.
func BenchmarkConnectorMemory(b *testing.B) {
	const runs, perBatch = 100_000, 100
	for n := 0; n < b.N; n++ {
		cfg := createDefaultConfig().(*Config)
		cfg.DecisionWait = time.Hour
		cfg.MaxTraces = runs
		cfg.MaxSpans = 10 * runs
		c, err := newConnector(cfg, componenttest.NewNopTelemetrySettings(), new(consumertest.MetricsSink), nil)
		if err != nil {
			b.Fatal(err)
		}
		now := time.Now()
		c.clock = func() time.Time { return now }
		before := heapInUse()
		var ingest time.Duration
		for first := 0; first < runs; first += perBatch {
			b.StopTimer()
			td := runBatch(first+1, perBatch)
			b.StartTimer()
			t0 := time.Now()
			if err := c.ConsumeTraces(context.Background(), td); err != nil {
				b.Fatal(err)
			}
			ingest += time.Since(t0)
		}
		b.StopTimer()
		held := heapInUse() - before
		if c.spans != 10*runs || len(c.traces) != runs {
			b.Fatalf("buffered %d spans in %d traces", c.spans, len(c.traces))
		}
		b.ReportMetric(float64(held)/(1<<20), "MiB-in-flight")
		b.ReportMetric(float64(held)/float64(c.spans), "B/span")
		b.ReportMetric(float64(ingest.Nanoseconds())/float64(c.spans), "ingest-ns/span")
		now = now.Add(2 * time.Hour)
		t0 := time.Now()
		c.decideIdle()
		b.ReportMetric(float64(time.Since(t0).Nanoseconds())/float64(10*runs), "decide-ns/span")
		if len(c.traces) != 0 {
			b.Fatal("not all decided")
		}
		b.StartTimer()
	}
}
