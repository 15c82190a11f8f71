package prices

import (
	"encoding/json"
	"math"
	"os"
	"testing"
	"time"
)

// parityDoc is testdata/parity_gen.json: usages and the cost the Python PriceBook computed for each
// (provider, model) at fixed instants (null: unknown).
type parityDoc struct {
	Instants []string   `json:"instants"`
	Usages   [][5]int64 `json:"usages"`
	Cases    []struct {
		Provider string     `json:"provider"`
		Model    string     `json:"model"`
		At       int        `json:"at"`
		Costs    []*float64 `json:"costs"`
	} `json:"cases"`
}

// TestParityWithPython prices every model of the genai-prices data (and odd references) with the usages
// the generator priced in Python, and wants the very same double (or the same "unknown").
func TestParityWithPython(t *testing.T) {
	data, err := os.ReadFile("testdata/parity_gen.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc parityDoc
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	table, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	book := New(table, nil)
	var instants []time.Time
	for _, s := range doc.Instants {
		at, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		instants = append(instants, at)
	}
	if len(doc.Cases) < 2000 {
		t.Fatalf("only %d parity cases: the generator should cover every model", len(doc.Cases))
	}
	priced, failures := 0, 0
	for _, c := range doc.Cases {
		for i, u := range doc.Usages {
			usage := Usage{Input: u[0], Output: u[1], CacheRead: u[2], CacheWrite: u[3], Reasoning: u[4]}
			got, ok := book.Cost(c.Provider, c.Model, usage, instants[c.At])
			want := c.Costs[i]
			switch {
			case want == nil && ok:
				t.Errorf("%q/%q usage %v: Go priced %v, Python: unknown", c.Provider, c.Model, u, got)
			case want != nil && !ok:
				t.Errorf("%q/%q usage %v: Go: unknown, Python %v", c.Provider, c.Model, u, *want)
			case want != nil && math.Float64bits(got) != math.Float64bits(*want):
				t.Errorf("%q/%q usage %v: Go %v != Python %v", c.Provider, c.Model, u, got, *want)
			default:
				if ok {
					priced++
				}
				continue
			}
			if failures++; failures > 20 {
				t.Fatal("too many differences")
			}
		}
	}
	if priced < 10000 {
		t.Errorf("only %d priced parity points: the table or the data is broken", priced)
	}
}
