// Package obs drives erpgate's observability through the running gateway
// binary: the OpenTelemetry spans of one request and of one login, received
// over OTLP/HTTP by a collector inside the test; the auth service's
// Prometheus metrics; and the deploy/ dashboard and alerting rules against
// the metrics the binary exports (and promtool).
package obs

import (
	"bytes"
	"compress/gzip"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// span is one received span, flattened.
type span struct {
	TraceID, SpanID, ParentID string
	Name                      string
	Kind                      tracepb.Span_SpanKind
	Attrs                     map[string]string
	Status                    tracepb.Status_StatusCode
}

// collector is an OTLP/HTTP trace receiver (protobuf, POST /v1/traces).
type collector struct {
	srv   *httptest.Server
	mu    sync.Mutex
	spans []span
}

func newCollector(t *testing.T) *collector {
	c := &collector{}
	c.srv = httptest.NewServer(http.HandlerFunc(c.serve))
	t.Cleanup(c.srv.Close)
	return c
}

func (c *collector) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" {
		http.Error(w, "not an OTLP trace export", http.StatusNotFound)
		return
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	b, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var req coltrace.ExportTraceServiceRequest
	if err := proto.Unmarshal(b, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var got []span
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				sp := span{TraceID: hex.EncodeToString(s.GetTraceId()), SpanID: hex.EncodeToString(s.GetSpanId()),
					ParentID: hex.EncodeToString(s.GetParentSpanId()), Name: s.GetName(), Kind: s.GetKind(),
					Attrs: map[string]string{}, Status: s.GetStatus().GetCode()}
				for _, a := range s.GetAttributes() {
					v := a.GetValue()
					switch v.GetValue().(type) {
					case *commonpb.AnyValue_IntValue:
						sp.Attrs[a.GetKey()] = strconv.FormatInt(v.GetIntValue(), 10)
					case *commonpb.AnyValue_StringValue:
						sp.Attrs[a.GetKey()] = v.GetStringValue()
					default:
						sp.Attrs[a.GetKey()] = v.String()
					}
				}
				got = append(got, sp)
			}
		}
	}
	c.mu.Lock()
	c.spans = append(c.spans, got...)
	c.mu.Unlock()
	out, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = io.Copy(w, bytes.NewReader(out))
}

// trace waits (up to 30s: the exporter batches) until the spans of traceID
// include every name in want, and returns them all.
func (c *collector) trace(t *testing.T, traceID string, want ...string) []span {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var out []span
		names := map[string]bool{}
		c.mu.Lock()
		for _, s := range c.spans {
			if s.TraceID == traceID {
				out = append(out, s)
				names[s.Name] = true
			}
		}
		c.mu.Unlock()
		missing := ""
		for _, n := range want {
			if !names[n] {
				missing = n
				break
			}
		}
		if missing == "" {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("trace %s: no span %q after 30s; got %s", traceID, missing, describe(out))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func describe(spans []span) string {
	var b bytes.Buffer
	for _, s := range spans {
		b.WriteString("\n  " + s.Name + " id=" + s.SpanID + " parent=" + s.ParentID)
	}
	return b.String()
}
