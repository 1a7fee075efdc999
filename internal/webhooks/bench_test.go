package webhooks

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/erpgate/erpgate/internal/events"
)

// BenchmarkFanout: b.N events of one company, each delivered to every one
// of the company's endpoints (one local receiver) through the real engine:
// the stream, a durable consumer per endpoint, signing, HTTP, the attempt
// recorded. deliveries/s is the figure.
func BenchmarkFanout(b *testing.B) {
	for _, engine := range []struct {
		name string
		mk   func(testing.TB) *events.Engine
	}{{"external", testEngine}, {"embedded", embeddedEngine}} {
		for _, endpoints := range []int{1, 10} {
			b.Run(engine.name+"/endpoints="+itoa(endpoints), func(b *testing.B) {
				benchFanout(b, engine.mk(b), endpoints)
			})
		}
	}
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}

func benchFanout(b *testing.B, eng *events.Engine, endpoints int) {
	var got atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	b.Cleanup(srv.Close)
	m := startManager(b, eng, Config{Logger: zap.NewNop(), MaxEndpoints: endpoints})
	for range endpoints {
		create(b, m, "acme", srv.URL, "erp.*")
	}
	evs := make([]*events.Event, b.N)
	for i := range evs {
		evs[i], _ = events.New("/erpgate/bench", "erp.invoices.created", "acme", "inv", map[string]int{"n": i})
	}
	want := int64(endpoints * b.N)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for _, ev := range evs {
		eng.Publish(ev)
	}
	for got.Load() < want {
		time.Sleep(time.Millisecond)
		if time.Since(start) > 5*time.Minute {
			b.Fatalf("%d of %d deliveries", got.Load(), want)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(want)/time.Since(start).Seconds(), "deliveries/s")
}
