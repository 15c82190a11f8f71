package prices

import (
	"math"
	"testing"
	"time"
)

func TestNormalizeCompactDate(t *testing.T) {
	for in, want := range map[string]string{
		"gpt-5.2-20251211":        "gpt-5.2-2025-12-11",
		"claude-x-20240229:beta":  "claude-x-2024-02-29:beta",
		"m-20230229":              "m-20230229", // not a date (2023 is no leap year)
		"m-20251311":              "m-20251311", // month 13
		"m-202512110":             "m-202512110",
		"m-20251211-20260101":     "m-2025-12-11-2026-01-01",
		"no-date":                 "no-date",
		"m-19991211":              "m-19991211",
		"-20251211":               "-2025-12-11",
		"m-20251231x":             "m-20251231x",
		"m-20250431":              "m-20250431", // April has 30 days
		"a-20250101-b-20250132-c": "a-2025-01-01-b-20250132-c",
	} {
		if got := normalizeCompactDate(in); got != want {
			t.Errorf("%q -> %q, want %q", in, got, want)
		}
	}
}

func mustTable(t *testing.T, doc string) *Table {
	t.Helper()
	tab, err := ParseTable([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

// Conditional prices: the last whose constraint holds wins, else the first; time-of-day windows may wrap.
func TestConditionalPrices(t *testing.T) {
	tab := mustTable(t, `{"provider_ids":{},"max_name_length":256,"memo_max_entries":4,"providers":[{"id":"p",
"models":[{"id":"m","match":{"equals":"m"},"prices":[
 {"entry":{"rates":[1,1,1,1,1,0]}},
 {"start_date":"2026-06-01","entry":{"rates":[2,2,2,2,2,0]}},
 {"start_seconds":59400,"end_seconds":1800,"entry":{"rates":[3,3,3,3,3,0]}}]}]}]}`)
	book := New(tab, nil)
	u := Usage{Input: 1, Output: 0}
	for at, want := range map[string]float64{
		"2026-01-01T12:00:00Z": 1, // before the start date, outside the window: the first price
		"2026-07-01T12:00:00Z": 2, // after the start date
		"2026-07-01T17:00:00Z": 3, // in the 16:30-00:30 window
		"2026-07-01T00:29:59Z": 3, // wrapped past midnight
		"2026-07-01T00:30:00Z": 2, // the window's end is exclusive
	} {
		ts, _ := time.Parse(time.RFC3339, at)
		if got, ok := book.Cost("p", "m", u, ts); !ok || got != want {
			t.Errorf("%s: %v %v, want %v", at, got, ok, want)
		}
	}
}

// Tiers are cliffs on the total input: a tier applies when input > its start, to every part.
func TestTiersAreCliffs(t *testing.T) {
	tab := mustTable(t, `{"provider_ids":{},"max_name_length":256,"memo_max_entries":4,"providers":[{"id":"p",
"models":[{"id":"m","match":{"starts_with":"m"},"prices":[
 {"entry":{"starts":[200000],"rates":[[1e-6,1e-7,1e-6,2e-6,2e-6,0.001],[2e-6,2e-7,2e-6,4e-6,4e-6,0.001]]}}]}]}]}`)
	book := New(tab, nil)
	at := time.Now()
	base, _ := book.Cost("p", "m", Usage{Input: 200000, Output: 10}, at)
	over, _ := book.Cost("p", "m", Usage{Input: 200001, Output: 10}, at)
	if want := float64(200000)*1e-6 + float64(10)*2e-6 + 0.001; base != want {
		t.Errorf("at the start: %v, want %v", base, want)
	}
	if want := float64(200001)*2e-6 + float64(10)*4e-6 + 0.001; over != want {
		t.Errorf("past the start: %v, want %v", over, want)
	}
	if _, ok := book.Cost("p", "m", Usage{Input: 10, Output: 10, CacheRead: 6, CacheWrite: 5}, at); ok {
		t.Error("cache parts larger than the input must be unknown")
	}
	if _, ok := book.Cost("p", "m", Usage{Input: math.MaxInt64, Output: 1, CacheRead: math.MaxInt64, CacheWrite: 1}, at); ok {
		t.Error("cache parts that overflow must be unknown")
	}
}

// The memo is bounded (FIFO) and odd names are not memoized.
func TestMemoIsBounded(t *testing.T) {
	tab, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	book := New(tab, nil)
	for i := 0; i < 3*tab.memoMaxEntries; i++ {
		book.Cost("openai", "model-"+string(rune('a'+i%26))+string(rune('a'+i/26%26))+string(rune('a'+i/676)), Usage{}, time.Now())
	}
	book.Cost("openai", "   ", Usage{}, time.Now())
	if len(book.memo) > tab.memoMaxEntries || len(book.order) > tab.memoMaxEntries {
		t.Fatalf("memo %d entries, order %d, bound %d", len(book.memo), len(book.order), tab.memoMaxEntries)
	}
	if _, ok := book.Cost("openai", "gpt-4o", Usage{Input: 10, Output: 10}, time.Now()); !ok {
		t.Error("a real model after evictions")
	}
}

// Overrides: exact beats prefix, longer prefix beats shorter, provider-specific beats provider-less.
func TestOverrideRanking(t *testing.T) {
	tab, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	ovs, err := parseOverrides("p.yaml", []byte(`models:
  - {model_prefix: my-, input: 1, output: 1}
  - {model_prefix: my-llama-, input: 2, output: 2}
  - {model_prefix: my-llama-, provider: aws.bedrock, input: 3, output: 3}
  - {model: my-llama-70b, input: 4, output: 4}
`), tab)
	if err != nil {
		t.Fatal(err)
	}
	book := New(tab, ovs)
	u := Usage{Input: 1_000_000, Output: 0}
	for _, c := range []struct {
		provider, model string
		want            float64
	}{
		{"", "my-model", 1}, {"openai", "my-llama-8b", 2}, {"aws.bedrock", "my-llama-8b", 3}, {"aws", "MY-LLAMA-8B", 3},
		{"aws.bedrock", "my-llama-70b", 4},
	} {
		if got, ok := book.Cost(c.provider, c.model, u, time.Now()); !ok || got != c.want {
			t.Errorf("%s/%s: %v, want %v", c.provider, c.model, got, c.want)
		}
	}
}
