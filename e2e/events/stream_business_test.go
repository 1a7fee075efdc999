package events

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/erpgate/erpgate/internal/httpt"
)

// TestStreamBusinessEvents: an invoice created through the edge reaches
// its company's SSE stream and WebSocket as erp.invoices.created within
// 2 s, with the answer's data, and never the other company's stream.
func TestStreamBusinessEvents(t *testing.T) {
	s := startStack(t, 1)
	in := s.ins[0]
	alice := login(t, in, "alice@acme.test", "acme")
	bob := login(t, in, "bob@globex.test", "globex")
	acme, _, _ := openSSE(t, in.URL, "?types=erp.invoices.*", alice.Access, nil)
	w, _, err := dialWS(t, in.URL, "?types=erp.invoices.created", alice.Access)
	if err != nil {
		t.Fatal(err)
	}
	globex, _, _ := openSSE(t, in.URL, "", bob.Access, nil)

	began := time.Now()
	resp := httpt.Do(t, http.MethodPost, in.URL+"/api/v2/invoices", []byte(`{"customer_id":"cus_acme_001","total":{"amount":"12.50","currency":"EUR"}}`),
		map[string]string{"Authorization": "Bearer " + alice.Access})
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, resp.Body)
	}
	var created struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(resp.Envelope(t).Data, &created); err != nil || created.ID == "" {
		t.Fatalf("create answer: %s", resp.Body)
	}
	for name, f := range map[string]frame{"SSE": acme.next(t, 2*time.Second), "WebSocket": w.next(t, 2*time.Second)} {
		e := f.cloudEvent(t)
		var data struct {
			ID string `json:"id"`
		}
		if f.Event != "erp.invoices.created" || e.Type != "erp.invoices.created" || e.CompanyID != "acme" || e.Subject != created.ID ||
			json.Unmarshal(e.Data, &data) != nil || data.ID != created.ID {
			t.Fatalf("%s: %+v", name, f)
		}
	}
	t.Logf("erp.invoices.created on the streams %s after the request began", time.Since(began).Round(time.Millisecond))
	globex.none(t, time.Second)
}
