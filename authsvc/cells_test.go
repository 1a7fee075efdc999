package authsvc_test

import (
	"context"
	"strings"
	"sync"
	"testing"
)

type fakeCells struct {
	mu      sync.Mutex
	changes []string
}

func (f *fakeCells) KnownCells() []string { return []string{"eu", "us"} }

func (f *fakeCells) CellChanged(_ context.Context, company, cell string) {
	f.mu.Lock()
	f.changes = append(f.changes, company+"="+cell)
	f.mu.Unlock()
}

func (f *fakeCells) heard() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.changes...)
}

// A platform admin reads, moves and clears a company's cell; the edge is
// told of each change; an unknown or malformed cell, an unknown company and
// a caller who is not a platform admin are refused with the envelope's codes.
func TestAdminCompanyCell(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, external bool) {
		hooks := &fakeCells{}
		e := newEnv(t, envOpts{external: external, cells: hooks})
		root := e.session(t, "root@erpgate.local", "acme").str("access_token")
		alice := e.session(t, "alice@acme.test", "acme").str("access_token") // acme admin, not platform

		if a := e.do(t, req{method: "GET", path: "/api/v1/admin/companies/acme/cell", bearer: root}); a.Status != 200 || a.str("cell") != "" || a.str("company_id") != "acme" {
			t.Fatalf("get before: %d %s", a.Status, a.Raw)
		}
		a := e.do(t, req{method: "PUT", path: "/api/v1/admin/companies/acme/cell", bearer: root, body: map[string]any{"cell": "eu"}})
		if a.Status != 200 || a.str("cell") != "eu" || a.data()["previous"] != "" {
			t.Fatalf("put eu: %d %s", a.Status, a.Raw)
		}
		a = e.do(t, req{method: "PUT", path: "/api/v1/admin/companies/acme/cell", bearer: root, body: map[string]any{"cell": "us"}})
		if a.Status != 200 || a.str("cell") != "us" || a.data()["previous"] != "eu" {
			t.Fatalf("put us: %d %s", a.Status, a.Raw)
		}
		if a := e.do(t, req{method: "GET", path: "/api/v1/admin/companies/acme/cell", bearer: root}); a.Status != 200 || a.str("cell") != "us" {
			t.Fatalf("get after: %d %s", a.Status, a.Raw)
		}
		for _, tc := range []struct {
			name   string
			r      req
			status int
			code   string
		}{
			{"unknown cell", req{method: "PUT", path: "/api/v1/admin/companies/acme/cell", bearer: root, body: map[string]any{"cell": "mars"}}, 422, "VALIDATION_FAILED"},
			{"malformed cell", req{method: "PUT", path: "/api/v1/admin/companies/acme/cell", bearer: root, body: map[string]any{"cell": "EU!"}}, 422, "VALIDATION_FAILED"},
			{"empty cell", req{method: "PUT", path: "/api/v1/admin/companies/acme/cell", bearer: root, body: map[string]any{"cell": ""}}, 422, "VALIDATION_FAILED"},
			{"unknown field", req{method: "PUT", path: "/api/v1/admin/companies/acme/cell", bearer: root, body: map[string]any{"cell": "eu", "x": 1}}, 400, "BAD_REQUEST"},
			{"unknown company", req{method: "PUT", path: "/api/v1/admin/companies/nope/cell", bearer: root, body: map[string]any{"cell": "eu"}}, 404, "NOT_FOUND"},
			{"company admin", req{method: "PUT", path: "/api/v1/admin/companies/acme/cell", bearer: alice, body: map[string]any{"cell": "eu"}}, 403, "FORBIDDEN"},
			{"company admin reads", req{method: "GET", path: "/api/v1/admin/companies/acme/cell", bearer: alice}, 403, "FORBIDDEN"},
			{"no token", req{method: "DELETE", path: "/api/v1/admin/companies/acme/cell"}, 401, "UNAUTHENTICATED"},
		} {
			if a := e.do(t, tc.r); a.Status != tc.status || a.code() != tc.code {
				t.Errorf("%s: %d %s, want %d %s", tc.name, a.Status, a.Raw, tc.status, tc.code)
			}
		}
		if a := e.do(t, req{method: "PUT", path: "/api/v1/admin/companies/acme/cell", bearer: root, body: map[string]any{"cell": "mars"}}); a.Status == 422 {
			if m := a.Raw; !strings.Contains(m, "known cells: eu, us") {
				t.Errorf("the refusal does not name the known cells: %s", m)
			}
		}
		if a := e.do(t, req{method: "DELETE", path: "/api/v1/admin/companies/acme/cell", bearer: root}); a.Status != 200 || a.str("cell") != "" || a.data()["previous"] != "us" {
			t.Fatalf("delete: %d %s", a.Status, a.Raw)
		}
		got := hooks.heard()
		want := []string{"acme=eu", "acme=us", "acme="}
		if len(got) != len(want) {
			t.Fatalf("edge told %v, want %v", got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("edge told %v, want %v", got, want)
			}
		}
	})
}
