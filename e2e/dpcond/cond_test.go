// Package dpcond drives ETags, conditional requests and erp_merge's
// three-way merge through the running
// gateway binary on Caddyfile.example, against the demo ERP.
package dpcond

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/erpgate/erpgate/internal/demoauth"
	"github.com/erpgate/erpgate/internal/httpt"
	"github.com/erpgate/erpgate/internal/stacktest"
)

func with(h map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range h {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

func data(t *testing.T, r *httpt.Response) map[string]any {
	t.Helper()
	e := r.Envelope(t)
	var m map[string]any
	if err := json.Unmarshal(e.Data, &m); err != nil {
		t.Fatalf("data of %s: %v", r.Body, err)
	}
	return m
}

func TestConcurrentUpdates(t *testing.T) {
	in := stacktest.Start(t, stacktest.Options{Config: stacktest.ExampleConfig(t)})
	auth := demoauth.Bearer(demoauth.Login(t, in.URL, "alice@acme.test", "acme").Access)
	url := func(p string) string { return in.URL + "/api/v1/" + p }
	body := func(s string) []byte { return []byte(s) }
	ct := "Content-Type"

	// ETags on item answers; If-None-Match → 304 with no body
	get := httpt.Get(t, url("customers/cus_acme_001"), auth)
	tag := get.Header.Get("ETag")
	if get.StatusCode != 200 || !strings.HasPrefix(tag, `"`) || !get.Envelope(t).Success {
		t.Fatalf("GET: %d ETag %q %s", get.StatusCode, tag, get.Body)
	}
	original := data(t, get)
	nm := httpt.Get(t, url("customers/cus_acme_001"), with(auth, "If-None-Match", tag))
	if nm.StatusCode != http.StatusNotModified || len(nm.Body) != 0 || nm.Header.Get("ETag") != tag {
		t.Fatalf("If-None-Match: %d %q %s", nm.StatusCode, nm.Header.Get("ETag"), nm.Body)
	}

	// another writer changes the name: the new version has another ETag
	other := httpt.Do(t, http.MethodPatch, url("customers/cus_acme_001"), body(`{"name":"Renamed Co"}`), with(auth, ct, "application/json", "If-Match", tag))
	newTag := other.Header.Get("ETag")
	if other.StatusCode != 200 || newTag == "" || newTag == tag {
		t.Fatalf("PATCH with If-Match: %d %q %s", other.StatusCode, newTag, other.Body)
	}

	// a stale If-Match: 412 CONFLICT
	stale := httpt.Do(t, http.MethodPatch, url("customers/cus_acme_001"), body(`{"email":"x@example.com"}`), with(auth, ct, "application/json", "If-Match", tag))
	if e := stale.Envelope(t); stale.StatusCode != http.StatusPreconditionFailed || e.Code() != "CONFLICT" {
		t.Fatalf("stale If-Match: %d %s", stale.StatusCode, stale.Body)
	}

	// merge without conflict: both changes kept, meta.merged
	patch := `{"email":"billing@acme.example","name":` + mustJSON(original["name"]) + `}`
	m := httpt.Do(t, http.MethodPatch, url("customers/cus_acme_001"), body(patch), with(auth, ct, "application/json", "If-Match", tag, "Prefer", "merge=auto"))
	if m.StatusCode != 200 || !strings.Contains(string(m.Body), `"merged":true`) {
		t.Fatalf("merge: %d %s", m.StatusCode, m.Body)
	}
	if d := data(t, m); d["name"] != "Renamed Co" || d["email"] != "billing@acme.example" {
		t.Fatalf("merged answer %s", m.Body)
	}
	if d := data(t, httpt.Get(t, url("customers/cus_acme_001"), auth)); d["name"] != "Renamed Co" || d["email"] != "billing@acme.example" {
		t.Fatalf("REST after the merge: %v", d)
	}

	// a conflict on one field: 409 with field and context
	c := httpt.Do(t, http.MethodPatch, url("customers/cus_acme_001"), body(`{"name":"Mine"}`), with(auth, ct, "application/json", "If-Match", tag, "Prefer", "merge=auto"))
	e := c.Envelope(t)
	if c.StatusCode != http.StatusConflict || len(e.Errors) != 1 || e.Code() != "CONFLICT" || e.Errors[0].Field != "name" ||
		e.Errors[0].Context["base"] != original["name"] || e.Errors[0].Context["current"] != "Renamed Co" || e.Errors[0].Context["proposed"] != "Mine" {
		t.Fatalf("conflict: %d %s", c.StatusCode, c.Body)
	}

	// an unknown base: 412 CONFLICT
	u := httpt.Do(t, http.MethodPatch, url("customers/cus_acme_001"), body(`{"name":"Mine"}`), with(auth, ct, "application/json", "If-Match", `"never-served"`, "Prefer", "merge=auto"))
	if e := u.Envelope(t); u.StatusCode != http.StatusPreconditionFailed || e.Code() != "CONFLICT" || e.Errors[0].Context["reason"] != "unknown_base" {
		t.Fatalf("unknown base: %d %s", u.StatusCode, u.Body)
	}

	// a deleted resource: 404
	pg := httpt.Get(t, url("products/prd_acme_002"), auth)
	ptag := pg.Header.Get("ETag")
	if pg.StatusCode != 200 || ptag == "" {
		t.Fatalf("GET product: %d %s", pg.StatusCode, pg.Body)
	}
	if d := httpt.Do(t, http.MethodDelete, url("products/prd_acme_002"), nil, with(auth, "If-Match", ptag)); d.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE: %d %s", d.StatusCode, d.Body)
	}
	gone := httpt.Do(t, http.MethodPatch, url("products/prd_acme_002"), body(`{"stock":3}`), with(auth, ct, "application/json", "If-Match", ptag, "Prefer", "merge=auto"))
	if e := gone.Envelope(t); gone.StatusCode != http.StatusNotFound || e.Code() != "NOT_FOUND" {
		t.Fatalf("deleted: %d %s", gone.StatusCode, gone.Body)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
