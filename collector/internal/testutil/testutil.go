// Package testutil holds what the Go tests share: Python-computed expected costs and a metric reader.
package testutil

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// PythonCost is the cost the Python PriceBook computed (testdata/parity_gen.json, instant 0) for
// provider/model and one of the parity usages; the test fails if the parity data lacks it.
func PythonCost(t testing.TB, provider, model string, usage [5]int64) (float64, bool) {
	t.Helper()
	_, here, _, _ := runtime.Caller(0)
	data, err := os.ReadFile(filepath.Join(filepath.Dir(here), "..", "prices", "testdata", "parity_gen.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Usages [][5]int64 `json:"usages"`
		Cases  []struct {
			Provider, Model string
			At              int
			Costs           []*float64
		} `json:"cases"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	for _, c := range doc.Cases {
		if c.Provider != provider || c.Model != model || c.At != 0 {
			continue
		}
		for i, u := range doc.Usages {
			if u == usage {
				if c.Costs[i] == nil {
					return 0, false
				}
				return *c.Costs[i], true
			}
		}
	}
	t.Fatalf("parity data has no case %s/%s with usage %v", provider, model, usage)
	return 0, false
}

// ParityUsages are the usages the generator priced in Python.
func ParityUsages(t testing.TB) [][5]int64 {
	t.Helper()
	_, here, _, _ := runtime.Caller(0)
	data, err := os.ReadFile(filepath.Join(filepath.Dir(here), "..", "prices", "testdata", "parity_gen.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Usages [][5]int64 `json:"usages"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Usages
}

// Meter is an SDK meter provider with a manual reader, for the components' own telemetry.
type Meter struct {
	Provider *sdkmetric.MeterProvider
	reader   *sdkmetric.ManualReader
}

// NewMeter returns a meter provider whose points Sum reads.
func NewMeter() *Meter {
	r := sdkmetric.NewManualReader()
	return &Meter{Provider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(r)), reader: r}
}

// Sum is the total of an int64 sum metric (0 when it has no points).
func (m *Meter) Sum(t testing.TB, name string) int64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := m.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, sm := range rm.ScopeMetrics {
		for _, met := range sm.Metrics {
			if met.Name != name {
				continue
			}
			if s, ok := met.Data.(metricdata.Sum[int64]); ok {
				for _, p := range s.DataPoints {
					total += p.Value
				}
			}
		}
	}
	return total
}
