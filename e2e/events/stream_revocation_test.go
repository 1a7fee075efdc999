package events

import (
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/httpt"
)

// revokeBound is the bound: a connection ends within 2 s of its
// token's revocation, on every instance.
const revokeBound = 2 * time.Second

// TestStreamRevocation: two gateways on one Redis, Postgres and NATS. A
// session's SSE and WebSocket streams, open on both, end within 2 s of its
// logout at one of them: SSE with a final `event: error` TOKEN_REVOKED,
// WebSocket with close code 4401. Another session's streams go on.
func TestStreamRevocation(t *testing.T) {
	s := startStack(t, 2)
	a, b := s.ins[0], s.ins[1]
	alice := login(t, a, "alice@acme.test", "acme")
	other := login(t, b, "alice@acme.test", "acme") // another session of the same user

	// business events only: the logout's own auth event (erp.auth.session.revoked,
	// which alice as acme's admin may read) must not come before the final error
	q := "?types=erp.invoices.*"
	sseA, _, _ := openSSE(t, a.URL, q, alice.Access, nil)
	sseB, _, _ := openSSE(t, b.URL, q, alice.Access, nil)
	wsB, _, err := dialWS(t, b.URL, q, alice.Access)
	if err != nil {
		t.Fatal(err)
	}
	keep, _, _ := openSSE(t, b.URL, q, other.Access, nil)

	// all four are live
	ev := s.publish(t, "acme", "erp.invoices.created", "INV-R")
	for name, next := range map[string]func(*testing.T, time.Duration) frame{"SSE on A": sseA.next, "SSE on B": sseB.next, "WebSocket on B": wsB.next, "other session": keep.next} {
		t.Logf("%s", name)
		if f := next(t, 10*time.Second); f.cloudEvent(t).ID != ev.ID {
			t.Fatalf("%s before logout: %+v", name, f)
		}
	}

	r := httpt.Do(t, http.MethodPost, a.URL+"/api/v1/auth/logout", []byte(`{}`), map[string]string{"Authorization": "Bearer " + alice.Access})
	if r.StatusCode != http.StatusOK && r.StatusCode != http.StatusNoContent {
		t.Fatalf("logout: %d %s", r.StatusCode, r.Body)
	}
	start := time.Now()
	var wg sync.WaitGroup
	for name, st := range map[string]*sse{"A": sseA, "B": sseB} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f := st.next(t, revokeBound)
			if e := decodeError(t, f); e.Code != contract.CodeTokenRevoked || e.Message == "" {
				t.Errorf("SSE on %s: final error %+v", name, e)
			}
			st.waitClosed(t, revokeBound-time.Since(start)+100*time.Millisecond)
			t.Logf("SSE on instance %s ended %s after the logout answered", name, time.Since(start).Round(time.Millisecond))
		}()
	}
	code, reason := wsB.closeStatus(t, revokeBound)
	if code != 4401 || reason != contract.CodeTokenRevoked {
		t.Fatalf("WebSocket on B closed with %d %q, want 4401 TOKEN_REVOKED", code, reason)
	}
	t.Logf("WebSocket on instance B closed %s after the logout answered", time.Since(start).Round(time.Millisecond))
	wg.Wait()

	// the other session's stream goes on; the revoked token can't open a new one
	ev = s.publish(t, "acme", "erp.invoices.updated", "INV-R")
	if f := keep.next(t, 10*time.Second); f.cloudEvent(t).ID != ev.ID {
		t.Fatalf("other session's stream: %+v", f)
	}
	if _, status, body := openSSE(t, b.URL, "", alice.Access, nil); status != 401 || decode(t, body).Code() != contract.CodeTokenRevoked {
		t.Fatalf("revoked token reopening: %d %s", status, body)
	}
}

// TestStreamWebSocket: the WebSocket carries the same events as SSE
// (`{"id", "event"}`), resumes with ?last_event_id=, and refuses what SSE
// refuses before the upgrade.
func TestStreamWebSocket(t *testing.T) {
	s := startStack(t, 1)
	in := s.ins[0]
	alice := login(t, in, "alice@acme.test", "acme")
	w, _, err := dialWS(t, in.URL, "?types=erp.invoices.*", alice.Access)
	if err != nil {
		t.Fatal(err)
	}
	sse, _, _ := openSSE(t, in.URL, "?types=erp.invoices.*", alice.Access, nil)
	var ids []string
	for i := 0; i < 3; i++ {
		ids = append(ids, s.publish(t, "acme", "erp.invoices.created", "W"+strconv.Itoa(i)).ID)
		s.publish(t, "acme", "erp.customers.created", "C"+strconv.Itoa(i))
		s.publish(t, "globex", "erp.invoices.created", "G"+strconv.Itoa(i))
	}
	var last frame
	for i := 0; i < 3; i++ {
		last = w.next(t, 10*time.Second)
		f := sse.next(t, 10*time.Second)
		if last.cloudEvent(t).ID != ids[i] || f.ID != last.ID || f.Data != last.Data {
			t.Fatalf("message %d: WS %+v, SSE %+v", i, last, f)
		}
	}
	_ = w.c.Close(websocket.StatusNormalClosure, "")
	later := s.publish(t, "acme", "erp.invoices.updated", "W3").ID
	re, _, err := dialWS(t, in.URL, "?types=erp.invoices.*&last_event_id="+last.ID, alice.Access)
	if err != nil {
		t.Fatal(err)
	}
	if f := re.next(t, 10*time.Second); f.cloudEvent(t).ID != later {
		t.Fatalf("resumed WebSocket: %+v", f)
	}
	live := s.publish(t, "acme", "erp.invoices.deleted", "W4").ID
	if f := re.next(t, 10*time.Second); f.cloudEvent(t).ID != live {
		t.Fatalf("resumed WebSocket, live: %+v", f)
	}

	for _, tc := range []struct {
		name, query, token string
		status             int
	}{
		{"no credential", "", "", 401},
		{"bad types", "?types=erp..x", alice.Access, 400},
		{"bad last_event_id", "?last_event_id=x", alice.Access, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, resp, err := dialWS(t, in.URL, tc.query, tc.token)
			if err == nil || resp == nil || resp.StatusCode != tc.status {
				t.Fatalf("dial: %v %v", err, resp)
			}
		})
	}
}
