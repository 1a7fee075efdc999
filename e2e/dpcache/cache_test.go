// Package dpcache drives erp_cache through the running gateway binary on
// Caddyfile.example with ERP_CACHE_TTL set: MISS then HIT, no sharing
// across companies or scope sets, a write through the edge invalidating,
// the client's Cache-Control, and two instances sharing through Redis.
package dpcache

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/erpgate/erpgate/internal/demoauth"
	"github.com/erpgate/erpgate/internal/httpt"
	"github.com/erpgate/erpgate/internal/stacktest"
	"github.com/erpgate/erpgate/internal/testenv"
)

const list = "/api/v2/products?sort=sku&limit=3"

// start runs Caddyfile.example with the cache on, in Redis under prefix.
func start(t *testing.T, prefix string) *stacktest.Instance {
	t.Helper()
	return stacktest.Start(t, stacktest.Options{Env: map[string]string{
		"ERP_CACHE_TTL":  "30s",
		"ERP_REDIS_URL":  testenv.RedisURL(),
		"ERP_KEY_PREFIX": prefix,
	}})
}

func newPrefix(t *testing.T) string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "dpcache" + hex.EncodeToString(b) + ":"
}

// get is a GET with a bearer token and extra headers; it checks 200.
func get(t *testing.T, url, token string, extra map[string]string) *httpt.Response {
	t.Helper()
	h := demoauth.Bearer(token)
	for k, v := range extra {
		h[k] = v
	}
	resp := httpt.Get(t, url, h)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, resp.Body)
	}
	return resp
}

func xcache(t *testing.T, what string, r *httpt.Response, want string) {
	t.Helper()
	if got := r.Header.Get("X-Cache"); got != want {
		t.Fatalf("%s: X-Cache %q, want %q (%s)", what, got, want, r.Body)
	}
}

func TestCache(t *testing.T) {
	prefix := newPrefix(t)
	a := start(t, prefix)
	bobGlobex := demoauth.Login(t, a.URL, "bob@globex.test", "globex").Access   // accountant
	aliceGlobex := demoauth.Login(t, a.URL, "alice@acme.test", "globex").Access // viewer: fewer scopes
	aliceAcme := demoauth.Login(t, a.URL, "alice@acme.test", "acme").Access     // admin

	// MISS, then HIT with the same data and a fresh envelope meta
	first := get(t, a.URL+list, bobGlobex, nil)
	xcache(t, "first", first, "MISS")
	second := get(t, a.URL+list, bobGlobex, nil)
	xcache(t, "second", second, "HIT")
	e1, e2 := first.Envelope(t), second.Envelope(t)
	if string(e1.Data) != string(e2.Data) || len(e1.Data) < 10 {
		t.Fatalf("hit data differs:\n%s\n%s", e1.Data, e2.Data)
	}
	if e1.Meta.RequestID == e2.Meta.RequestID || e2.Meta.RequestID == "" {
		t.Fatalf("hit reused the request id %q", e2.Meta.RequestID)
	}
	// the query's parameter order does not split the entry
	xcache(t, "reordered query", get(t, a.URL+"/api/v2/products?limit=3&sort=sku", bobGlobex, nil), "HIT")

	// a caller of the same company with other scopes does not share it
	xcache(t, "fewer scopes", get(t, a.URL+list, aliceGlobex, nil), "MISS")
	xcache(t, "fewer scopes again", get(t, a.URL+list, aliceGlobex, nil), "HIT")

	// another company never gets it
	acme := get(t, a.URL+list, aliceAcme, nil)
	xcache(t, "other company", acme, "MISS")
	if ea := acme.Envelope(t); ea.Meta.CompanyID != "acme" || string(ea.Data) == string(e1.Data) {
		t.Fatalf("acme got globex's answer: %s %s", ea.Meta.CompanyID, ea.Data)
	}

	// Cache-Control from the client: no-cache refreshes, no-store bypasses
	xcache(t, "no-cache", get(t, a.URL+list, bobGlobex, map[string]string{"Cache-Control": "no-cache"}), "MISS")
	xcache(t, "after no-cache", get(t, a.URL+list, bobGlobex, nil), "HIT")
	xcache(t, "no-store", get(t, a.URL+list, bobGlobex, map[string]string{"Cache-Control": "no-store"}), "")

	// a write through the edge invalidates the company's entries of the backend
	xcache(t, "acme before write", get(t, a.URL+list, aliceAcme, nil), "HIT")
	var items []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(acme.Envelope(t).Data, &items); err != nil || len(items) == 0 {
		t.Fatalf("acme products: %v %s", err, acme.Body)
	}
	h := demoauth.Bearer(aliceAcme)
	h["Content-Type"] = "application/json"
	patch := httpt.Do(t, http.MethodPatch, a.URL+"/api/v2/products/"+items[0].ID, []byte(`{"name":"Renamed by dpcache"}`), h)
	if patch.StatusCode/100 != 2 {
		t.Fatalf("PATCH: %d %s", patch.StatusCode, patch.Body)
	}
	after := get(t, a.URL+list, aliceAcme, nil)
	xcache(t, "after write", after, "MISS")
	if !json.Valid(after.Body) || !strings.Contains(string(after.Body), "Renamed by dpcache") {
		t.Fatalf("after write: stale answer %s", after.Body)
	}
	// other companies' entries stay
	xcache(t, "globex after acme's write", get(t, a.URL+list, bobGlobex, nil), "HIT")

	// a second instance shares the entries through Redis
	b := start(t, prefix)
	bobAtB := demoauth.Login(t, b.URL, "bob@globex.test", "globex").Access
	xcache(t, "second instance", get(t, b.URL+list, bobAtB, nil), "HIT")
}
