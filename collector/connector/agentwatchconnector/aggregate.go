package agentwatchconnector

import (
	"sort"
	"strconv"
	"strings"
	"sync"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	sc "github.com/agentwatch/agentwatch/collector/internal/semconv"
)

type metricKind uint8

const (
	kindHistogram metricKind = iota
	kindSumDouble
	kindSumInt
)

// metricDef is one instrument of the Python package (telemetry.py, processor.py _AgentInstruments).
type metricDef struct {
	name, unit, desc string
	kind             metricKind
	bounds           []float64
}

// The metrics, in the order they are exported. Names, units and boundaries are the generated ones.
const (
	mTokenUsage = iota
	mOperationDuration
	mLLMCost
	mUnpriced
	mRunDuration
	mRunInferenceCalls
	mRunToolCalls
	mRunCost
	mRunTokens
	mToolDuration
	nMetrics
)

var metricDefs = [nMetrics]metricDef{
	mTokenUsage: {sc.MetricClientTokenUsage, sc.UnitToken, "Number of input and output tokens used per LLM call.",
		kindHistogram, sc.ClientTokenUsageBoundaries},
	mOperationDuration: {sc.MetricClientOperationDuration, sc.UnitSeconds,
		"Duration of an LLM call, to the end of its stream when streamed.", kindHistogram, sc.ClientOperationDurationBoundaries},
	mLLMCost:  {sc.MetricLLMCost, sc.UnitUSD, "Spend on LLM calls in USD, by provider and model.", kindSumDouble, nil},
	mUnpriced: {sc.MetricPricingUnpricedCalls, sc.UnitCall, "LLM calls whose model has no known price (their cost is unknown, not zero).", kindSumInt, nil},
	mRunDuration: {sc.MetricInvokeAgentDuration, sc.UnitSeconds, "Duration of agent runs.", kindHistogram,
		sc.InvokeAgentDurationBoundaries},
	mRunInferenceCalls: {sc.MetricInvokeAgentInferenceCalls, sc.UnitInferenceCall, "LLM calls (steps) per agent run.",
		kindHistogram, sc.InferenceCallsBoundaries},
	mRunToolCalls: {sc.MetricInvokeAgentToolCalls, sc.UnitToolCall, "Tool calls per agent run.", kindHistogram,
		sc.ToolCallsBoundaries},
	mRunCost: {sc.MetricAgentCost, sc.UnitUSD, "Cost of agent runs in USD (runs with a known cost).", kindHistogram,
		sc.AgentCostBoundaries},
	mRunTokens: {sc.MetricAgentTokenUsage, sc.UnitToken, "Tokens (input + output) per agent run.", kindHistogram,
		sc.AgentTokenUsageBoundaries},
	mToolDuration: {sc.MetricExecuteToolDuration, sc.UnitSeconds, "Duration of tool calls.", kindHistogram,
		sc.ExecuteToolDurationBoundaries},
}

// attr is one metric attribute: a string, or an int (server.port).
type attr struct {
	k, s  string
	i     int64
	isInt bool
}

func str(k, v string) attr { return attr{k: k, s: v} }

// labels is an attribute set with its series key, built once and shared by every point recorded with it.
type labels struct {
	attrs []attr
	key   string
}

func mkLabels(attrs ...attr) *labels {
	var b strings.Builder
	return &labels{attrs: attrs, key: attrKey(&b, attrs)}
}

type point struct {
	attrs    []attr
	start    pcommon.Timestamp
	counts   []uint64
	count    uint64
	sum      float64
	min, max float64
}

type metricState struct {
	points   map[string]*point
	overflow *point
}

type resState struct {
	attrs   []attr
	metrics [nMetrics]metricState
}

// aggregator keeps cumulative points per resource and metric, with a series limit per metric.
type aggregator struct {
	mu        sync.Mutex
	resources map[string]*resState
	maxSeries int
	maxRes    int
	keyBuf    strings.Builder
	runLabels map[runLabelKey]*labels // agent / agent+tool(+error) label sets, bounded
}

type runLabelKey struct {
	agent, tool, errType string
	isTool, hasDuration  bool
}

func newAggregator(maxSeries, maxResources int) *aggregator {
	return &aggregator{resources: map[string]*resState{}, maxSeries: maxSeries, maxRes: maxResources,
		runLabels: map[runLabelKey]*labels{}}
}

// runLabelsOf interns the label set of a run or tool metric (caller holds mu).
func (a *aggregator) runLabelsOf(k runLabelKey, build func() []attr) *labels {
	if l := a.runLabels[k]; l != nil {
		return l
	}
	if len(a.runLabels) >= labelCacheSize {
		a.runLabels = map[runLabelKey]*labels{}
	}
	l := mkLabels(build()...)
	a.runLabels[k] = l
	return l
}

func attrKey(b *strings.Builder, attrs []attr) string {
	b.Reset()
	for _, a := range attrs {
		b.WriteString(a.k)
		b.WriteByte(0)
		if a.isInt {
			b.WriteString(strconv.FormatInt(a.i, 10))
		} else {
			b.WriteString(a.s)
		}
		b.WriteByte(1)
	}
	return b.String()
}

// resource returns the state for a resource identity (service name, namespace, instance), folding
// resources past the limit into one `_OTHER` service.
func (a *aggregator) resource(id *resIdentity) *resState {
	if id.state != nil {
		return id.state
	}
	id.state = a.resourceOf(id.attrs)
	return id.state
}

func (a *aggregator) resourceOf(res []attr) *resState {
	key := attrKey(&a.keyBuf, res)
	r := a.resources[key]
	if r == nil {
		if len(a.resources) >= a.maxRes {
			res = []attr{str(sc.ServiceName, sc.ErrorOther)}
			key = attrKey(&a.keyBuf, res)
			if r = a.resources[key]; r != nil {
				return r
			}
		}
		r = &resState{attrs: append([]attr(nil), res...)}
		for i := range r.metrics {
			r.metrics[i].points = map[string]*point{}
		}
		a.resources[key] = r
	}
	return r
}

// record adds one value (a histogram observation or a sum increment) to a series; caller holds mu.
func (a *aggregator) record(r *resState, m int, l *labels, v float64, now pcommon.Timestamp) {
	st := &r.metrics[m]
	p := st.points[l.key]
	if p == nil {
		if len(st.points) >= a.maxSeries {
			if st.overflow == nil {
				st.overflow = a.newPoint(m, []attr{{k: sc.OtelMetricOverflow, s: "true"}}, now)
			}
			p = st.overflow
		} else {
			p = a.newPoint(m, l.attrs, now)
			st.points[l.key] = p
		}
	}
	def := &metricDefs[m]
	if def.kind != kindHistogram {
		p.sum += v
		return
	}
	// bucket i holds (bounds[i-1], bounds[i]]: upper bounds are inclusive, as in OTel and Prometheus
	p.counts[sort.SearchFloat64s(def.bounds, v)]++
	if p.count == 0 || v < p.min {
		p.min = v
	}
	if p.count == 0 || v > p.max {
		p.max = v
	}
	p.count++
	p.sum += v
}

func (a *aggregator) newPoint(m int, attrs []attr, now pcommon.Timestamp) *point {
	p := &point{attrs: attrs, start: now}
	if metricDefs[m].kind == kindHistogram {
		p.counts = make([]uint64, len(metricDefs[m].bounds)+1)
	}
	return p
}

// export builds the cumulative metrics (nil when nothing was recorded yet), in a stable order.
func (a *aggregator) export(now pcommon.Timestamp) (pmetric.Metrics, int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	md := pmetric.NewMetrics()
	keys := make([]string, 0, len(a.resources))
	for k := range a.resources {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	n := 0
	for _, k := range keys {
		r := a.resources[k]
		rm := md.ResourceMetrics().AppendEmpty()
		putAttrs(rm.Resource().Attributes(), r.attrs)
		sm := rm.ScopeMetrics().AppendEmpty()
		sm.Scope().SetName(sc.ScopeName)
		for m := 0; m < nMetrics; m++ {
			st := &r.metrics[m]
			if len(st.points) == 0 && st.overflow == nil {
				continue
			}
			def := &metricDefs[m]
			met := sm.Metrics().AppendEmpty()
			met.SetName(def.name)
			met.SetUnit(def.unit)
			met.SetDescription(def.desc)
			pkeys := make([]string, 0, len(st.points))
			for pk := range st.points {
				pkeys = append(pkeys, pk)
			}
			sort.Strings(pkeys)
			points := make([]*point, 0, len(pkeys)+1)
			for _, pk := range pkeys {
				points = append(points, st.points[pk])
			}
			if st.overflow != nil {
				points = append(points, st.overflow)
			}
			switch def.kind {
			case kindHistogram:
				h := met.SetEmptyHistogram()
				h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
				for _, p := range points {
					dp := h.DataPoints().AppendEmpty()
					putAttrs(dp.Attributes(), p.attrs)
					dp.SetStartTimestamp(p.start)
					dp.SetTimestamp(now)
					dp.ExplicitBounds().FromRaw(def.bounds)
					dp.BucketCounts().FromRaw(p.counts)
					dp.SetCount(p.count)
					dp.SetSum(p.sum)
					if p.count > 0 {
						dp.SetMin(p.min)
						dp.SetMax(p.max)
					}
					n++
				}
			default:
				s := met.SetEmptySum()
				s.SetIsMonotonic(true)
				s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
				for _, p := range points {
					dp := s.DataPoints().AppendEmpty()
					putAttrs(dp.Attributes(), p.attrs)
					dp.SetStartTimestamp(p.start)
					dp.SetTimestamp(now)
					if def.kind == kindSumInt {
						dp.SetIntValue(int64(p.sum))
					} else {
						dp.SetDoubleValue(p.sum)
					}
					n++
				}
			}
		}
	}
	return md, n
}

func putAttrs(m pcommon.Map, attrs []attr) {
	m.EnsureCapacity(len(attrs))
	for _, a := range attrs {
		if a.isInt {
			m.PutInt(a.k, a.i)
		} else {
			m.PutStr(a.k, a.s)
		}
	}
}

// limiter is the Python LabelLimiter: the first `limit` distinct values pass, the rest become _OTHER.
// It also interns the values it keeps, so buffered spans share one copy of each name.
type limiter struct {
	limit int
	seen  map[string]string
}

func newLimiter(limit int) *limiter { return &limiter{limit: limit, seen: map[string]string{}} }

func (l *limiter) of(v string) string {
	if s, ok := l.seen[v]; ok {
		return s
	}
	if len(l.seen) >= l.limit {
		return sc.ErrorOther
	}
	s := strings.Clone(v)
	l.seen[s] = s
	return s
}
