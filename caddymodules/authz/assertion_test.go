package authz

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/erpgate/erpgate/authsvc"
	"github.com/erpgate/erpgate/caddymodules/internal/assertion"
	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/refusallog"
)

// fakeSigner records what it is asked to sign and answers "assertion-N".
type fakeSigner struct {
	mu   sync.Mutex
	got  []authsvc.Assertion
	fail error
}

func (f *fakeSigner) sign(_ context.Context, a *authsvc.Assertion) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return "", f.fail
	}
	f.got = append(f.got, *a)
	return fmt.Sprint("assertion-", len(f.got)), nil
}

func (f *fakeSigner) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.got)
}

func (f *fakeSigner) last() authsvc.Assertion {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.got[len(f.got)-1]
}

// newTestHandler is a provisioned Handler whose assertions f signs (nil:
// the in-process auth service, of which a test has none).
func newTestHandler(f *fakeSigner) *Handler {
	h := &Handler{MaxBodyCheck: 1 << 20, logger: zap.NewNop(), signer: assertion.New(nil, zap.NewNop(), refusallog.Logger{})}
	if f != nil {
		h.signer.Sign = f.sign
	}
	return h
}

// assertionRequest is a verified request as the providers leave it.
func assertionRequest(cred *contract.Credential, backend, scope string) *http.Request {
	r := httptest.NewRequest("GET", "/api/v1/invoices", nil)
	vars := map[string]any{contract.VarScope: scope}
	if backend != "" {
		vars[contract.VarBackend] = backend
	}
	if cred != nil {
		vars[contract.VarCredential] = cred
	}
	r = r.WithContext(context.WithValue(r.Context(), caddyhttp.VarsCtxKey, vars))
	repl := caddyhttp.NewTestReplacer(r)
	repl.Set("http.auth.user.id", "usr_1")
	repl.Set("http.auth.user.company_id", "acme")
	repl.Set("http.auth.user.roles", "viewer,clerk")
	repl.Set("http.auth.user.plan", "standard")
	r.Header.Set("X-ERP-Assertion", "forged-by-client")
	r.Header["X_erp_ASSERTION"] = []string{"forged-too"}
	return r
}

// serve runs h on r and returns the assertion headers the backend saw (nil:
// the request was refused, with err).
func serve(h *Handler, r *http.Request) ([]string, error) {
	var seen []string
	err := h.ServeHTTP(httptest.NewRecorder(), r, caddyhttp.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) error {
		seen = []string{}
		for name, vs := range r.Header {
			if strings.EqualFold(strings.ReplaceAll(name, "_", "-"), contract.HeaderAssertion) {
				seen = append(seen, vs...)
			}
		}
		return nil
	}))
	return seen, err
}

var t0 = time.Date(2026, 11, 22, 12, 0, 0, 300_000_000, time.UTC) // not on a whole second

func TestAssertionSigningAndCache(t *testing.T) {
	t.Parallel()
	f := &fakeSigner{}
	h := newTestHandler(f)
	var mu sync.Mutex
	now := t0
	h.signer.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	scope := "invoices:read ledger:read"
	tok := &contract.Credential{ID: "access-token-1", Expiry: t0.Add(15 * time.Minute)}
	want := func(name string, r *http.Request, header string, signs int) {
		t.Helper()
		seen, err := serve(h, r)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if header == "" && len(seen) != 0 || header != "" && (len(seen) != 1 || seen[0] != header) {
			t.Fatalf("%s: the backend saw X-ERP-Assertion %q, want %q", name, seen, header)
		}
		if f.count() != signs {
			t.Fatalf("%s: %d signatures, want %d", name, f.count(), signs)
		}
	}

	want("first request: signed", assertionRequest(tok, "invoices", scope), "assertion-1", 1)
	a := f.last()
	if a.Audience != "invoices" || a.Subject != "usr_1" || a.CompanyID != "acme" || strings.Join(a.Roles, "|") != "viewer|clerk" ||
		a.Scope != scope || a.Plan != "standard" || !a.IssuedAt.Equal(t0) || !a.Expiry.Equal(t0.Add(60*time.Second).Truncate(time.Second)) {
		t.Fatalf("asked to sign %+v", a)
	}
	want("same credential and backend: cached", assertionRequest(tok, "invoices", scope), "assertion-1", 1)
	want("another backend: its own", assertionRequest(tok, "ledger", scope), "assertion-2", 2)
	if f.last().Audience != "ledger" {
		t.Fatalf("audience %q", f.last().Audience)
	}
	want("another credential: its own", assertionRequest(&contract.Credential{ID: "access-token-2", Expiry: tok.Expiry}, "invoices", scope), "assertion-3", 3)
	want("same credential, another identity: signed anew", assertionRequest(tok, "invoices", "invoices:read"), "assertion-4", 4)
	want("back to the first identity: signed anew", assertionRequest(tok, "invoices", scope), "assertion-5", 5)
	// an API key's plan may change under it: the assertion states the plan
	// the request was authorised with, never an earlier one
	free := assertionRequest(tok, "invoices", scope)
	free.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer).Set("http.auth.user.plan", "free")
	want("same credential, another plan: signed anew", free, "assertion-6", 6)
	if f.last().Plan != "free" {
		t.Fatalf("plan %q", f.last().Plan)
	}
	want("the first plan again: signed anew", assertionRequest(tok, "invoices", scope), "assertion-7", 7)

	// Reused while more than the margin is left, then signed anew.
	advance(assertion.TTL - assertion.Margin - time.Second)
	want("reused with more than the margin left", assertionRequest(tok, "invoices", scope), "assertion-7", 7)
	advance(time.Second)
	want("not reused with the margin left", assertionRequest(tok, "invoices", scope), "assertion-8", 8)

	// A credential that expires first bounds the assertion and is reused to its end.
	short := &contract.Credential{ID: "api-key-digest", Expiry: now.Add(5 * time.Second)}
	want("short credential", assertionRequest(short, "invoices", scope), "assertion-9", 9)
	if got := f.last().Expiry; got.After(short.Expiry) || short.Expiry.Sub(got) >= time.Second {
		t.Fatalf("exp %v for a credential expiring at %v", got, short.Expiry)
	}
	advance(4 * time.Second)
	want("bound by its credential: reused to the end", assertionRequest(short, "invoices", scope), "assertion-9", 9)
	advance(2 * time.Second)
	if _, err := serve(h, assertionRequest(short, "invoices", scope)); err == nil {
		t.Fatal("an expired credential got an assertion")
	} else if ce, ok := contract.AsError(err); !ok || ce.Code != contract.CodeTokenExpired || ce.Status != 401 {
		t.Fatalf("expired credential: %v", err)
	}
	if f.count() != 9 {
		t.Fatal("signed for an expired credential")
	}
}

func TestAssertionWithheld(t *testing.T) {
	t.Parallel()
	cred := &contract.Credential{ID: "access-token-1"}
	for _, tc := range []struct {
		name    string
		h       *Handler
		r       *http.Request
		want    string
		refused string
	}{
		{"backend from the route's option", func() *Handler { h := newTestHandler(&fakeSigner{}); h.Backend = "invoices"; return h }(),
			assertionRequest(cred, "", "invoices:read"), "assertion-1", ""},
		{"no backend named", func() *Handler { h := newTestHandler(&fakeSigner{}); h.AuthenticatedOnly = true; return h }(),
			assertionRequest(cred, "", "invoices:read"), "", ""},
		{"credential of another provider", newTestHandler(&fakeSigner{}), assertionRequest(nil, "invoices", "invoices:read"), "", ""},
		{"no auth service in process", newTestHandler(nil), assertionRequest(cred, "invoices", "invoices:read"), "", ""},
		{"signing fails", newTestHandler(&fakeSigner{fail: errors.New("no signing key available")}),
			assertionRequest(cred, "invoices", "invoices:read"), "", contract.CodeServiceUnavailable},
		{"refused request", newTestHandler(&fakeSigner{}), assertionRequest(cred, "invoices", "ledger:read"), "", contract.CodeForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			seen, err := serve(tc.h, tc.r)
			if tc.refused != "" {
				if ce, ok := contract.AsError(err); !ok || ce.Code != tc.refused {
					t.Fatalf("got %v, want %s", err, tc.refused)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == "" && len(seen) != 0 || tc.want != "" && (len(seen) != 1 || seen[0] != tc.want) {
				t.Fatalf("the backend saw X-ERP-Assertion %q, want %q (a client's copy must never pass)", seen, tc.want)
			}
		})
	}
}

func TestValidateBackend(t *testing.T) {
	t.Parallel()
	if err := (&Handler{Backend: "invoices"}).Validate(); err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"in voices", "invoices\n", "a\tb"} {
		if (&Handler{Backend: b}).Validate() == nil {
			t.Errorf("backend %q accepted", b)
		}
	}
}
