package dpfinish

import (
	"net/http"
	"strings"
	"testing"

	"github.com/erpgate/erpgate/internal/demoauth"
	"github.com/erpgate/erpgate/internal/httpt"
	"github.com/erpgate/erpgate/internal/stacktest"
	"github.com/erpgate/erpgate/internal/testenv"
)

// TestMergeBaseSharedAcrossInstances: the version instance A served is the
// base of a merge instance B makes (erp_merge's store in the shared
// Redis). Each instance runs its own demo ERP, seeded alike, so an item
// has the same ETag at both until B's is changed.
func TestMergeBaseSharedAcrossInstances(t *testing.T) {
	redisURL, prefix := testenv.Redis(t)
	env := map[string]string{"ERP_REDIS_URL": redisURL, "ERP_KEY_PREFIX": prefix}
	a := stacktest.Start(t, stacktest.Options{Env: env})
	b := stacktest.Start(t, stacktest.Options{Env: env})
	ta := demoauth.Login(t, a.URL, "alice@acme.test", "acme").Access
	tb := demoauth.Login(t, b.URL, "alice@acme.test", "acme").Access

	id := firstProductID(t, httpt.Get(t, a.URL+list, demoauth.Bearer(ta)))
	// A serves version T0: its base goes to Redis
	got := httpt.Get(t, a.URL+"/api/v2/products/"+id, demoauth.Bearer(ta))
	t0 := got.Header.Get("ETag")
	if got.StatusCode != http.StatusOK || t0 == "" {
		t.Fatalf("GET at A: %d ETag %q", got.StatusCode, t0)
	}
	patch := func(ifMatch, body string) *httpt.Response {
		h := demoauth.Bearer(tb)
		h["Content-Type"] = "application/json"
		if ifMatch != "" {
			h["If-Match"] = ifMatch
			h["Prefer"] = "merge=auto"
		}
		return httpt.Do(t, http.MethodPatch, b.URL+"/api/v2/products/"+id, []byte(body), h)
	}
	// another writer changes the name at B (B never served T0)
	if r := patch("", `{"name":"Renamed at B"}`); r.StatusCode != http.StatusOK {
		t.Fatalf("PATCH at B: %d %s", r.StatusCode, r.Body)
	}
	// a client holding T0 changes the sku at B: merged with A's base
	m := patch(t0, `{"sku":"SKU-MERGED-DPF"}`)
	if m.StatusCode != http.StatusOK || !strings.Contains(string(m.Body), `"merged":true`) ||
		!strings.Contains(string(m.Body), "Renamed at B") || !strings.Contains(string(m.Body), "SKU-MERGED-DPF") {
		t.Fatalf("merge at B with A's base: %d %s", m.StatusCode, m.Body)
	}
	// a version no instance served: 412 CONFLICT unknown_base
	u := patch(`"never-served"`, `{"sku":"SKU-X"}`)
	if e := u.Envelope(t); u.StatusCode != http.StatusPreconditionFailed || e.Code() != "CONFLICT" || e.Errors[0].Context["reason"] != "unknown_base" {
		t.Fatalf("unknown base: %d %s", u.StatusCode, u.Body)
	}
}
