package agentwatchconnector

import (
	"context"
	"math"
	"sort"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/zap"

	sc "github.com/agentwatch/agentwatch/collector/internal/semconv"
)

// effective kinds after nesting (processor.py / runs.py: RUN, INFERENCE, TOOL, OTHER, NESTED_INFERENCE)
const (
	eOther uint8 = iota
	eRun
	eInference
	eTool
	eNested // an LLM-call span inside another: the outer one counts
)

// spanCtx is Python's Tracked for one buffered span.
type spanCtx struct {
	state    uint8 // 0 new, 1 in progress (a parent-link cycle), 2 done
	kind     uint8
	inside   bool // an LLM-call span encloses it (or it is one)
	hasTool  bool
	tool     string // innermost tool call's raw name around it
	run      int32  // index into runs, -1 outside any run
	outer    int32  // for a span inside an LLM-call span: that counted span
	inner    float64
	hasInner bool
}

// runAgg is Python's RunState: totals of one run, counted for every enclosing run too.
type runAgg struct {
	span                                int32
	parent                              int32
	inferenceCalls, toolCalls, toolErrs int64
	input, output                       int64
	cacheRead, cacheWrite, reasoning    int64
	cost                                float64
	unpriced, usageUnavailable          int64
}

// evaluate turns decided (or evicted, complete=false) traces into metric points.
func (c *agentwatchConnector) evaluate(traces []*traceBuf, complete bool) {
	if len(traces) == 0 {
		return
	}
	now := pcommon.NewTimestampFromTime(c.clock())
	c.agg.mu.Lock()
	out := ptrace.NewTraces()
	for _, t := range traces {
		runs := c.evaluateTrace(t.spans, complete, now)
		if c.nextTraces != nil {
			if complete {
				annotate(t, runs)
			}
			t.raw.ResourceSpans().MoveAndAppendTo(out.ResourceSpans())
		}
	}
	c.agg.mu.Unlock()
	if c.nextTraces != nil && out.ResourceSpans().Len() > 0 {
		if err := c.nextTraces.ConsumeTraces(context.Background(), out); err != nil {
			c.logger.Warn("agentwatch connector: sending traces on failed", zap.Error(err))
		}
	}
}

// annotate writes each run's totals onto its invoke_agent span, as the Python processor does for the
// spans it follows (unless the span carries them already): the tail sampler then sees a run's cost.
func annotate(t *traceBuf, runs []runAgg) {
	if len(runs) == 0 {
		return
	}
	bySpan := make(map[pcommon.SpanID]*runAgg, len(runs))
	for i := range runs {
		bySpan[t.spans[runs[i].span].id] = &runs[i]
	}
	rss := t.raw.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				span := spans.At(k)
				ra := bySpan[span.SpanID()]
				if ra == nil {
					continue
				}
				delete(bySpan, span.SpanID()) // a duplicate delivery gets nothing twice
				attrs := span.Attributes()
				if _, has := attrs.Get(sc.GenAIInvokeAgentInferenceCallsAttr); has {
					continue
				}
				putRunTotals(attrs, ra)
			}
		}
	}
}

// putRunTotals is runs.py RunState.attributes().
func putRunTotals(attrs pcommon.Map, ra *runAgg) {
	attrs.PutInt(sc.GenAIInvokeAgentInferenceCallsAttr, ra.inferenceCalls)
	attrs.PutInt(sc.GenAIInvokeAgentToolCallsAttr, ra.toolCalls)
	attrs.PutInt(sc.AgentwatchAgentToolErrors, ra.toolErrs)
	attrs.PutInt(sc.GenAIUsageInputTokens, ra.input)
	attrs.PutInt(sc.GenAIUsageOutputTokens, ra.output)
	if ra.cacheRead != 0 {
		attrs.PutInt(sc.GenAIUsageCacheReadInputTokens, ra.cacheRead)
	}
	if ra.cacheWrite != 0 {
		attrs.PutInt(sc.GenAIUsageCacheWriteInputTokens, ra.cacheWrite)
	}
	if ra.reasoning != 0 {
		attrs.PutInt(sc.GenAIUsageReasoningOutputTokens, ra.reasoning)
	}
	attrs.PutDouble(sc.AgentwatchCostUSD, ra.cost)
	if ra.unpriced != 0 || ra.usageUnavailable != 0 {
		attrs.PutBool(sc.AgentwatchCostUnknown, true) // the known part is still there, flagged incomplete
		if ra.unpriced != 0 {
			attrs.PutInt(sc.AgentwatchRunUnpricedCalls, ra.unpriced)
		}
		if ra.usageUnavailable != 0 {
			attrs.PutInt(sc.AgentwatchRunUsageUnavailableCalls, ra.usageUnavailable)
		}
	}
}

func satAdd(a, b int64) int64 {
	if b > 0 && a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

func (c *agentwatchConnector) evaluateTrace(spans []spanRec, complete bool, now pcommon.Timestamp) []runAgg {
	emit := c.next != nil
	n := len(spans)
	index := make(map[pcommon.SpanID]int32, n)
	for i := range spans {
		if _, dup := index[spans[i].id]; !dup { // the same span delivered twice counts once
			index[spans[i].id] = int32(i)
		}
	}
	ctx := make([]spanCtx, n)
	var runs []runAgg
	var stack []int32
	for i := range spans {
		if ctx[i].state == 2 {
			continue // resolved as an ancestor of an earlier span
		}
		if index[spans[i].id] != int32(i) {
			ctx[i].state = 2
			ctx[i].run, ctx[i].outer = -1, -1
			ctx[i].kind = eOther // a duplicate: ignored
			continue
		}
		// walk up to the first resolved ancestor (or the root), then resolve top-down: no recursion, so a
		// 10 000-deep chain is fine, and a parent-link cycle is cut where it closes.
		stack = append(stack[:0], int32(i))
		for {
			top := stack[len(stack)-1]
			ctx[top].state = 1
			p, ok := c.parentOf(spans, index, top)
			if !ok || ctx[p].state != 0 {
				break
			}
			stack = append(stack, p)
		}
		for j := len(stack) - 1; j >= 0; j-- {
			s := stack[j]
			parent := int32(-1)
			if p, ok := c.parentOf(spans, index, s); ok && ctx[p].state == 2 {
				parent = p
			}
			c.resolve(spans, ctx, &runs, s, parent)
			ctx[s].state = 2
		}
	}

	// a nested LLM-call span's cost is its outer span's when that has none (Python: inner_cost)
	for i := range spans {
		if ctx[i].kind == eNested && ctx[i].outer >= 0 && spans[i].flags&fCost != 0 {
			ctx[ctx[i].outer].inner, ctx[ctx[i].outer].hasInner = spans[i].call.cost, true
		}
	}

	// LLM calls in end order, so a run's cost is the same float sum as in Python (added as calls end)
	order := make([]int32, 0, n)
	for i := range spans {
		if ctx[i].kind == eInference || ctx[i].kind == eTool {
			order = append(order, int32(i))
		}
	}
	sort.SliceStable(order, func(a, b int) bool { return spans[order[a]].end < spans[order[b]].end })
	for _, i := range order {
		s, x := &spans[i], &ctx[i]
		if x.kind == eTool {
			c.toolEnded(spans, s, x, runs, now, emit)
			continue
		}
		usage := s.flags&fUsage != 0
		var cost float64
		known := true
		switch {
		case s.flags&fCost != 0:
			cost = s.call.cost
		case x.hasInner:
			cost = x.inner
		case s.flags&fPriced != 0:
			cost = s.call.cost
		default:
			known = false
		}
		if emit && s.flags&fInProcess == 0 {
			c.callMetrics(s, usage, cost, known, now)
		}
		for r := x.run; r >= 0; r = runs[r].parent {
			ra := &runs[r]
			ra.inferenceCalls++
			if !usage {
				ra.usageUnavailable++
				continue
			}
			ra.input = satAdd(ra.input, s.call.usage.Input)
			ra.output = satAdd(ra.output, s.call.usage.Output)
			ra.cacheRead = satAdd(ra.cacheRead, s.call.usage.CacheRead)
			ra.cacheWrite = satAdd(ra.cacheWrite, s.call.usage.CacheWrite)
			ra.reasoning = satAdd(ra.reasoning, s.call.usage.Reasoning)
			if known {
				ra.cost += cost
			} else {
				ra.unpriced++
			}
		}
	}
	if !complete || !emit {
		return runs // an evicted trace: its runs may be missing spans, so no run metrics (counted instead)
	}
	for r := range runs {
		c.runEnded(spans, &runs[r], now)
	}
	return runs
}

func (c *agentwatchConnector) parentOf(spans []spanRec, index map[pcommon.SpanID]int32, i int32) (int32, bool) {
	if spans[i].flags&fHasParent == 0 {
		return 0, false
	}
	p, ok := index[spans[i].parent]
	return p, ok && p != i
}

// resolve is the Python processor's on_start for span s whose (resolved) parent is p (-1: none).
func (c *agentwatchConnector) resolve(spans []spanRec, ctx []spanCtx, runs *[]runAgg, s, p int32) {
	rec, x := &spans[s], &ctx[s]
	x.run, x.outer = -1, -1
	if rec.kind == kRun {
		parentRun := int32(-1)
		if p >= 0 {
			parentRun = ctx[p].run
		}
		*runs = append(*runs, runAgg{span: s, parent: parentRun})
		x.kind, x.run = eRun, int32(len(*runs)-1)
		return
	}
	kind := eOther
	switch rec.kind {
	case kInference:
		kind = eInference
	case kTool:
		kind = eTool
	}
	if p < 0 {
		// outside any known parent: no run; an LLM call still encloses what is below it
		x.kind, x.inside = kind, kind == eInference
		if kind == eTool {
			x.tool, x.hasTool = rec.toolKey, rec.flags&fToolNamed != 0
		}
		return
	}
	px := &ctx[p]
	x.run, x.inside, x.tool, x.hasTool = px.run, px.inside, px.tool, px.hasTool
	if x.inside {
		if px.kind == eInference {
			x.outer = p
		} else {
			x.outer = px.outer
		}
	}
	switch {
	case kind == eInference && x.inside:
		kind = eNested
	case kind == eTool:
		named := rec.flags&fToolNamed != 0
		if named && px.hasTool && rec.toolKey == px.tool {
			kind = eOther // the same tool call seen twice (e.g. MCP client and in-process server)
		}
		x.tool, x.hasTool = rec.toolKey, named
	}
	x.kind = kind
	x.inside = x.inside || kind == eInference
}

// callMetrics are one LLM call's gen_ai.client.* points and its cost or unpriced count.
func (c *agentwatchConnector) callMetrics(s *spanRec, usage bool, cost float64, known bool, now pcommon.Timestamp) {
	r := c.agg.resource(s.res)
	l := s.call.labels
	if c.cfg.ClientMetrics {
		c.agg.record(r, mOperationDuration, l.call, float64(s.durNs)/1e9, now)
		if usage {
			c.agg.record(r, mTokenUsage, l.input, float64(s.call.usage.Input), now)
			if !l.embeddings {
				c.agg.record(r, mTokenUsage, l.output, float64(s.call.usage.Output), now)
			}
		}
	}
	if !usage {
		return
	}
	if known {
		c.agg.record(r, mLLMCost, l.price, cost, now)
	} else {
		c.agg.record(r, mUnpriced, l.price, 1, now)
	}
}

// toolEnded counts a tool call for its runs and records its duration (Python: _tool_ended).
func (c *agentwatchConnector) toolEnded(spans []spanRec, s *spanRec, x *spanCtx, runs []runAgg, now pcommon.Timestamp, emit bool) {
	if x.run < 0 {
		return
	}
	failed := s.flags&fError != 0
	for r := x.run; r >= 0; r = runs[r].parent {
		runs[r].toolCalls++
		if failed {
			runs[r].toolErrs++
		}
	}
	if !emit || s.flags&fInProcess != 0 {
		return
	}
	agent, errType := spans[runs[x.run].span].name, ""
	if failed {
		errType = s.errType
	}
	l := c.agg.runLabelsOf(runLabelKey{agent: agent, tool: s.name, errType: errType, isTool: true}, func() []attr {
		attrs := []attr{str(sc.GenAIAgentName, agent), str(sc.GenAIToolName, s.name)}
		if failed {
			attrs = append(attrs, str(sc.ErrorType, errType))
		}
		return attrs
	})
	c.agg.record(c.agg.resource(s.res), mToolDuration, l, float64(s.durNs)/1e9, now)
}

// runEnded records the run metrics of one run (Python: _run_ended).
func (c *agentwatchConnector) runEnded(spans []spanRec, ra *runAgg, now pcommon.Timestamp) {
	s := &spans[ra.span]
	if s.flags&fInProcess != 0 {
		return
	}
	r := c.agg.resource(s.res)
	agent := c.agg.runLabelsOf(runLabelKey{agent: s.name}, func() []attr { return []attr{str(sc.GenAIAgentName, s.name)} })
	duration := agent
	if s.flags&fError != 0 {
		duration = c.agg.runLabelsOf(runLabelKey{agent: s.name, errType: s.errType, hasDuration: true}, func() []attr {
			return []attr{str(sc.GenAIAgentName, s.name), str(sc.ErrorType, s.errType)}
		})
	}
	c.agg.record(r, mRunDuration, duration, float64(s.durNs)/1e9, now)
	c.agg.record(r, mRunInferenceCalls, agent, float64(ra.inferenceCalls), now)
	c.agg.record(r, mRunToolCalls, agent, float64(ra.toolCalls), now)
	if ra.usageUnavailable == 0 {
		c.agg.record(r, mRunTokens, agent, float64(satAdd(ra.input, ra.output)), now)
	}
	if ra.unpriced == 0 && ra.usageUnavailable == 0 {
		c.agg.record(r, mRunCost, agent, ra.cost, now)
	}
}
