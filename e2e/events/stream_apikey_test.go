package events

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/httpt"
)

// TestStreamAPIKey: an API key streams its company's events within its
// own scope (invoices:read: customer events are not sent, asking for them
// is 403), and its streams end within 2 s of its revocation on both
// instances with TOKEN_REVOKED.
func TestStreamAPIKey(t *testing.T) {
	s := startStack(t, 2)
	a, b := s.ins[0], s.ins[1]
	alice := login(t, a, "alice@acme.test", "acme")
	r := httpt.Do(t, http.MethodPost, a.URL+"/api/v1/auth/api-keys", httpt.JSON(t, map[string]any{"name": "stream", "scope": []string{"invoices:read"}}),
		map[string]string{"Authorization": "Bearer " + alice.Access})
	var key struct {
		ID  string `json:"id"`
		Key string `json:"key"`
	}
	if r.StatusCode/100 != 2 || json.Unmarshal(r.Envelope(t).Data, &key) != nil || key.Key == "" {
		t.Fatalf("create key: %d %s", r.StatusCode, r.Body)
	}
	hdr := map[string]string{"X-API-Key": key.Key}
	if _, status, body := openSSE(t, a.URL, "?types=erp.customers.*", "", hdr); status != 403 || decode(t, body).Code() != contract.CodeForbidden {
		t.Fatalf("customers with an invoices key: %d %s", status, body)
	}
	onA, _, _ := openSSE(t, a.URL, "", "", hdr)
	onB, _, _ := openSSE(t, b.URL, "", "", hdr)
	s.publish(t, "acme", "erp.customers.created", "C1")
	inv := s.publish(t, "acme", "erp.invoices.created", "I1")
	for name, st := range map[string]*sse{"A": onA, "B": onB} {
		if f := st.next(t, 10*time.Second); f.cloudEvent(t).ID != inv.ID {
			t.Fatalf("key's stream on %s: %+v", name, f)
		}
	}

	r = httpt.Do(t, http.MethodDelete, a.URL+"/api/v1/auth/api-keys/"+key.ID, nil, map[string]string{"Authorization": "Bearer " + alice.Access})
	if r.StatusCode/100 != 2 {
		t.Fatalf("revoke: %d %s", r.StatusCode, r.Body)
	}
	start := time.Now()
	for name, st := range map[string]*sse{"A": onA, "B": onB} {
		if e := decodeError(t, st.next(t, revokeBound)); e.Code != contract.CodeTokenRevoked {
			t.Fatalf("on %s: %+v", name, e)
		}
		st.waitClosed(t, time.Second)
		t.Logf("the key's stream on %s ended %s after the revocation answered", name, time.Since(start).Round(time.Millisecond))
	}
}
