package authz

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/reqpath"
)

// TestNonCanonicalPathRefused: the path rule is reqpath's (its table test
// covers the tricks); erp_authz refuses with its status and message before
// anything else, and the next handler never runs.
func TestNonCanonicalPathRefused(t *testing.T) {
	t.Parallel()
	h := newTestHandler(&fakeSigner{})
	for _, target := range []string{
		"/api/v1/%69nvoices",
		"/api/v1/invoices/%41",
		"/api/v1/invoices;x=1",
		"/api/v1/invoices/%c0%ae",
		"/api/v1/invoices/%252e",
		"/api/v1//invoices",
		"/api/v1/invoices/" + strings.Repeat("a", reqpath.MaxLen),
	} {
		want := reqpath.Check(target)
		if want == reqpath.OK {
			t.Fatalf("%s: canonical", target)
		}
		r := identityRequest("GET", target, "")
		called := false
		err := h.ServeHTTP(httptest.NewRecorder(), r, caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error {
			called = true
			return nil
		}))
		var he caddyhttp.HandlerError
		ce, ok := contract.AsError(err)
		if called || !errors.As(err, &he) || he.StatusCode != want.Status() || !ok || ce.Code != contract.CodeBadRequest || ce.Message != want.Message() {
			t.Errorf("%.40s: next called %v, got %v, want %d %s", target, called, err, want.Status(), want.Message())
		}
	}
}

func TestStripHeaders(t *testing.T) {
	t.Parallel()
	h := http.Header{
		"X-Erp-Company-Id":       {"a", "b"},
		"x-erp-company-id":       {"c"},
		"X_erp_company_id":       {"d"},
		"X-ERP-USER_ID":          {"e"},
		"X-Erp-Roles":            {"owner"},
		"X-Erp-Scope":            {"x"},
		"X-Http-Method-Override": {"DELETE"},
		"X-Method-Override":      {"PUT"},
		"X-Erp-Other":            {"keep"},
		"Accept":                 {"*/*"},
	}
	stripHeaders(h)
	if len(h) != 2 || h.Get("X-Erp-Other") != "keep" || h.Get("Accept") != "*/*" {
		t.Fatalf("left %v", h)
	}
}

func TestCompanyReferences(t *testing.T) {
	t.Parallel()
	if got := companyInPath("/api/v1/invoices/companies/globex/x/Companies/a%62c"); len(got) != 2 || got[0] != "globex" || got[1] != "abc" {
		t.Fatalf("companyInPath: %v", got)
	}
	q, _ := url.ParseQuery("Company_ID=globex&companyId=x&company=y&other=z")
	if got := companyInQuery(q); len(got) != 3 {
		t.Fatalf("companyInQuery: %v", got)
	}
	if derivedAction("HEAD") != ":read" || derivedAction("OPTIONS") != ":read" || derivedAction("PATCH") != ":write" {
		t.Fatal("derivedAction")
	}
}

func identityRequest(method, target, body string) *http.Request {
	var r *http.Request
	if body != "" {
		r = httptest.NewRequest(method, target, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
	} else {
		r = httptest.NewRequest(method, target, nil)
	}
	r = r.WithContext(context.WithValue(r.Context(), caddyhttp.VarsCtxKey, map[string]any{
		contract.VarScope: "invoices:read", contract.VarBackend: "invoices",
		contract.VarCredential: &contract.Credential{ID: "token-1", Expiry: time.Now().Add(time.Hour)},
	}))
	repl := caddyhttp.NewTestReplacer(r)
	repl.Set("http.auth.user.id", "usr_1")
	repl.Set("http.auth.user.company_id", "acme")
	repl.Set("http.auth.user.roles", "viewer")
	return r
}

func TestServeHTTP(t *testing.T) {
	t.Parallel()
	h := newTestHandler(&fakeSigner{})
	cases := []struct {
		name, method, target, body string
		code                       string
	}{
		{"read allowed", "GET", "/api/v1/invoices?company_id=acme", "", ""},
		{"write forbidden", "POST", "/api/v1/invoices", `{"amount":1}`, contract.CodeForbidden},
		{"other company in query", "GET", "/api/v1/invoices?company_id=globex", "", contract.CodeCompanyMismatch},
		{"other company in an escaped query key", "GET", "/api/v1/invoices?%63ompany_id=globex", "", contract.CodeCompanyMismatch},
		{"other company in path", "GET", "/api/v1/invoices/companies/globex", "", contract.CodeCompanyMismatch},
		{"other company in body", "POST", "/api/v1/invoices", `{"company_id":"globex"}`, contract.CodeCompanyMismatch},
		{"non-string company in body", "POST", "/api/v1/invoices", `{"company_id":["acme"]}`, contract.CodeCompanyMismatch},
		{"non-canonical", "GET", "/api/v1/%69nvoices", "", contract.CodeBadRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := identityRequest(tc.method, tc.target, tc.body)
			r.Header.Set("X_ERP_COMPANY_ID", "globex")
			r.Header.Set("Authorization", "Bearer x")
			var seen http.Header
			err := h.ServeHTTP(httptest.NewRecorder(), r, caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
				seen = r.Header.Clone()
				return nil
			}))
			if tc.code == "" {
				if err != nil {
					t.Fatal(err)
				}
				if seen.Get(contract.HeaderCompanyID) != "acme" || seen.Get("X_ERP_COMPANY_ID") != "" || seen.Get("Authorization") != "" ||
					seen.Get(contract.HeaderAssertion) == "" {
					t.Fatalf("forwarded headers %v", seen)
				}
				return
			}
			ce, ok := contract.AsError(err)
			if !ok || ce.Code != tc.code {
				t.Fatalf("got %v, want %s", err, tc.code)
			}
		})
	}
	t.Run("no backend and no require: refused", func(t *testing.T) {
		r := identityRequest("GET", "/api/v1/x", "")
		delete(r.Context().Value(caddyhttp.VarsCtxKey).(map[string]any), contract.VarBackend)
		err := h.ServeHTTP(httptest.NewRecorder(), r, caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil }))
		if ce, ok := contract.AsError(err); !ok || ce.Code != contract.CodeForbidden {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("unauthenticated", func(t *testing.T) {
		r := httptest.NewRequest("GET", "/api/v1/invoices", nil)
		r = r.WithContext(context.WithValue(r.Context(), caddyhttp.VarsCtxKey, map[string]any{}))
		caddyhttp.NewTestReplacer(r)
		err := h.ServeHTTP(httptest.NewRecorder(), r, nil)
		var he caddyhttp.HandlerError
		if !errors.As(err, &he) || he.StatusCode != 401 {
			t.Fatalf("got %v", err)
		}
	})
}

func BenchmarkServeHTTP(b *testing.B) {
	h := newTestHandler(&fakeSigner{})
	next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return nil })
	r := identityRequest("GET", "/api/v1/invoices?limit=10&page=2", "")
	r.Header.Set("Accept", "application/json")
	r.Header.Set("User-Agent", "bench")
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		if err := h.ServeHTTP(w, r, next); err != nil {
			b.Fatal(err)
		}
	}
}
