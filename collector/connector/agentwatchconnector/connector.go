package agentwatchconnector

import (
	"context"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/agentwatch/agentwatch/collector/internal/genai"
	"github.com/agentwatch/agentwatch/collector/internal/prices"
	sc "github.com/agentwatch/agentwatch/collector/internal/semconv"
)

const scopeName = "github.com/agentwatch/agentwatch/collector/connector/agentwatchconnector"

// span kinds, as the Python processor tracks them
const (
	kOther uint8 = iota
	kRun
	kInference
	kTool
)

// span flags
const (
	fError uint16 = 1 << iota
	fUsage
	fCost
	fCostUnknown
	fInProcess
	fHasParent
	fToolNamed     // a tool span with gen_ai.tool.name (Python compares it, or None, with the enclosing tool)
	fPriced        // no cost on the span: the connector priced it (used unless a nested call's cost is known)
	fPricedUnknown // no cost on the span and no price for it
)

// callInfo is what an inference span contributes: labels, usage and (when known) cost.
type callInfo struct {
	labels *callLabels
	usage  prices.Usage
	cost   float64 // the span's own cost (fCost), or the connector's price (fPriced)
}

// spanRec is the compact record the connector keeps per buffered span (not the span itself).
type spanRec struct {
	id, parent pcommon.SpanID
	kind       uint8
	flags      uint16
	durNs      int64
	end        pcommon.Timestamp
	name       string // run: agent name; tool: tool name (limited, interned)
	toolKey    string // tool: the raw gen_ai.tool.name, for "the same tool seen twice"
	errType    string // limited, interned
	res        *resIdentity
	call       *callInfo
}

// resIdentity is a resource as the metrics carry it: service name, namespace and instance id.
type resIdentity struct {
	attrs []attr
	state *resState // its aggregator state, set on first use (under the aggregator's lock)
}

type traceBuf struct {
	id         pcommon.TraceID
	spans      []spanRec
	raw        ptrace.Traces // the spans themselves, kept only when the traces are routed through
	last       time.Time
	prev, next *traceBuf
}

type agentwatchConnector struct {
	cfg        *Config
	logger     *zap.Logger
	next       consumer.Metrics // the traces -> metrics instance
	nextTraces consumer.Traces  // the traces -> traces instance: spans go on, run totals on invoke_agent
	book       *prices.PriceBook
	clock      func() time.Time

	mu         sync.Mutex
	traces     map[pcommon.TraceID]*traceBuf
	head, tail *traceBuf // least recently updated first
	spans      int
	labels     *labelSet
	resources  map[string]*resIdentity
	keyBuf     strings.Builder

	agg *aggregator

	evicted metric.Int64Counter

	stop     chan struct{}
	done     sync.WaitGroup
	shutdown sync.Once
}

func newConnector(cfg *Config, tel component.TelemetrySettings, next consumer.Metrics, nextTraces consumer.Traces) (*agentwatchConnector, error) {
	book, err := prices.NewDefault(cfg.PricesFile)
	if err != nil {
		return nil, err
	}
	c := &agentwatchConnector{
		cfg:        cfg,
		logger:     tel.Logger,
		next:       next,
		nextTraces: nextTraces,
		book:       book,
		clock:      time.Now,
		traces:     map[pcommon.TraceID]*traceBuf{},
		labels:     newLabelSet(cfg.LabelLimit),
		resources:  map[string]*resIdentity{},
		agg:        newAggregator(cfg.MaxSeries, cfg.LabelLimit),
		stop:       make(chan struct{}),
	}
	meter := tel.MeterProvider.Meter(scopeName)
	if c.evicted, err = meter.Int64Counter(sc.MetricCollectorEvictedTraces, metric.WithUnit(sc.UnitTrace),
		metric.WithDescription("Traces the agentwatch connector had to evaluate before decision_wait (buffer full): their runs make no run metrics.")); err != nil {
		return nil, err
	}
	if _, err = meter.Int64ObservableGauge(sc.MetricCollectorTracesInFlight, metric.WithUnit(sc.UnitTrace),
		metric.WithDescription("Traces buffered by the agentwatch connector."),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			c.mu.Lock()
			n := len(c.traces)
			c.mu.Unlock()
			o.Observe(int64(n))
			return nil
		})); err != nil {
		return nil, err
	}
	if _, err = meter.Int64ObservableGauge(sc.MetricCollectorSpansInFlight, metric.WithUnit(sc.UnitSpan),
		metric.WithDescription("Span records buffered by the agentwatch connector."),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			c.mu.Lock()
			n := c.spans
			c.mu.Unlock()
			o.Observe(int64(n))
			return nil
		})); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *agentwatchConnector) Capabilities() consumer.Capabilities {
	return consumer.Capabilities{MutatesData: false}
}

// Start runs the loop that evaluates idle traces and flushes the metrics.
func (c *agentwatchConnector) Start(context.Context, component.Host) error {
	tick := c.cfg.DecisionWait / 4
	if tick < 10*time.Millisecond {
		tick = 10 * time.Millisecond
	}
	if tick > time.Second {
		tick = time.Second
	}
	c.done.Add(1)
	go func() {
		defer c.done.Done()
		decide := time.NewTicker(tick)
		flush := time.NewTicker(c.cfg.MetricsFlushInterval)
		defer decide.Stop()
		defer flush.Stop()
		for {
			select {
			case <-c.stop:
				return
			case <-decide.C:
				c.decideIdle()
			case <-flush.C:
				c.flush(context.Background())
			}
		}
	}()
	return nil
}

// Shutdown evaluates every buffered trace and sends the metrics one last time.
func (c *agentwatchConnector) Shutdown(ctx context.Context) error {
	var err error
	c.shutdown.Do(func() {
		close(c.stop)
		c.done.Wait()
		c.mu.Lock()
		var all []*traceBuf
		for t := c.head; t != nil; t = t.next {
			all = append(all, t)
		}
		c.traces = map[pcommon.TraceID]*traceBuf{}
		c.head, c.tail, c.spans = nil, nil, 0
		c.mu.Unlock()
		c.evaluate(all, true)
		err = c.flush(ctx)
	})
	return err
}

// ConsumeTraces records the spans; metrics follow when their trace is decided.
func (c *agentwatchConnector) ConsumeTraces(_ context.Context, td ptrace.Traces) error {
	now := c.clock()
	var evicted []*traceBuf
	c.mu.Lock()
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		res := c.resourceOf(rs.Resource())
		inProcess := genai.InProcess(rs.Resource())
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			var copies map[*traceBuf]ptrace.SpanSlice // this scope's spans, per trace, when routed
			for k := 0; k < spans.Len(); k++ {
				span := spans.At(k)
				t := c.traces[span.TraceID()]
				if t == nil {
					for len(c.traces) >= c.cfg.MaxTraces && c.head != nil {
						evicted = append(evicted, c.remove(c.head))
					}
					t = &traceBuf{id: span.TraceID()}
					c.traces[t.id] = t
				} else {
					c.unlink(t)
				}
				t.last = now
				c.append(t)
				t.spans = append(t.spans, c.record(span, res, inProcess))
				c.spans++
				if c.nextTraces != nil {
					if copies == nil {
						copies = map[*traceBuf]ptrace.SpanSlice{}
					}
					dst, ok := copies[t]
					if !ok {
						if t.raw == (ptrace.Traces{}) {
							t.raw = ptrace.NewTraces()
						}
						rsCopy := t.raw.ResourceSpans().AppendEmpty()
						rs.Resource().CopyTo(rsCopy.Resource())
						rsCopy.SetSchemaUrl(rs.SchemaUrl())
						ssCopy := rsCopy.ScopeSpans().AppendEmpty()
						sss.At(j).Scope().CopyTo(ssCopy.Scope())
						ssCopy.SetSchemaUrl(sss.At(j).SchemaUrl())
						dst = ssCopy.Spans()
						copies[t] = dst
					}
					span.CopyTo(dst.AppendEmpty())
				}
			}
		}
	}
	for c.spans > c.cfg.MaxSpans && c.head != nil {
		evicted = append(evicted, c.remove(c.head))
	}
	c.mu.Unlock()
	if len(evicted) > 0 {
		c.evicted.Add(context.Background(), int64(len(evicted)))
		c.evaluate(evicted, false)
	}
	return nil
}

// record reads what the metrics need from one span; caller holds mu (the label limiters).
func (c *agentwatchConnector) record(span ptrace.Span, res *resIdentity, inProcess bool) spanRec {
	attrs := span.Attributes()
	r := spanRec{id: span.SpanID(), parent: span.ParentSpanID(), res: res}
	if !r.parent.IsEmpty() {
		r.flags |= fHasParent
	}
	if inProcess {
		r.flags |= fInProcess
	}
	start, end := span.StartTimestamp(), span.EndTimestamp()
	r.end = end
	if end > start {
		r.durNs = int64(end - start)
	}
	if e := genai.Failed(span); e != "" {
		r.flags |= fError
		r.errType = c.labels.errors.of(e)
	}
	op := genai.Operation(attrs)
	switch {
	case op == sc.OpInvokeAgent:
		r.kind = kRun
		r.name = c.labels.agents.of(genai.StringOr(attrs, span.Name(), sc.GenAIAgentName))
	case op == sc.OpExecuteTool:
		r.kind = kTool
		r.name = c.labels.tools.of(genai.StringOr(attrs, span.Name(), sc.GenAIToolName))
		if v, ok := attrs.Get(sc.GenAIToolName); ok {
			// the raw name decides "the same tool seen twice", as in Python (even past the label limit)
			r.flags |= fToolNamed
			if raw := v.AsString(); raw == r.name {
				r.toolKey = r.name
			} else {
				r.toolKey = strings.Clone(raw)
			}
		}
	case genai.IsInference(op):
		r.kind = kInference
		call := genai.CallOf(attrs, op)
		ci := &callInfo{labels: c.labels.call(call, attrs, r.errType)}
		if u, ok := genai.UsageOf(attrs); ok {
			r.flags |= fUsage
			ci.usage = u
		}
		if v, ok := attrs.Get(sc.AgentwatchCostUSD); ok {
			// a cost that is not a number is an unknown cost, as in Python (never re-priced over it)
			switch v.Type() {
			case pcommon.ValueTypeDouble:
				r.flags |= fCost
				ci.cost = v.Double()
			case pcommon.ValueTypeInt:
				r.flags |= fCost
				ci.cost = float64(v.Int())
			default:
				r.flags |= fCostUnknown
			}
		} else if v, ok := attrs.Get(sc.AgentwatchCostUnknown); ok && genai.Truthy(v) {
			r.flags |= fCostUnknown
		} else if r.flags&fUsage != 0 {
			if cost, ok := genai.Price(c.book, call, ci.usage, c.clock()); ok {
				r.flags |= fPriced
				ci.cost = cost
			} else {
				r.flags |= fPricedUnknown
			}
		}
		r.call = ci
	}
	return r
}

// resourceOf interns the resource identity of a batch's resource.
func (c *agentwatchConnector) resourceOf(res pcommon.Resource) *resIdentity {
	var attrs []attr
	for _, k := range []string{sc.ServiceName, sc.ServiceNamespace, sc.ServiceInstanceID} {
		if v, ok := res.Attributes().Get(k); ok {
			attrs = append(attrs, str(k, v.AsString()))
		}
	}
	key := attrKey(&c.keyBuf, attrs)
	if r := c.resources[key]; r != nil {
		return r
	}
	if len(c.resources) >= c.cfg.LabelLimit {
		attrs = []attr{str(sc.ServiceName, sc.ErrorOther)}
		key = attrKey(&c.keyBuf, attrs)
		if r := c.resources[key]; r != nil {
			return r
		}
	}
	for i := range attrs {
		attrs[i].s = strings.Clone(attrs[i].s)
	}
	r := &resIdentity{attrs: attrs}
	c.resources[key] = r
	return r
}

// --- the LRU list of traces (caller holds mu) ---------------------------------------------------------
func (c *agentwatchConnector) append(t *traceBuf) {
	t.prev, t.next = c.tail, nil
	if c.tail != nil {
		c.tail.next = t
	} else {
		c.head = t
	}
	c.tail = t
}

func (c *agentwatchConnector) unlink(t *traceBuf) {
	if t.prev != nil {
		t.prev.next = t.next
	} else {
		c.head = t.next
	}
	if t.next != nil {
		t.next.prev = t.prev
	} else {
		c.tail = t.prev
	}
	t.prev, t.next = nil, nil
}

func (c *agentwatchConnector) remove(t *traceBuf) *traceBuf {
	c.unlink(t)
	delete(c.traces, t.id)
	c.spans -= len(t.spans)
	return t
}

// decideIdle evaluates the traces no span has reached for decision_wait.
func (c *agentwatchConnector) decideIdle() {
	cutoff := c.clock().Add(-c.cfg.DecisionWait)
	var ready []*traceBuf
	c.mu.Lock()
	for c.head != nil && !c.head.last.After(cutoff) {
		ready = append(ready, c.remove(c.head))
	}
	c.mu.Unlock()
	c.evaluate(ready, true)
}

// flush sends the cumulative metrics on.
func (c *agentwatchConnector) flush(ctx context.Context) error {
	if c.next == nil {
		return nil
	}
	md, n := c.agg.export(pcommon.NewTimestampFromTime(c.clock()))
	if n == 0 {
		return nil
	}
	if err := c.next.ConsumeMetrics(ctx, md); err != nil {
		c.logger.Warn("agentwatch connector: sending metrics failed", zap.Error(err))
		return err
	}
	return nil
}
