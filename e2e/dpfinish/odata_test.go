package dpfinish

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/erpgate/erpgate/internal/demoauth"
	"github.com/erpgate/erpgate/internal/httpt"
	"github.com/erpgate/erpgate/internal/stacktest"
)

// TestODataETags: the OData ledger's entity tags work as a REST backend's:
// the ETag header on reads and on a PATCH answer (lifted from
// @odata.etag), If-None-Match and If-Match passed through, a stale
// If-Match a 409 CONFLICT.
func TestODataETags(t *testing.T) {
	a := stacktest.Start(t, stacktest.Options{})
	tok := demoauth.Login(t, a.URL, "alice@acme.test", "acme").Access
	lr := httpt.Get(t, a.URL+"/api/v1/ledger?limit=1", demoauth.Bearer(tok))
	var entries []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(lr.Envelope(t).Data, &entries); err != nil || len(entries) == 0 {
		t.Fatalf("ledger: %v %s", err, lr.Body)
	}
	item := a.URL + "/api/v1/ledger/" + entries[0].ID

	r := httpt.Get(t, item, demoauth.Bearer(tok))
	tag := r.Header.Get("ETag")
	if r.StatusCode != http.StatusOK || len(tag) < 3 || tag[0] != '"' {
		t.Fatalf("GET: %d ETag %q %s", r.StatusCode, tag, r.Body)
	}
	if strings.Contains(string(r.Body), "@odata") {
		t.Fatalf("annotations in data: %s", r.Body)
	}
	// If-None-Match reaches the service: not modified
	h := demoauth.Bearer(tok)
	h["If-None-Match"] = tag
	if r := httpt.Get(t, item, h); r.StatusCode != http.StatusNotModified {
		t.Fatalf("If-None-Match current: %d %s", r.StatusCode, r.Body)
	}

	patch := func(ifMatch, body string) *httpt.Response {
		h := demoauth.Bearer(tok)
		h["Content-Type"] = "application/json"
		if ifMatch != "" {
			h["If-Match"] = ifMatch
		}
		return httpt.Do(t, http.MethodPatch, item, []byte(body), h)
	}
	// a stale version: 409 CONFLICT, nothing changed
	stale := patch(`"not-the-version"`, `{"description":"stale write"}`)
	if e := stale.Envelope(t); stale.StatusCode != http.StatusPreconditionFailed || e.Code() != "CONFLICT" {
		t.Fatalf("stale If-Match: %d %s, want 412 CONFLICT", stale.StatusCode, stale.Body)
	}
	// the current version: changed; the new version in the ETag header
	ok := patch(tag, `{"description":"Reconciled by dpfinish"}`)
	newTag := ok.Header.Get("ETag")
	if ok.StatusCode != http.StatusOK || newTag == "" || newTag == tag || !strings.Contains(string(ok.Body), "Reconciled by dpfinish") {
		t.Fatalf("PATCH: %d ETag %q (was %q) %s", ok.StatusCode, newTag, tag, ok.Body)
	}
	if strings.Contains(string(ok.Body), "@odata") {
		t.Fatalf("annotations in data: %s", ok.Body)
	}
	// the lifted tag is the one the service compares: the old one is stale now
	if r := patch(tag, `{"status":"draft"}`); r.StatusCode != http.StatusPreconditionFailed || r.Envelope(t).Code() != "CONFLICT" {
		t.Fatalf("old If-Match after the change: %d %s", r.StatusCode, r.Body)
	}
	if r := httpt.Get(t, item, demoauth.Bearer(tok)); r.Header.Get("ETag") != newTag {
		t.Fatalf("GET after PATCH: ETag %q, PATCH said %q", r.Header.Get("ETag"), newTag)
	}
	// bad input: a read-only property, in the envelope
	bad := patch(newTag, `{"amount": 1}`)
	if e := bad.Envelope(t); bad.StatusCode != http.StatusBadRequest || e.Errors[0].Field != "amount" {
		t.Fatalf("read-only property: %d %s", bad.StatusCode, bad.Body)
	}
}
