package events

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/erpgate/erpgate/internal/demoauth"
)

// clReceiver is a webhook receiver counting the erp.invoices.created
// deliveries it got, by event source and resource id.
type clReceiver struct {
	*httptest.Server
	mu       sync.Mutex
	got      map[string]int
	unsigned int
}

func clNewReceiver(t *testing.T) *clReceiver {
	t.Helper()
	rc := &clReceiver{got: map[string]int{}}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		var ev struct {
			Type, Source, Subject string
		}
		_ = json.Unmarshal(body, &ev)
		rc.mu.Lock()
		if !strings.HasPrefix(r.Header.Get("webhook-signature"), "v1,") || r.Header.Get("webhook-id") == "" {
			rc.unsigned++
		}
		if ev.Type == "erp.invoices.created" {
			rc.got[ev.Source+" "+ev.Subject]++
		}
		rc.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *clReceiver) seen() map[string]int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := make(map[string]int, len(rc.got))
	for k, v := range rc.got {
		out[k] = v
	}
	return out
}

// TestClusterLeaderKilledUnderLoad: two edges write without pause while
// the stream's leader is killed. Every write an edge answered has its event
// in the stream and at acme's webhook endpoint (at least once), and both go
// on after the kill and after the node's restart. (One stack for the
// stream and the webhooks: a three-node cluster and two edges are the
// slowest thing this package starts.)
func TestClusterLeaderKilledUnderLoad(t *testing.T) {
	t.Parallel()
	s := clStart(t, 2, map[string]string{
		"ERP_WEBHOOK_ALLOW_PRIVATE": "1", // the receiver is on loopback
		"ERP_WEBHOOK_BACKOFF":       "1s 1s 1s 1s 1s 1s 1s",
	})
	token := demoauth.Login(t, s.edges[0].URL, "alice@acme.test", "acme").Access
	rc := clNewReceiver(t)
	req, err := http.NewRequest(http.MethodPost, s.edges[0].URL+"/api/v1/webhooks",
		strings.NewReader(`{"url":"`+rc.URL+`/hook","events":["erp.invoices.*"],"description":"cluster test"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := clClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create webhook: %d %s", resp.StatusCode, b)
	}
	inStream := s.clWatch(t)

	writes, leader := s.clLoad(t, token)
	// generous bounds: a publish in flight at the kill waits for its ack
	// timeout, then is resent; a delivery refused meanwhile is retried
	clWaitAll(t, "stream", writes, inStream, 30*time.Second)
	clWaitAll(t, "webhook deliveries", writes, rc.seen, 45*time.Second)

	// The cluster takes the killed node back; writes still make events.
	s.nats.Restart(leader)
	id, status, body, err := clCreate(s.edges[1], token)
	if err != nil || id == "" {
		t.Fatalf("write after the restart: %d %v %s", status, err, body)
	}
	after := []clWrite{{source: clSource(t, s.edges[1]), id: id}}
	clWaitAll(t, "stream after the restart", after, inStream, 10*time.Second)
	clWaitAll(t, "webhook after the restart", after, rc.seen, 15*time.Second)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.unsigned > 0 {
		t.Fatalf("%d deliveries without webhook-id or a v1 signature", rc.unsigned)
	}
}
