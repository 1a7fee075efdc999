package assertion

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/erpgate/erpgate/authsvc"
	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/refusallog"
)

// TestForReadsTheVerifiedIdentity: For states what erp_auth verified
// (replacer and scope variable) with the backend as audience, and a second
// call for the same credential and backend is served from the cache.
func TestForReadsTheVerifiedIdentity(t *testing.T) {
	t.Parallel()
	var got []authsvc.Assertion
	s := New(nil, zap.NewNop(), refusallog.Logger{})
	s.Now = func() time.Time { return t0 }
	s.Sign = func(_ context.Context, a *authsvc.Assertion) (string, error) {
		got = append(got, *a)
		return "signed", nil
	}
	r := httptest.NewRequest("POST", "/api/graphql", nil)
	vars := map[string]any{contract.VarScope: "invoices:read", contract.VarCredential: &contract.Credential{ID: "tok"}}
	r = r.WithContext(context.WithValue(r.Context(), caddyhttp.VarsCtxKey, vars))
	repl := caddyhttp.NewTestReplacer(r)
	repl.Set("http.auth.user.id", "usr_1")
	repl.Set("http.auth.user.company_id", "acme")
	repl.Set("http.auth.user.roles", "viewer,clerk")
	repl.Set("http.auth.user.plan", "free")
	for range 2 {
		tok, err := s.For(r, "invoices")
		if err != nil || tok != "signed" {
			t.Fatalf("For: %q %v", tok, err)
		}
	}
	if len(got) != 1 {
		t.Fatalf("%d signatures, want 1 (the second from the cache)", len(got))
	}
	a := got[0]
	if a.Audience != "invoices" || a.Subject != "usr_1" || a.CompanyID != "acme" || strings.Join(a.Roles, "|") != "viewer|clerk" ||
		a.Scope != "invoices:read" || a.Plan != "free" {
		t.Fatalf("signed %+v", a)
	}
	// No credential from erp_jwt/erp_api_key: no assertion, no error.
	r2 := httptest.NewRequest("POST", "/api/graphql", nil)
	r2 = r2.WithContext(context.WithValue(r2.Context(), caddyhttp.VarsCtxKey, map[string]any{}))
	caddyhttp.NewTestReplacer(r2)
	if tok, err := s.For(r2, "invoices"); tok != "" || err != nil {
		t.Fatalf("without a credential: %q %v", tok, err)
	}
}
