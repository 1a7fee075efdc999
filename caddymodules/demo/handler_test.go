package demo

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/erpgate/erpgate/caddymodules/erpapp"
)

func provision(t *testing.T, h *Handler) *Handler {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: t.Context()})
	t.Cleanup(cancel)
	app := &erpapp.App{KeyPrefix: "demo-test:"} // no erp_authsvc: no auth service in this config
	if err := app.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = app.Cleanup() })
	if err := h.provision(ctx, app); err != nil {
		t.Fatal(err)
	}
	if err := h.Validate(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Cleanup() })
	return h
}

func serve(t *testing.T, h *Handler, method, target string, header map[string]string, body string) *httptest.ResponseRecorder {
	t.Helper()
	next := caddyhttp.HandlerFunc(func(http.ResponseWriter, *http.Request) error {
		t.Error("erp_demo called next")
		return nil
	})
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	caddyhttp.NewTestReplacer(req) // as Caddy's server would set it up
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	if err := h.ServeHTTP(rec, req, next); err != nil {
		t.Fatal(err)
	}
	return rec
}

func TestHandlerIsTerminal(t *testing.T) {
	t.Parallel()
	h := provision(t, &Handler{InsecureSkipAssertion: true})
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
			hdr := map[string]string{}
			if tt.company != "" {
				hdr["X-ERP-Company-ID"] = tt.company
			}
			if rec := serve(t, h, "GET", tt.target, hdr, ""); rec.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
		})
	}
}

// edgeStub publishes one assertion key in a JWKS and signs with it.
type edgeStub struct {
	priv ed25519.PrivateKey
	srv  *httptest.Server
}

func newEdgeStub(t *testing.T) *edgeStub {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := jwk.Import(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	_ = k.Set(jwk.KeyIDKey, "edge-stub")
	_ = k.Set(jwk.AlgorithmKey, jwa.EdDSA())
	set := jwk.NewSet()
	_ = set.AddKey(k)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(srv.Close)
	return &edgeStub{priv: priv, srv: srv}
}

func (e *edgeStub) assertion(company, backend string) string {
	now := time.Now()
	h, _ := json.Marshal(map[string]string{"alg": "EdDSA", "kid": "edge-stub", "typ": "erp-edge+jwt"})
	c, _ := json.Marshal(map[string]any{"iss": "https://edge.test", "aud": backend, "sub": "usr_1", "cid": company,
		"iat": now.Unix(), "exp": now.Add(time.Minute).Unix()})
	in := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	return in + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(e.priv, []byte(in)))
}

func TestHandlerVerifiesAssertion(t *testing.T) {
	t.Parallel()
	e := newEdgeStub(t)
	h := provision(t, &Handler{JWKSURL: e.srv.URL, Issuer: "https://edge.test", Backends: map[string]string{"jsonrpc": "catalog"}})
	rpc := `{"jsonrpc":"2.0","id":1,"method":"call","params":{"model":"product.product","method":"search_count","args":[[]],"kwargs":{}}}`
	tests := []struct {
		name, method, target string
		header               map[string]string
		body                 string
		status               int
		want                 string // in the body
	}{
		{"no assertion", "GET", "/v1/invoices", map[string]string{"X-ERP-Company-ID": "globex"}, "", 401, ""},
		{"good", "GET", "/v1/invoices?limit=1", map[string]string{"X-ERP-Assertion": e.assertion("acme", "invoices")}, "", 200, "inv_acme_"},
		{"company header ignored", "GET", "/v1/invoices?limit=1", map[string]string{"X-ERP-Assertion": e.assertion("acme", "invoices"), "X-ERP-Company-ID": "globex"}, "", 200, "inv_acme_"},
		{"other backend's", "GET", "/v1/invoices", map[string]string{"X-ERP-Assertion": e.assertion("acme", "customers")}, "", 401, ""},
		{"renamed backend", "POST", "/jsonrpc", map[string]string{"X-ERP-Assertion": e.assertion("acme", "catalog"), "Content-Type": "application/json"}, rpc, 200, "result"},
		{"default name after rename", "POST", "/jsonrpc", map[string]string{"X-ERP-Assertion": e.assertion("acme", "inventory"), "Content-Type": "application/json"}, rpc, 401, ""},
		{"ledger", "GET", "/odata/v1/LedgerEntries?$top=1", map[string]string{"X-ERP-Assertion": e.assertion("globex", "ledger")}, "", 200, "globex"},
		{"diagnostics need none", "GET", "/_demo/ping", nil, "", 200, "ok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := serve(t, h, tt.method, tt.target, tt.header, tt.body)
			if rec.Code != tt.status || !strings.Contains(rec.Body.String(), tt.want) {
				t.Fatalf("status %d, want %d with %q: %s", rec.Code, tt.status, tt.want, rec.Body)
			}
			if tt.status == 401 && rec.Header().Get("WWW-Authenticate") == "" {
				t.Fatal("401 without WWW-Authenticate")
			}
		})
	}
}

// TestHandlerWithoutAuthService: no jwks_url and no auth service in the
// process: ERP requests are refused, never served.
func TestHandlerWithoutAuthService(t *testing.T) {
	t.Parallel()
	h := provision(t, &Handler{})
	rec := serve(t, h, "GET", "/v1/invoices", map[string]string{"X-ERP-Company-ID": "acme"}, "")
	if rec.Code != 503 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	for name, h := range map[string]*Handler{
		"unknown service":       {Backends: map[string]string{"payroll": "x"}},
		"empty backend name":    {Backends: map[string]string{"odata": ""}},
		"jwks_url not http":     {JWKSURL: "file:///jwks.json", Issuer: "x"},
		"jwks_url no issuer":    {JWKSURL: "https://edge.example/.well-known/jwks.json"},
		"insecure with options": {InsecureSkipAssertion: true, JWKSURL: "https://e/j", Issuer: "x"},
	} {
		if err := h.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
