package version

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	_ "github.com/erpgate/erpgate/caddymodules/dialects/odata"
	"github.com/erpgate/erpgate/caddymodules/erpapp"
	"github.com/erpgate/erpgate/caddymodules/upstreams"
	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/deprecations"
	"github.com/erpgate/erpgate/internal/envelope"
	"github.com/erpgate/erpgate/internal/reqpath"
)

const backendsJSON = `{
	"invoices": {"versions": {
		"v1": {"upstreams": ["http://127.0.0.1:9001/v1"], "deprecated": "2026-01-01", "sunset": "2026-06-30"},
		"v2": {"upstreams": ["http://127.0.0.1:9001/v2", "http://127.0.0.1:9002/v2"]}}},
	"ledger": {"dialect": {"name": "odata"}, "path": "/LedgerEntries", "versions": {
		"v1": {"upstreams": ["http://127.0.0.1:9001/odata/v1"]}}}
}`

// newHandler provisions the erp app from backendsJSON and an erp_version
// on it, with a fixed clock.
func newHandler(t testing.TB, now time.Time) *Handler {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	app := new(erpapp.App)
	if err := json.Unmarshal([]byte(`{"backends":`+backendsJSON+`}`), app); err != nil {
		t.Fatal(err)
	}
	if err := app.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	return &Handler{Prefix: "/api", Company: "{http.request.header.X-ERP-Company-ID}",
		now: func() time.Time { return now }, logger: zap.NewNop(), routes: buildRoutes(app, "/api"), deprecations: deprecations.New()}
}

type seen struct {
	called bool
	path   string
	query  string
	header http.Header
}

func serve(h *Handler, method, target string, hdr map[string]string) (*httptest.ResponseRecorder, *http.Request, *seen, error) {
	r := httptest.NewRequest(method, target, nil)
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	r = r.WithContext(context.WithValue(r.Context(), caddyhttp.VarsCtxKey, map[string]any{}))
	caddyhttp.NewTestReplacer(r)
	w := httptest.NewRecorder()
	s := &seen{}
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		s.called, s.path, s.query, s.header = true, r.URL.EscapedPath(), r.URL.RawQuery, r.Header.Clone()
		w.WriteHeader(200)
		return nil
	})
	err := h.ServeHTTP(w, r, next)
	return w, r, s, err
}

func errorOf(t *testing.T, err error) (int, *contract.Error) {
	t.Helper()
	var he caddyhttp.HandlerError
	ce, ok := contract.AsError(err)
	if !errors.As(err, &he) || !ok {
		t.Fatalf("not a handler error with a contract.Error: %v", err)
	}
	return he.StatusCode, ce
}

func TestRouting(t *testing.T) {
	t.Parallel()
	h := newHandler(t, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))

	w, r, s, err := serve(h, "GET", "/api/v1/invoices/inv_1?page=2", map[string]string{"X-HTTP-Method-Override": "DELETE", "X-ERP-Company-ID": "acme"})
	if err != nil || !s.called || s.path != "/v1/invoices/inv_1" || s.query != "page=2" || s.header.Get("X-HTTP-Method-Override") != "" {
		t.Fatalf("%v %+v", err, s)
	}
	if w.Header().Get("Deprecation") != "@1767225600" || w.Header().Get("Sunset") != "Tue, 30 Jun 2026 00:00:00 GMT" ||
		w.Header().Get("Link") != `</api/v2/invoices>; rel="successor-version"` {
		t.Fatalf("headers %v", w.Header())
	}
	v, _ := caddyhttp.GetVar(r.Context(), contract.VarVersion).(*erpapp.Version)
	if v == nil || v.Name() != "v1" || v.Dials()[0] != "127.0.0.1:9001" {
		t.Fatalf("route var %v", v)
	}
	repl := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if got := repl.ReplaceAll("{erp.api_version} {erp.backend}", ""); got != "v1 invoices" {
		t.Fatalf("placeholders %q", got)
	}
	if tr, _ := caddyhttp.GetVar(r.Context(), contract.VarTranslator).(envelope.Translator); tr == nil {
		t.Fatal("no translator published")
	}
	calls := h.deprecations.List("acme")
	if len(calls) == 0 || calls[0].Backend != "invoices" || calls[0].Version != "v1" || calls[0].Calls < 1 || calls[0].Successor != "/api/v2/invoices" {
		t.Fatalf("usage %+v", calls)
	}

	// v2 is clean; the default is v2; Accept picks v2
	w, _, s, err = serve(h, "GET", "/api/invoices", map[string]string{"Accept": "application/vnd.erp.v2+json"})
	if err != nil || s.path != "/v2/invoices" || w.Header().Get("Deprecation") != "" || !strings.Contains(strings.Join(w.Header().Values("Vary"), ","), "Accept") {
		t.Fatalf("%v %+v %v", err, s, w.Header())
	}
	// OData
	_, _, s, err = serve(h, "GET", "/api/v1/ledger?limit=5&filter=status:eq:posted", nil)
	if err != nil || s.path != "/odata/v1/LedgerEntries" || !strings.Contains(s.query, "%24filter=status%20eq%20%27posted%27") && !strings.Contains(s.query, "$filter=status%20eq%20%27posted%27") {
		t.Fatalf("%v %+v", err, s)
	}
}

func TestRoutingRefusals(t *testing.T) {
	t.Parallel()
	h := newHandler(t, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	for _, c := range []struct {
		target string
		hdr    map[string]string
		status int
		code   string
	}{
		{"/api/v9/invoices", nil, 400, contract.CodeVersionUnsupported},
		{"/api/invoices", map[string]string{"API-Version": "v7"}, 400, contract.CodeVersionUnsupported},
		{"/api/v1/payroll", nil, 404, contract.CodeNotFound},
		{"/api/payroll", nil, 404, contract.CodeNotFound},
		{"/elsewhere", nil, 404, contract.CodeNotFound},
		{"/api/v1//invoices", nil, 400, contract.CodeBadRequest},
		{"/api/v1/invoices/%2e%2e", nil, 400, contract.CodeBadRequest},
		{"/api/v1/invoices", map[string]string{"API-Version": "v2"}, 400, contract.CodeBadRequest},
		{"/api/v1/ledger?$filter=x", nil, 400, contract.CodeBadRequest},
	} {
		_, _, s, err := serve(h, "GET", c.target, c.hdr)
		status, ce := errorOf(t, err)
		if status != c.status || ce.Code != c.code || s.called {
			t.Errorf("%s %v: %d %+v", c.target, c.hdr, status, ce)
		}
	}
	_, _, _, err := serve(h, "GET", "/api/v9/invoices", nil)
	_, ce := errorOf(t, err)
	if sup, _ := ce.Context["supported"].([]string); len(sup) != 2 || sup[0] != "v1" {
		t.Fatalf("supported %v", ce.Context)
	}
}

// TestPathRule: erp_version splits by reqpath's rule (its table test covers
// the tricks): a non-canonical path gets reqpath's status and message even
// outside the prefix, decoded segments reach the dialect, and the backend
// gets the canonical form.
func TestPathRule(t *testing.T) {
	t.Parallel()
	h := newHandler(t, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	for _, target := range []string{
		"/api/v2/invoices/%41",
		"/api/v2/%69nvoices",
		"/api/v2/invoices;x=1",
		"/api/v2/invoices/%252e",
		"/api/v2/invoices/%c0%ae",
		"/api/v2/invoices/%EF%BC%8E%EF%BC%8E",
		"/x/../api/v2/invoices",
		"/api/v2/invoices/" + strings.Repeat("a", reqpath.MaxLen),
	} {
		want := reqpath.Check(target)
		_, _, s, err := serve(h, "GET", target, nil)
		status, ce := errorOf(t, err)
		if want == reqpath.OK || s.called || status != want.Status() || ce.Code != contract.CodeBadRequest || ce.Message != want.Message() {
			t.Errorf("%.40s: %d %+v, want %d %s", target, status, ce, want.Status(), want)
		}
	}
	for target, upstream := range map[string]string{
		"/api/v2/invoices/":             "/v2/invoices",
		"/api/v2/invoices/inv%20%c3%a9": "/v2/invoices/inv%20%C3%A9",
		"/api/v2/invoices/a%3Bb":        "/v2/invoices/a%3Bb",
	} {
		if _, _, s, err := serve(h, "GET", target, nil); err != nil || s.path != upstream {
			t.Errorf("%s: %v, upstream path %q, want %q", target, err, s.path, upstream)
		}
	}
}

func TestSunset(t *testing.T) {
	t.Parallel()
	h := newHandler(t, time.Date(2026, 6, 30, 0, 0, 0, 0, time.UTC)) // the sunset instant
	_, _, s, err := serve(h, "GET", "/api/v1/invoices", nil)
	status, ce := errorOf(t, err)
	if status != 410 || ce.Code != contract.CodeVersionSunset || s.called || ce.Header.Get("Link") != `</api/v2/invoices>; rel="successor-version"` {
		t.Fatalf("%d %+v", status, ce)
	}
	// a sunset version is no longer listed as supported
	_, _, _, err = serve(h, "GET", "/api/v3/invoices", nil)
	if _, ce := errorOf(t, err); len(ce.Context["supported"].([]string)) != 1 {
		t.Fatalf("%+v", ce.Context)
	}
}

func TestUpstreamErrorsCounted(t *testing.T) {
	t.Parallel()
	repl := caddy.NewReplacer()
	if !upstreamFailed(caddyhttp.Error(502, errors.New("dial")), repl) || upstreamFailed(caddyhttp.Error(401, errors.New("no")), repl) {
		t.Fatal("handler errors")
	}
	repl.Set("http.reverse_proxy.status_code", 503)
	if !upstreamFailed(nil, repl) {
		t.Fatal("5xx answer")
	}
	repl.Set("http.reverse_proxy.status_code", 404)
	if upstreamFailed(nil, repl) {
		t.Fatal("4xx answer")
	}
}

func BenchmarkServeHTTP(b *testing.B) {
	h := newHandler(b, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	next := caddyhttp.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error { return nil })
	for _, c := range []struct{ name, target string }{
		{"rest", "/api/v2/invoices/inv_acme_0001"},
		{"rest_query", "/api/v2/invoices?page=2&limit=10&sort=-total"},
		{"deprecated", "/api/v1/invoices?limit=10"},
		{"odata_query", "/api/v1/ledger?page=2&limit=10&sort=-amount&filter=status:eq:posted"},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				r := httptest.NewRequest("GET", c.target, nil)
				r = r.WithContext(context.WithValue(r.Context(), caddyhttp.VarsCtxKey, map[string]any{}))
				caddyhttp.NewTestReplacer(r)
				w := httptest.NewRecorder()
				b.StartTimer()
				if err := h.ServeHTTP(w, r, next); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkUpstreams(b *testing.B) {
	dials := []string{"127.0.0.1:9001", "127.0.0.1:9002"}
	b.ReportAllocs()
	for b.Loop() {
		if ups := upstreams.Upstreams(dials); len(ups) != 2 {
			b.Fatal(len(ups))
		}
	}
}
