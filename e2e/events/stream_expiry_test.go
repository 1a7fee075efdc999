package events

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/events"
	"github.com/erpgate/erpgate/internal/stacktest"
	"github.com/erpgate/erpgate/internal/testenv"
)

// TestStreamExpiry: a stream ends within 2 s after its access token
// expires — SSE with a final `event: error` TOKEN_EXPIRED, WebSocket with
// close code 4401 — and an event published before that still arrives.
// Access tokens live 4 s here (the auth service's access_ttl).
func TestStreamExpiry(t *testing.T) {
	const ttl = 4 * time.Second
	prefix := testenv.Name() + ":"
	natsURL := testenv.NATSURL(t)
	cfg := stacktest.ExampleConfig(t)
	if !strings.Contains(cfg, "\t\tauthsvc {\n") {
		t.Fatal("Caddyfile.example no longer has the authsvc block")
	}
	cfg = strings.Replace(cfg, "\t\tauthsvc {\n", "\t\tauthsvc {\n\t\t\taccess_ttl 4s\n", 1)
	names := events.NamesFor(prefix)
	eng, err := events.Open(context.Background(), events.Config{URL: natsURL, Names: names})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = eng.JetStream().DeleteStream(context.Background(), names.Stream)
		eng.Close()
	})
	in := stacktest.Start(t, stacktest.Options{Config: cfg, Env: map[string]string{"ERP_NATS_URL": natsURL, "ERP_KEY_PREFIX": prefix}})
	s := &stack{names: names, engine: eng, ins: []*stacktest.Instance{in}}

	alice := login(t, in, "alice@acme.test", "acme")
	issued := time.Now() // the token expires at most ttl from here
	st, status, body := openSSE(t, in.URL, "?types=erp.invoices.*", alice.Access, nil)
	if status != 200 {
		t.Fatalf("SSE: %d %s", status, body)
	}
	ws, _, err := dialWS(t, in.URL, "?types=erp.invoices.*", alice.Access)
	if err != nil {
		t.Fatal(err)
	}
	ev := s.publish(t, "acme", "erp.invoices.created", "EXP-1")
	if f := st.next(t, ttl); f.cloudEvent(t).ID != ev.ID {
		t.Fatalf("SSE before expiry: %+v", f)
	}
	if f := ws.next(t, ttl); f.cloudEvent(t).ID != ev.ID {
		t.Fatalf("WebSocket before expiry: %+v", f)
	}
	f := st.next(t, ttl+revokeBound)
	if e := decodeError(t, f); e.Code != contract.CodeTokenExpired {
		t.Fatalf("SSE final error %+v, want TOKEN_EXPIRED", e)
	}
	st.waitClosed(t, time.Second)
	code, reason := ws.closeStatus(t, ttl+revokeBound-time.Since(issued)+time.Second)
	if code != 4401 || reason != contract.CodeTokenExpired {
		t.Fatalf("WebSocket closed with %d %q, want 4401 TOKEN_EXPIRED", code, reason)
	}
	if took := time.Since(issued); took > ttl+revokeBound+time.Second {
		t.Fatalf("the streams ended %s after the token was issued (lifetime %s)", took, ttl)
	}
	t.Logf("streams ended %s after the token was issued (lifetime %s)", time.Since(issued).Round(time.Millisecond), ttl)
}
