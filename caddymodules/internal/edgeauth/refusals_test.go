package edgeauth

import (
	"context"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/erpgate/erpgate/authsvc/store"
	"github.com/erpgate/erpgate/internal/sampling"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// collector is a trail for tests.
type collector struct {
	mu     sync.Mutex
	events []store.Event
}

func (c *collector) write(_ context.Context, ev store.Event) error {
	c.mu.Lock()
	c.events = append(c.events, ev)
	c.mu.Unlock()
	return nil
}

// A full buffer never blocks a refusal: the record is dropped, counted, and
// the summary written at Close stands for it; counts add up.
func TestAuditorBoundedBuffer(t *testing.T) {
	t.Parallel()
	trail := &collector{}
	m, err := RegisterMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	a := NewRefusalAuditor(context.Background(), AuditorOptions{Sample: 5, Interval: time.Hour, Buffer: 3, Now: func() time.Time { return t0 }, Write: trail.write, Metrics: m})
	a.startOnce.Do(func() {}) // no writer yet: the buffer fills
	const key = "erp_live_0123456789ab_" + "s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t-s"
	for i := range 20 {
		r := httptest.NewRequest("GET", "/api/v1/invoices", nil)
		r.RemoteAddr = "203.0.113." + strconv.Itoa(i) + ":5555"
		a.Refused(r, "api_key", ReasonInactive, key)
	}
	for o, want := range map[sampling.Outcome]float64{sampling.Recorded: 3, sampling.Dropped: 2, sampling.Summarized: 15} {
		if got := counterValue(t, m, o); got != want {
			t.Fatalf("%s: %v, want %v", o, got, want)
		}
	}
	a.start()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	var singles, summarised int64
	for _, ev := range trail.events {
		switch ev.Type {
		case store.EventEdgeCredentialRefused:
			singles++
			if ev.Details["key_prefix"] != "0123456789ab" || ev.Details["reason"] != ReasonInactive || ev.Details["provider"] != "api_key" || !strings.HasPrefix(ev.IP, "203.0.113.") {
				t.Fatalf("record %+v", ev)
			}
		case store.EventEdgeRefusalSummary:
			n, _ := strconv.ParseInt(ev.Details["count"], 10, 64)
			summarised += n
			if ev.Details["dropped"] != "2" || ev.Details["total"] != "20" {
				t.Fatalf("summary %+v", ev)
			}
		}
		if strings.Contains(strings.Join([]string{ev.IP, ev.UserAgent, ev.RequestID, strings.Join(mapValues(ev.Details), " ")}, " "), "s3cr3t") {
			t.Fatalf("the key's secret is in a record: %+v", ev)
		}
	}
	if singles != 3 || singles+summarised != 20 {
		t.Fatalf("%d single records + %d summarised, want 3 + 17", singles, summarised)
	}
}

// A malformed key's "prefix" is not kept; nor is anything after Close blocking.
func TestAuditorNoPrefixOfMalformedKey(t *testing.T) {
	t.Parallel()
	trail := &collector{}
	a := NewRefusalAuditor(context.Background(), AuditorOptions{Now: func() time.Time { return t0 }, Write: trail.write})
	a.Refused(httptest.NewRequest("GET", "/", nil), "api_key", ReasonMalformed, "erp_live_0123456789ab_short")
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	a.Refused(httptest.NewRequest("GET", "/", nil), "api_key", ReasonMalformed, "x") // after Close: dropped into nothing, never blocks
	if len(trail.events) != 1 || trail.events[0].Details["key_prefix"] != "" {
		t.Fatalf("events %+v", trail.events)
	}
}

func mapValues(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

func counterValue(t *testing.T, m *Metrics, o sampling.Outcome) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	if err := reg.Register(m.RefusalAudit); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			for _, l := range mt.GetLabel() {
				if l.GetName() == "outcome" && l.GetValue() == o.String() {
					return mt.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// With no in-process auth service (an edge that checks tokens against a
// remote JWKS), the records are log lines: one per sampled refusal, a
// warning per summary, no credential in either.
func TestAuditorWithoutTrailLogs(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zap.InfoLevel)
	a := NewRefusalAuditor(context.Background(), AuditorOptions{Sample: 1, Now: func() time.Time { return t0 }, Logger: zap.New(core)})
	for range 3 {
		a.Refused(httptest.NewRequest("GET", "/api/v1/invoices", nil), "jwt", ReasonMalformed, "")
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	single := logs.FilterMessage("credential refused at the edge").All()
	summary := logs.FilterMessage("credentials refused at the edge (summary)").All()
	if len(single) != 1 || len(summary) != 1 {
		t.Fatalf("log lines: %+v", logs.All())
	}
	d, _ := summary[0].ContextMap()["details"].(map[string]string)
	if d["count"] != "2" || d["reason"] != ReasonMalformed {
		t.Fatalf("summary line %+v", summary[0].ContextMap())
	}
}

// The refusal path past the sample: a lock, a map look-up and a counter.
func BenchmarkRefusedSummarized(b *testing.B) {
	a := NewRefusalAuditor(context.Background(), AuditorOptions{Sample: 1, Interval: time.Hour, Write: func(context.Context, store.Event) error { return nil }})
	defer a.Close()
	r := httptest.NewRequest("GET", "/api/v1/invoices", nil)
	a.Refused(r, "jwt", ReasonMalformed, "")
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			a.Refused(r, "jwt", ReasonMalformed, "")
		}
	})
}
