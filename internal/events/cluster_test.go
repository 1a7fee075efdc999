package events

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/erpgate/erpgate/internal/natstest"
	"github.com/erpgate/erpgate/internal/testenv"
)

// TestClusterLeaderKilled publishes without pause on a 3-node cluster
// (stream R3), kills the stream's leader with SIGKILL mid-load and keeps
// publishing: every event Publish accepted is in the stream afterwards
// (JetStream dedups the retries by event id), none lost, and events
// published after the kill arrive.
func TestClusterLeaderKilled(t *testing.T) {
	c := natstest.Start(t, 3)
	names := NamesFor(testenv.Name())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e, err := Open(ctx, Config{URL: c.URLs(), Names: names, Replicas: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	leader, err := c.StreamLeader(ctx, e.JetStream(), names.Stream)
	if err != nil {
		t.Fatal(err)
	}

	var (
		mu       sync.Mutex
		accepted = map[string]bool{}
		afterIDs []string
		killed   atomic.Bool
		stop     = make(chan struct{})
		wg       sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			ev, err := New("/erpgate/test", "erp.invoices.created", "acme", "inv", map[string]int{"n": i})
			if err != nil {
				t.Error(err)
				return
			}
			after := killed.Load()
			if !e.Publish(ev) {
				t.Errorf("event %d dropped (queue full)", i)
				return
			}
			mu.Lock()
			accepted[ev.ID] = true
			if after {
				afterIDs = append(afterIDs, ev.ID)
			}
			mu.Unlock()
			time.Sleep(time.Millisecond)
		}
	}()
	time.Sleep(time.Second)
	c.Kill(leader)
	killed.Store(true)
	t.Logf("killed stream leader %s", c.Nodes[leader].Name)
	time.Sleep(3 * time.Second)
	close(stop)
	wg.Wait()

	flushCtx, cancelFlush := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancelFlush()
	if err := e.Flush(flushCtx); err != nil {
		t.Fatalf("flush after the kill: %v (stats %+v)", err, e.Stats())
	}
	mu.Lock()
	defer mu.Unlock()
	// Flush returned: every accepted event was acknowledged, retried
	// ones included.
	if st := e.Stats(); st.Published < uint64(len(accepted)) || st.Queued != 0 {
		t.Fatalf("after Flush: stats %+v, %d events accepted", st, len(accepted))
	}
	if len(afterIDs) == 0 {
		t.Fatal("nothing published after the kill")
	}
	seen := readAll(t, e, names, len(accepted))
	var lost int
	for id := range accepted {
		if !seen[id] {
			lost++
		}
	}
	t.Logf("accepted %d events (%d after the kill), stream holds %d distinct; stats %+v", len(accepted), len(afterIDs), len(seen), e.Stats())
	if lost > 0 {
		t.Fatalf("%d of %d accepted events are not in the stream", lost, len(accepted))
	}
	if _, err := e.JetStream().Stream(ctx, names.Stream); err == nil {
		_ = e.JetStream().DeleteStream(context.Background(), names.Stream)
	}
}

// readAll reads the stream from the start with an ordered consumer until
// it saw want distinct ids or a minute has passed. The killed node may have
// been the meta leader, and a replica may still be catching up: a consumer
// that can't be made, a fetch that fails or comes back empty is tried again
// (a new ordered consumer from the start) rather than taken as the answer.
func readAll(t *testing.T, e *Engine, names Names, want int) map[string]bool {
	t.Helper()
	seen := map[string]bool{}
	var last error
	for deadline := time.Now().Add(time.Minute); len(seen) < want && time.Now().Before(deadline); {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		cons, err := e.JetStream().OrderedConsumer(ctx, names.Stream, jetstream.OrderedConsumerConfig{})
		cancel()
		if err != nil {
			last = err
			time.Sleep(500 * time.Millisecond)
			continue
		}
		for len(seen) < want {
			batch, err := cons.Fetch(500, jetstream.FetchMaxWait(3*time.Second))
			if err != nil {
				last = err
				break
			}
			n := 0
			for m := range batch.Messages() {
				n++
				var ev Event
				if err := json.Unmarshal(m.Data(), &ev); err != nil {
					t.Fatalf("stream message: %v", err)
				}
				seen[ev.ID] = true
			}
			if n == 0 {
				break // nothing more from this consumer: a new one reads again from the start
			}
		}
	}
	if len(seen) < want && last != nil {
		t.Logf("reading the stream: last error %v", last)
	}
	return seen
}
