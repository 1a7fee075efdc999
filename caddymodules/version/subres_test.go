package version

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/erpgate/erpgate/caddymodules/internal/subres"
	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/envelope"
)

// A request for /api/{v}/{backend}/export or /import is not rewritten for the
// backend: it carries a subres.Route with the collection's target instead.
func TestSubResourceIsHandedOver(t *testing.T) {
	h := newHandler(t, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	for _, c := range []struct{ path, op, backend, version, resource string }{
		{"/api/v2/invoices/export?format=csv", subres.OpExport, "invoices", "v2", "/invoices"},
		{"/api/v1/ledger/import", subres.OpImport, "ledger", "v1", "/LedgerEntries"},
	} {
		r := httptest.NewRequest(http.MethodGet, c.path, nil)
		r = r.WithContext(context.WithValue(r.Context(), caddyhttp.VarsCtxKey, map[string]any{}))
		caddyhttp.NewTestReplacer(r)
		var got *subres.Route
		var path string
		next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			got, path = subres.Claim(r, c.op), r.URL.Path
			if subres.Claim(r, "other") != nil {
				t.Error("claimed by the wrong op")
			}
			return nil
		})
		if err := h.ServeHTTP(httptest.NewRecorder(), r, next); err != nil {
			t.Fatal(err)
		}
		if got == nil || !got.Claimed() {
			t.Fatalf("%s: no route handed over", c.path)
		}
		if path != r.URL.Path || got.Target.Backend != c.backend || got.Target.Version != c.version || got.Target.Resource != c.resource || got.Target.ID != "" {
			t.Errorf("%s: path %q target %+v", c.path, path, got.Target)
		}
		if caddyhttp.GetVar(r.Context(), contract.VarBackend) != c.backend {
			t.Errorf("%s: backend var not published", c.path)
		}
	}
}

// Below an item, "export" is an ordinary segment; an unclaimed sub-resource
// request's backend answer reads as 404.
func TestSubResourceOnlyOnCollection(t *testing.T) {
	h := newHandler(t, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	_, r, s, err := serve(h, http.MethodGet, "/api/v2/invoices/inv_1/export", nil)
	if err != nil || subres.Get(r) != nil || s.path != "/v2/invoices/inv_1/export" {
		t.Fatalf("err %v route %v path %q", err, subres.Get(r), s.path)
	}
	_, r, _, err = serve(h, http.MethodGet, "/api/v2/invoices/export", nil)
	if err != nil {
		t.Fatal(err)
	}
	tr := caddyhttp.GetVar(r.Context(), contract.VarTranslator).(envelope.Translator)
	if res := tr.Translate(&envelope.Answer{Status: 200, Body: []byte(`[]`)}); res.Status != http.StatusNotFound {
		t.Fatalf("unclaimed answer status %d", res.Status)
	}
}
