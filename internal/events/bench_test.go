package events

import (
	"context"
	"encoding/json"
	"testing"
	"time"
)

// benchData is an invoice as the demo's v2 answers it: what a business
// event carries.
var benchData = json.RawMessage(`{"id":"inv_acme_0051","number":"INV-2026-0051","customer_id":"cus_acme_001","total":{"amount":"12.50","currency":"EUR"},"status":"draft","issue_date":"2026-12-02"}`)

func benchEngine(b *testing.B, buffer int) *Engine {
	b.Helper()
	e, err := Open(context.Background(), Config{StoreDir: b.TempDir(), Names: NamesFor("bench:"), Buffer: buffer})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(e.Close)
	return e
}

// BenchmarkNew is the event the edge makes per write (id, time, the
// answer's data taken as is).
func BenchmarkNew(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := New("/erpgate/edge-1", "erp.invoices.created", "acme", "inv_acme_0051", benchData); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMessage is the background publisher's work per event before
// the send: validation, JSON, subject.
func BenchmarkMessage(b *testing.B) {
	e := &Engine{cfg: Config{Names: NamesFor("bench:")}}
	ev, err := New("/erpgate/edge-1", "erp.invoices.created", "acme", "inv_acme_0051", benchData)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.message(ev); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPublish is what a write pays on the request path: New and
// Publish (a channel send). The background publisher runs meanwhile on the
// other core, so ns/op and allocs/op include the part of its marshalling
// and sending done within the timer. The queue holds every event so none
// is dropped; the flush is outside the timer.
func BenchmarkPublish(b *testing.B) {
	e := benchEngine(b, max(b.N+1, 1024))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ev, err := New("/erpgate/edge-1", "erp.invoices.created", "acme", "inv_acme_0051", benchData)
		if err != nil {
			b.Fatal(err)
		}
		if !e.Publish(ev) {
			b.Fatal("dropped")
		}
	}
	b.StopTimer()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := e.Flush(ctx); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkPublishStored is the sustained pipeline on the embedded server:
// b.N events published and acknowledged by the file store (events/s).
func BenchmarkPublishStored(b *testing.B) {
	e := benchEngine(b, max(b.N+1, 1024))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		ev, err := New("/erpgate/edge-1", "erp.invoices.created", "acme", "inv_acme_0051", benchData)
		if err != nil {
			b.Fatal(err)
		}
		if !e.Publish(ev) {
			b.Fatal("dropped")
		}
	}
	if err := e.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
	if s := e.Stats(); s.Dropped > 0 || s.Published < uint64(b.N) {
		b.Fatalf("stats %+v after %d events", s, b.N)
	}
}
