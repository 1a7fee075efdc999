package erpapp

import (
	"context"
	"testing"

	"github.com/caddyserver/caddy/v2"

	_ "github.com/erpgate/erpgate/caddymodules/dialects/jsonrpc"
	_ "github.com/erpgate/erpgate/caddymodules/dialects/odata"
	_ "github.com/erpgate/erpgate/caddymodules/dialects/rest"
	"github.com/erpgate/erpgate/caddymodules/internal/adapttest"
)

// TestBackendAdapt runs the golden cases of the backend registry's
// Caddyfile in testdata/backend_*.caddyfiletest.
func TestBackendAdapt(t *testing.T) {
	adapttest.Run(t, adapttest.Files(t, "testdata/backend_*.caddyfiletest"))
}

func TestBackendProvisionRefusals(t *testing.T) {
	t.Parallel()
	v := func(urls ...string) map[string]*Version { return map[string]*Version{"v1": {Upstreams: urls}} }
	for name, c := range map[string]struct {
		name string
		b    *Backend
	}{
		"reserved name":      {"auth", &Backend{Versions: v("http://a/v1")}},
		"version-like name":  {"v2", &Backend{Versions: v("http://a/v1")}},
		"upper case name":    {"Invoices", &Backend{Versions: v("http://a/v1")}},
		"bad version name":   {"a", &Backend{Versions: map[string]*Version{"1": {Upstreams: []string{"http://a/v1"}}}}},
		"ftp":                {"a", &Backend{Versions: v("ftp://a/v1")}},
		"query in URL":       {"a", &Backend{Versions: v("http://a/v1?x=1")}},
		"user in URL":        {"a", &Backend{Versions: v("http://u:p@a/v1")}},
		"dot segment":        {"a", &Backend{Versions: v("http://a/v1/../v2")}},
		"mixed paths":        {"a", &Backend{Versions: v("http://a/v1", "http://b/v2")}},
		"no upstreams":       {"a", &Backend{Versions: v()}},
		"bad date":           {"a", &Backend{Versions: map[string]*Version{"v1": {Upstreams: []string{"http://a/v1"}, Sunset: "next year"}}}},
		"sunset before dep":  {"a", &Backend{Versions: map[string]*Version{"v1": {Upstreams: []string{"http://a/v1"}, Deprecated: "2027-01-01", Sunset: "2026-01-01"}}}},
		"unknown successor":  {"a", &Backend{Versions: map[string]*Version{"v1": {Upstreams: []string{"http://a/v1"}, Successor: "v3"}}}},
		"hostile successor":  {"a", &Backend{Versions: map[string]*Version{"v1": {Upstreams: []string{"http://a/v1"}, Successor: "javascript:x"}}}},
		"unknown default":    {"a", &Backend{DefaultVersion: "v9", Versions: v("http://a/v1")}},
		"non-canonical path": {"a", &Backend{Path: "/a//b", Versions: v("http://a/v1")}},
		"no versions":        {"a", &Backend{}},
	} {
		app := &App{Backends: map[string]*Backend{c.name: c.b}}
		if err := app.provisionBackends(caddyContext(t)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestBackendProvision(t *testing.T) {
	t.Parallel()
	app := &App{Backends: map[string]*Backend{"invoices": {Versions: map[string]*Version{
		"v1":   {Upstreams: []string{"http://127.0.0.1:9001/v1/", "https://erp.example/v1"}[:1], Deprecated: "2026-01-01", Sunset: "2027-06-30T12:00:00+02:00"},
		"v2":   {Upstreams: []string{"http://127.0.0.1:9001/v2", "http://127.0.0.2/v2"}},
		"v10":  {Upstreams: []string{"http://127.0.0.1:9001/v10"}, Deprecated: "2026-05-01"},
		"v2.1": {Upstreams: []string{"http://127.0.0.1:9001/v2"}},
	}}}}
	if err := app.provisionBackends(caddyContext(t)); err != nil {
		t.Fatal(err)
	}
	b := app.Backend("invoices")
	var order []string
	for _, v := range b.Ordered() {
		order = append(order, v.Name())
	}
	if got := len(order); got != 4 || order[0] != "v1" || order[1] != "v2" || order[2] != "v2.1" || order[3] != "v10" {
		t.Fatalf("order %v", order)
	}
	if b.Default().Name() != "v2.1" || b.Resource() != "/invoices" {
		t.Fatalf("default %s resource %s", b.Default().Name(), b.Resource())
	}
	v1 := b.Version("v1")
	if v1.SuccessorRef() != "v2" || v1.BasePath() != "/v1" || v1.Dials()[0] != "127.0.0.1:9001" || v1.SunsetAt().Hour() != 10 {
		t.Fatalf("v1 %+v", v1)
	}
	if d := b.Version("v2").Dials(); len(d) != 2 || d[1] != "127.0.0.2:80" {
		t.Fatalf("dials %v", d)
	}
	if b.Version("v10").SuccessorRef() != "" {
		t.Fatalf("v10 successor %q", b.Version("v10").SuccessorRef())
	}
}

func caddyContext(t *testing.T) caddy.Context {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	return ctx
}
