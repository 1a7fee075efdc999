package events

import (
	"sync"
	"testing"
	"time"
)

// TestStreamManyConnections: 200 SSE connections of one company on one
// instance all receive the one event published (the heavy version, 10,000
// idle connections with their memory, is bench/streams).
func TestStreamManyConnections(t *testing.T) {
	const n = 200
	s := startStack(t, 1)
	in := s.ins[0]
	alice := login(t, in, "alice@acme.test", "acme")
	streams := make([]*sse, n)
	for i := range streams {
		st, status, body := openSSE(t, in.URL, "", alice.Access, nil)
		if status != 200 {
			t.Fatalf("connection %d: %d %s", i, status, body)
		}
		streams[i] = st
	}
	ev := s.publish(t, "acme", "erp.invoices.created", "MANY")
	var wg sync.WaitGroup
	for i, st := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if f := st.next(t, 20*time.Second); f.cloudEvent(t).ID != ev.ID {
				t.Errorf("connection %d got %+v", i, f)
			}
		}()
	}
	wg.Wait()
}
