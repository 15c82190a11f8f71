package elasticsearchexporter

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.uber.org/zap"

	sc "github.com/agentwatch/agentwatch/collector/internal/semconv"
)

// typeStr is the contrib exporter's name, so the shipped configs run unchanged.
var typeStr = component.MustNewType("elasticsearch")

// NewFactory is the elasticsearch (logs) exporter's factory.
func NewFactory() exporter.Factory {
	return exporter.NewFactory(typeStr, createDefaultConfig,
		exporter.WithLogs(createLogs, component.StabilityLevelAlpha))
}

func createLogs(ctx context.Context, set exporter.Settings, cfg component.Config) (exporter.Logs, error) {
	c := cfg.(*Config)
	e := &esExporter{cfg: c, logger: set.Logger}
	return exporterhelper.NewLogs(ctx, set, cfg, e.push,
		exporterhelper.WithStart(e.start),
		exporterhelper.WithTimeout(exporterhelper.TimeoutConfig{Timeout: c.Timeout}),
		exporterhelper.WithRetry(c.BackOff),
		exporterhelper.WithQueue(c.QueueSettings),
		exporterhelper.WithCapabilities(consumer.Capabilities{MutatesData: false}))
}

type esExporter struct {
	cfg    *Config
	logger *zap.Logger
	client *http.Client
	url    string
	auth   string
}

func (e *esExporter) start(ctx context.Context, _ component.Host) error {
	tlsCfg, err := e.cfg.TLS.LoadTLSConfig(ctx)
	if err != nil {
		return fmt.Errorf("elasticsearch exporter: tls: %w", err)
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = tlsCfg
	e.client = &http.Client{Transport: transport}
	e.url = strings.TrimRight(e.cfg.Endpoint, "/") + "/_bulk"
	switch {
	case e.cfg.APIKey != "":
		e.auth = "ApiKey " + string(e.cfg.APIKey)
	case e.cfg.User != "":
		e.auth = "Basic " + base64.StdEncoding.EncodeToString([]byte(e.cfg.User+":"+string(e.cfg.Password)))
	}
	return nil
}

// push sends one bulk request; a transport error, 429 or 5xx is retried by exporterhelper, any other
// failure (and documents Elasticsearch rejects one by one) is permanent and logged.
func (e *esExporter) push(ctx context.Context, ld plog.Logs) error {
	body, n := e.bulkBody(ld)
	if n == 0 {
		return nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url, bytes.NewReader(body))
	if err != nil {
		return consumererror.NewPermanent(err)
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	if e.auth != "" {
		req.Header.Set("Authorization", e.auth)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return fmt.Errorf("elasticsearch bulk request: %w", err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
		return fmt.Errorf("elasticsearch bulk request: HTTP %d", resp.StatusCode)
	}
	if resp.StatusCode >= 300 {
		return consumererror.NewPermanent(fmt.Errorf("elasticsearch bulk request: HTTP %d: %.300s", resp.StatusCode, data))
	}
	var out struct {
		Errors bool `json:"errors"`
		Items  []map[string]struct {
			Status int             `json:"status"`
			Error  json.RawMessage `json:"error"`
		} `json:"items"`
	}
	if err := json.Unmarshal(data, &out); err != nil {
		return consumererror.NewPermanent(fmt.Errorf("elasticsearch bulk response: %w", err))
	}
	if out.Errors {
		rejected := 0
		var first string
		for _, item := range out.Items {
			for _, r := range item {
				if r.Status >= 300 {
					rejected++
					if first == "" {
						first = string(r.Error)
					}
				}
			}
		}
		e.logger.Warn("elasticsearch rejected log records", zap.Int("rejected", rejected), zap.Int("sent", n),
			zap.String("first_error", first))
		return consumererror.NewPermanent(fmt.Errorf("elasticsearch rejected %d of %d log records: %.300s", rejected, n, first))
	}
	return nil
}

// bulkBody is the NDJSON of `create` operations (data streams accept only create) for every record.
func (e *esExporter) bulkBody(ld plog.Logs) ([]byte, int) {
	var buf bytes.Buffer
	action, _ := json.Marshal(map[string]any{"create": map[string]string{"_index": e.cfg.LogsIndex}})
	n := 0
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		svc, hasSvc := rl.Resource().Attributes().Get(sc.ServiceName)
		sls := rl.ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			recs := sls.At(j).LogRecords()
			for k := 0; k < recs.Len(); k++ {
				doc := ecsDocument(recs.At(k))
				if hasSvc {
					doc[sc.ServiceName] = svc.AsString()
				}
				line, err := json.Marshal(doc)
				if err != nil {
					e.logger.Warn("dropping a log record that cannot be encoded", zap.Error(err))
					continue
				}
				buf.Write(action)
				buf.WriteByte('\n')
				buf.Write(line)
				buf.WriteByte('\n')
				n++
			}
		}
	}
	return buf.Bytes(), n
}

// ecsDocument is one record in the ECS layout (see the package docstring).
func ecsDocument(r plog.LogRecord) map[string]any {
	doc := make(map[string]any, r.Attributes().Len()+6)
	r.Attributes().Range(func(k string, v pcommon.Value) bool {
		doc[k] = v.AsRaw()
		return true
	})
	ts := r.Timestamp()
	if ts == 0 {
		ts = r.ObservedTimestamp()
	}
	if ts == 0 {
		ts = pcommon.NewTimestampFromTime(time.Now())
	}
	doc[sc.ECSTimestamp] = ts.AsTime().UTC().Format(time.RFC3339Nano)
	if r.Body().Type() != pcommon.ValueTypeEmpty {
		doc[sc.ECSMessage] = r.Body().AsString()
	}
	if r.SeverityText() != "" {
		doc[sc.ECSLogLevel] = r.SeverityText()
	}
	if tid := r.TraceID(); !tid.IsEmpty() {
		doc[sc.ECSTraceID] = tid.String()
	}
	if sid := r.SpanID(); !sid.IsEmpty() {
		doc[sc.ECSSpanID] = sid.String()
	}
	return doc
}
