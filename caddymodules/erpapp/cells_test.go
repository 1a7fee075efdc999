package erpapp

import (
	"context"
	"slices"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

func TestCellsProvision(t *testing.T) {
	t.Parallel()
	app := &App{Backends: map[string]*Backend{
		"invoices": {Versions: map[string]*Version{
			"v1": {Upstreams: []string{"http://127.0.0.1:9001/v1"}, Cells: map[string][]string{
				"eu": {"http://127.0.0.2:9001/v1", "http://127.0.0.3:9001/v1"},
				"us": {"http://127.0.0.4/v1"},
			}},
			"v2": {Cells: map[string][]string{"eu": {"http://127.0.0.2:9001/v2"}}},
		}},
		"ledger": {Versions: map[string]*Version{"v1": {Upstreams: []string{"http://127.0.0.1:9001/odata"}, Cells: map[string][]string{"apac": {"http://127.0.0.9/odata"}}}}},
	}}
	if err := app.provisionBackends(caddyContext(t)); err != nil {
		t.Fatal(err)
	}
	v1 := app.Backend("invoices").Version("v1")
	for cell, want := range map[string][]string{
		"":     {"127.0.0.1:9001"},
		"eu":   {"127.0.0.2:9001", "127.0.0.3:9001"},
		"us":   {"127.0.0.4:80"},
		"apac": {"127.0.0.1:9001"}, // another version's cell: the default upstreams
	} {
		if got := v1.DialsFor(cell); !slices.Equal(got, want) {
			t.Errorf("v1 cell %q: %v, want %v", cell, got, want)
		}
	}
	v2 := app.Backend("invoices").Version("v2")
	if !v2.HasCells() || len(v2.DialsFor("us")) != 0 || v2.DialsFor("eu")[0] != "127.0.0.2:9001" || v2.BasePath() != "/v2" {
		t.Fatalf("v2: %v %v %q", v2.DialsFor("us"), v2.DialsFor("eu"), v2.BasePath())
	}
	if got := app.CellNames(); !slices.Equal(got, []string{"apac", "eu", "us"}) {
		t.Fatalf("cell names %v", got)
	}
}

func TestCellsProvisionRefusals(t *testing.T) {
	t.Parallel()
	for name, v := range map[string]*Version{
		"bad cell name":        {Upstreams: []string{"http://a/v1"}, Cells: map[string][]string{"EU": {"http://b/v1"}}},
		"cell without URL":     {Upstreams: []string{"http://a/v1"}, Cells: map[string][]string{"eu": {}}},
		"cell path differs":    {Upstreams: []string{"http://a/v1"}, Cells: map[string][]string{"eu": {"http://b/v2"}}},
		"cell scheme":          {Upstreams: []string{"http://a/v1"}, Cells: map[string][]string{"eu": {"https://b/v1"}}},
		"cell ftp":             {Cells: map[string][]string{"eu": {"ftp://b/v1"}}},
		"no upstream, no cell": {},
	} {
		app := &App{Backends: map[string]*Backend{"a": {Versions: map[string]*Version{"v1": v}}}}
		if err := app.provisionBackends(caddyContext(t)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// The per-request choice: one atomic load, one map lookup, no allocation.
func BenchmarkDialsForCompany(b *testing.B) {
	app := &App{Backends: map[string]*Backend{"invoices": {Versions: map[string]*Version{
		"v1": {Upstreams: []string{"http://127.0.0.1:9001/v1"}, Cells: map[string][]string{"eu": {"http://127.0.0.2:9001/v1"}, "us": {"http://127.0.0.3:9001/v1"}}},
	}}}}
	ctx, cancel := caddyContextB()
	defer cancel()
	if err := app.provisionBackends(ctx); err != nil {
		b.Fatal(err)
	}
	l := &Lasting{}
	l.cells.Set("acme", "eu")
	l.cells.Set("globex", "us")
	v := app.Backend("invoices").Version("v1")
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if d := v.DialsFor(l.cells.Of("acme")); len(d) != 1 {
				b.Fatal("no dials")
			}
		}
	})
}

func caddyContextB() (caddy.Context, context.CancelFunc) {
	return caddy.NewContext(caddy.Context{Context: context.Background()})
}
