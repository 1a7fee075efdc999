package demo

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/erpgate/erpgate/backends/edgeassert"
)

// The tests play the edge: they sign assertions with a key of their own,
// which the demo's verifier gets from a key source (no network).
const testIssuer = "https://edge.test"

var edgeKey, accessKey = newKey(), newKey()

func newKey() ed25519.PrivateKey {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	return priv
}

func testKeys(context.Context) (jwk.Set, error) {
	set := jwk.NewSet()
	for kid, priv := range map[string]ed25519.PrivateKey{"edge-test": edgeKey, "at-test": accessKey} {
		k, err := jwk.Import(priv.Public())
		if err != nil {
			return nil, err
		}
		_ = k.Set(jwk.KeyIDKey, kid)
		_ = k.Set(jwk.AlgorithmKey, jwa.EdDSA())
		_ = k.Set(jwk.KeyUsageKey, "sig")
		if err := set.AddKey(k); err != nil {
			return nil, err
		}
	}
	return set, nil
}

func testVerifier(t testing.TB) *edgeassert.Verifier {
	v, err := edgeassert.New(context.Background(), edgeassert.Config{
		Keys: testKeys, Issuer: testIssuer, AudienceFor: DefaultBackends.For,
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// signed is a compact JWS of claims with header {alg EdDSA, kid, typ}.
func signed(priv ed25519.PrivateKey, kid, typ string, claims map[string]any) string {
	h, _ := json.Marshal(map[string]string{"alg": "EdDSA", "kid": kid, "typ": typ})
	c, _ := json.Marshal(claims)
	in := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	return in + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(priv, []byte(in)))
}

// assertion is what the edge sends for company's user to backend, issued at iat.
func assertion(company, backend string, iat time.Time) string {
	return signed(edgeKey, "edge-test", "erp-edge+jwt", map[string]any{
		"iss": testIssuer, "aud": backend, "sub": "usr_test", "cid": company,
		"roles": []string{"admin"}, "scope": "", "plan": "standard",
		"iat": iat.Unix(), "exp": iat.Add(time.Minute).Unix(), "jti": "t",
	})
}

// assert adds a good assertion for company and req's backend.
func assert(req *http.Request, company string) {
	req.Header.Set(edgeassert.Header, assertion(company, DefaultBackends.For(req), time.Now()))
}

func TestServiceOf(t *testing.T) {
	t.Parallel()
	for path, want := range map[string]string{
		"/v1/invoices": "invoices", "/v2/invoices/inv_acme_0001": "invoices", "/v1/customers/": "customers",
		"/v2/products": "products", "/odata/v1": "odata", "/odata/v1/$metadata": "odata",
		"/odata/v1/LedgerEntries('x')": "odata", "/jsonrpc": "jsonrpc",
		"/v3/invoices": "", "/v1/orders": "", "/": "", "/v1": "", "/odata/v10": "", "/jsonrpc/x": "", "/_demo/ping": "",
	} {
		if got := ServiceOf(path); got != want {
			t.Errorf("ServiceOf(%q) = %q, want %q", path, got, want)
		}
	}
	b := DefaultBackends.With(map[string]string{"jsonrpc": "catalog"})
	if b["jsonrpc"] != "catalog" || b["odata"] != "ledger" || DefaultBackends["jsonrpc"] != "inventory" {
		t.Fatalf("With: %v", b)
	}
}

// TestAssertionRequired: every ERP service refuses a request without a
// valid assertion for its own backend, and takes the company from the
// assertion alone.
func TestAssertionRequired(t *testing.T) {
	t.Parallel()
	now := time.Now()
	access := signed(accessKey, "at-test", "at+jwt", map[string]any{
		"iss": testIssuer, "aud": "erpgate", "sub": "usr_test", "cid": "acme", "sid": "s",
		"iat": now.Unix(), "exp": now.Add(15 * time.Minute).Unix(),
	})
	targets := []struct{ method, path, body, backend string }{
		{"GET", "/v1/invoices", "", "invoices"},
		{"GET", "/v2/customers/cus_acme_001", "", "customers"},
		{"GET", "/v1/products", "", "products"},
		{"GET", "/odata/v1/LedgerEntries", "", "ledger"},
		{"GET", "/odata/v1/Products", "", "ledger"},
		{"POST", "/jsonrpc", `{"jsonrpc":"2.0","id":1,"method":"call","params":{"model":"product.product","method":"search_read","args":[[]],"kwargs":{}}}`, "inventory"},
	}
	refusals := []struct {
		name   string
		header map[string]string
	}{
		{"no assertion", nil},
		{"company header only", map[string]string{"X-ERP-Company-ID": "acme", "X-ERP-User-ID": "usr_test"}},
		{"access token as assertion", map[string]string{edgeassert.Header: access}},
		{"expired", map[string]string{edgeassert.Header: assertion("acme", "BACKEND", now.Add(-5*time.Minute))}},
		{"another backend's", map[string]string{edgeassert.Header: assertion("acme", "payroll", now)}},
	}
	s := New(WithAssertions(testVerifier(t)))
	for _, tg := range targets {
		for _, rf := range refusals {
			t.Run(tg.path+"/"+rf.name, func(t *testing.T) {
				req := httptest.NewRequest(tg.method, tg.path, strings.NewReader(tg.body))
				req.Header.Set("Content-Type", "application/json")
				for k, v := range rf.header {
					req.Header.Set(k, strings.Replace(v, "BACKEND", tg.backend, 1))
				}
				if rf.name == "expired" {
					req.Header.Set(edgeassert.Header, assertion("acme", tg.backend, now.Add(-5*time.Minute)))
				}
				rec := httptest.NewRecorder()
				s.ServeHTTP(rec, req)
				if rec.Code != 401 || rec.Header().Get("WWW-Authenticate") == "" {
					t.Fatalf("status %d: %s", rec.Code, rec.Body)
				}
			})
		}
		t.Run(tg.path+"/good", func(t *testing.T) {
			req := httptest.NewRequest(tg.method, tg.path, strings.NewReader(tg.body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set(edgeassert.Header, assertion("acme", tg.backend, now))
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, req)
			if rec.Code != 200 {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
		})
	}
}

// TestCompanyOnlyFromAssertion: a company header next to acme's assertion
// changes nothing; a DELETE without an assertion deletes nothing.
func TestCompanyOnlyFromAssertion(t *testing.T) {
	t.Parallel()
	s := New(WithAssertions(testVerifier(t)))
	req := httptest.NewRequest("GET", "/v1/invoices?limit=200", nil)
	assert(req, "acme")
	req.Header.Set("X-ERP-Company-ID", "globex")
	req.Header["x-erp-company-id"] = []string{"globex"}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	if rec.Code != 200 || rec.Header().Get("X-Total-Count") != "120" || strings.Contains(rec.Body.String(), "globex") {
		t.Fatalf("%d %s: %.200s", rec.Code, rec.Header().Get("X-Total-Count"), rec.Body)
	}
	req = httptest.NewRequest("GET", "/v1/invoices/inv_globex_0001", nil)
	assert(req, "acme")
	req.Header.Set("X-ERP-Company-ID", "globex")
	rec = httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	if rec.Code != 404 {
		t.Fatalf("globex's invoice with acme's assertion: %d", rec.Code)
	}

	del := httptest.NewRequest("DELETE", "/v1/invoices/inv_globex_0001", nil)
	del.Header.Set("X-ERP-Company-ID", "globex")
	rec = httptest.NewRecorder()
	s.ServeHTTP(rec, del)
	if rec.Code != 401 {
		t.Fatalf("DELETE without assertion: %d", rec.Code)
	}
	get := httptest.NewRequest("GET", "/v1/invoices/inv_globex_0001", nil)
	assert(get, "globex")
	rec = httptest.NewRecorder()
	s.ServeHTTP(rec, get)
	if rec.Code != 200 {
		t.Fatalf("globex's invoice after the refused DELETE: %d", rec.Code)
	}
}

// TestDiagnosticsNeedNoAssertion: /_demo/ holds no company data.
func TestDiagnosticsNeedNoAssertion(t *testing.T) {
	t.Parallel()
	s := New(WithAssertions(testVerifier(t)))
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("GET", "/_demo/ping", nil))
	if rec.Code != 200 {
		t.Fatalf("ping: %d", rec.Code)
	}
}

// TestWithoutAssertions: a server made without WithAssertions reads the
// company header (tests and benchmarks of the edge alone).
func TestWithoutAssertions(t *testing.T) {
	t.Parallel()
	req := httptest.NewRequest("GET", "/v1/invoices", nil)
	req.Header.Set(CompanyHeader, "globex")
	rec := httptest.NewRecorder()
	New().ServeHTTP(rec, req)
	if rec.Code != 200 || rec.Header().Get("X-Total-Count") != "37" {
		t.Fatalf("%d %s", rec.Code, rec.Header().Get("X-Total-Count"))
	}
}
