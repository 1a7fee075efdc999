package upstreams

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	_ "github.com/erpgate/erpgate/caddymodules/dialects/rest"
	"github.com/erpgate/erpgate/caddymodules/erpapp"
	"github.com/erpgate/erpgate/contract"
)

// cellApp is a provisioned erp app (embedded) whose invoices v1 has the
// cells eu and us beside its default upstream, and v2 cells only.
func cellApp(tb testing.TB) (*erpapp.App, *Source) {
	tb.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	tb.Cleanup(cancel)
	app := &erpapp.App{Backends: map[string]*erpapp.Backend{"invoices": {Versions: map[string]*erpapp.Version{
		"v1": {Upstreams: []string{"http://127.0.0.1:9001/v1"}, Cells: map[string][]string{"eu": {"http://127.0.0.2:9001/v1"}, "us": {"http://127.0.0.3:9001/v1"}}},
		"v2": {Cells: map[string][]string{"eu": {"http://127.0.0.2:9001/v2"}}},
	}}}}
	if err := app.Provision(ctx); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = app.Cleanup() })
	return app, &Source{cells: app.Lasting().Cells()}
}

func request(v *erpapp.Version, company string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/api/v1/invoices", nil)
	repl := caddyhttp.NewTestReplacer(r)
	if company != "" {
		repl.Set("http.auth.user.company_id", company)
	}
	ctx := context.WithValue(r.Context(), caddy.ReplacerCtxKey, repl)
	ctx = context.WithValue(ctx, caddyhttp.VarsCtxKey, map[string]any{})
	r = r.WithContext(ctx)
	if v != nil {
		caddyhttp.SetVar(r.Context(), contract.VarVersion, v)
	}
	return r
}

func TestGetUpstreamsByCell(t *testing.T) {
	app, src := cellApp(t)
	b := app.Backend("invoices")
	cells := app.Lasting().Cells()
	cells.Set("acme", "eu")
	cells.Set("globex", "us")
	cells.Set("initech", "apac") // a cell no version has
	for _, c := range []struct {
		version, company, want string
	}{
		{"v1", "acme", "127.0.0.2:9001"},
		{"v1", "globex", "127.0.0.3:9001"},
		{"v1", "initech", "127.0.0.1:9001"},
		{"v1", "", "127.0.0.1:9001"},
		{"v2", "acme", "127.0.0.2:9001"},
	} {
		ups, err := src.GetUpstreams(request(b.Version(c.version), c.company))
		if err != nil || len(ups) != 1 || ups[0].Dial != c.want {
			t.Errorf("%s %q: %v %v, want %s", c.version, c.company, ups, err, c.want)
		}
	}
	// cells only, and the company is in none of them: no upstreams (503)
	if _, err := src.GetUpstreams(request(b.Version("v2"), "globex")); err == nil {
		t.Error("v2 for a us company: upstreams without a cell")
	}
	// no erp_version: no upstreams
	if _, err := src.GetUpstreams(request(nil, "acme")); err == nil {
		t.Error("a request without a version got upstreams")
	}
	// a move applies to the next request
	cells.Set("acme", "us")
	if ups, err := src.GetUpstreams(request(b.Version("v1"), "acme")); err != nil || ups[0].Dial != "127.0.0.3:9001" {
		t.Errorf("after the move: %v %v", ups, err)
	}
}

// The per-request cost with cells: the company's cell looked up, the
// upstreams made (one allocation pair, as without cells).
func BenchmarkGetUpstreamsCell(b *testing.B) {
	app, src := cellApp(b)
	app.Lasting().Cells().Set("acme", "eu")
	r := request(app.Backend("invoices").Version("v1"), "acme")
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if ups, err := src.GetUpstreams(r); err != nil || len(ups) != 1 {
			b.Fatal(err)
		}
	}
}
