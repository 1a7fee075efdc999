package dpfinish

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/erpgate/erpgate/internal/demoauth"
	"github.com/erpgate/erpgate/internal/httpt"
	"github.com/erpgate/erpgate/internal/stacktest"
	"github.com/erpgate/erpgate/internal/testenv"
)

// TestIdempotencyInFlight: two instances share erp_idempotency's store
// (Redis). While a POST with a key is in flight at one (its backend holds
// the answer), the same key at the other is 409 CONFLICT with Retry-After
// and never reaches the backend; once the first answered, the retry is its
// replay.
func TestIdempotencyInFlight(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 4)
	var posts atomic.Int32
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "only POST here", http.StatusMethodNotAllowed)
			return
		}
		posts.Add(1)
		arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"id":"INV-SLOW-1","status":"draft"}`))
	}))
	t.Cleanup(backend.Close)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})

	// the invoices backend's v2 is the slow test backend
	cfg := example(t, "version v2 http://{$ERP_DEMO_LISTEN:127.0.0.1:9001}/v2", "version v2 "+backend.URL+"/v2")
	redisURL, prefix := testenv.Redis(t)
	env := map[string]string{"ERP_REDIS_URL": redisURL, "ERP_KEY_PREFIX": prefix}
	a := stacktest.Start(t, stacktest.Options{Config: cfg, Env: env})
	b := stacktest.Start(t, stacktest.Options{Config: cfg, Env: env})
	ta := demoauth.Login(t, a.URL, "alice@acme.test", "acme").Access
	tb := demoauth.Login(t, b.URL, "alice@acme.test", "acme").Access

	body := []byte(`{"customer_id":"C-1","total":{"amount":"10.00","currency":"EUR"}}`)
	headers := func(tok string) map[string]string {
		h := demoauth.Bearer(tok)
		h["Content-Type"] = "application/json"
		h["Idempotency-Key"] = "dpfinish-in-flight-1"
		return h
	}
	first := make(chan *httpt.Response, 1)
	go func() {
		first <- httpt.Do(t, http.MethodPost, a.URL+"/api/v2/invoices", body, headers(ta))
	}()
	select {
	case <-arrived:
	case <-time.After(30 * time.Second):
		t.Fatal("the first POST never reached the backend")
	}

	// in flight: 409 at the other instance, with Retry-After
	busy := httpt.Do(t, http.MethodPost, b.URL+"/api/v2/invoices", body, headers(tb))
	if e := busy.Envelope(t); busy.StatusCode != http.StatusConflict || e.Code() != "CONFLICT" || e.Errors[0].Field != "Idempotency-Key" {
		t.Fatalf("in flight: %d %s, want 409 CONFLICT", busy.StatusCode, busy.Body)
	}
	if busy.Header.Get("Retry-After") == "" {
		t.Fatalf("in flight: no Retry-After (%v)", busy.Header)
	}
	// a malformed key is refused at once, in the envelope
	bad := headers(tb)
	bad["Idempotency-Key"] = strings.Repeat("k", 300)
	if r := httpt.Do(t, http.MethodPost, b.URL+"/api/v2/invoices", body, bad); r.StatusCode != http.StatusBadRequest || r.Envelope(t).Code() != "BAD_REQUEST" {
		t.Fatalf("malformed key: %d %s", r.StatusCode, r.Body)
	}

	close(release)
	var r1 *httpt.Response
	select {
	case r1 = <-first:
	case <-time.After(30 * time.Second):
		t.Fatal("the first POST did not finish")
	}
	if r1.StatusCode != http.StatusCreated || !strings.Contains(string(r1.Body), "INV-SLOW-1") {
		t.Fatalf("first: %d %s", r1.StatusCode, r1.Body)
	}
	// answered: the retry at the other instance is its replay
	replay := httpt.Do(t, http.MethodPost, b.URL+"/api/v2/invoices", body, headers(tb))
	if replay.StatusCode != http.StatusCreated || replay.Header.Get("Idempotent-Replayed") != "true" ||
		string(replay.Envelope(t).Data) != string(r1.Envelope(t).Data) {
		t.Fatalf("replay: %d %v %s", replay.StatusCode, replay.Header, replay.Body)
	}
	if n := posts.Load(); n != 1 {
		t.Fatalf("the backend got %d POSTs, want 1", n)
	}
}
