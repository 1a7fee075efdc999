package demo

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func TestHandlerIsTerminal(t *testing.T) {
	t.Parallel()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: t.Context()})
	defer cancel()
	h := new(Handler)
	if err := h.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	defer h.Cleanup()
	next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error {
		t.Error("erp_demo called next")
		return nil
	})
	tests := []struct {
		name, target, company string
		status                int
	}{
		{"ping", "/_demo/ping", "", 200},
		{"invoice", "/v1/invoices/inv_acme_0001", "acme", 200},
		{"no company", "/v1/invoices", "", 400},
		{"unknown path", "/elsewhere", "acme", 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", tt.target, nil)
			caddyhttp.NewTestReplacer(req) // as Caddy's server would set it up
			if tt.company != "" {
				req.Header.Set("X-ERP-Company-ID", tt.company)
			}
			rec := httptest.NewRecorder()
			if err := h.ServeHTTP(rec, req, next); err != nil {
				t.Fatal(err)
			}
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
		})
	}
}
