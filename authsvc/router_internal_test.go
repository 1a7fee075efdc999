package authsvc

import (
	"net/http/httptest"
	"slices"
	"testing"
)

// The route's {…} values are the decoded segments, in order.
func TestRouterParams(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		method, target string
		params         []string
	}{
		{"DELETE", "/api/v1/auth/sessions/abc", []string{"abc"}},
		{"DELETE", "/api/v1/auth/sessions/a%20b", []string{"a b"}},
		{"DELETE", "/api/v1/auth/sessions/..", []string{".."}},
		{"DELETE", "/api/v1/auth/sessions/%2E", []string{"."}},
		{"DELETE", "/api/v1/auth/sessions/a%25b", []string{"a%b"}},
		{"POST", "/api/v1/auth/api-keys/k1/rotate", []string{"k1"}},
		{"PUT", "/api/v1/admin/memberships/acme/bob%40globex.test", []string{"acme", "bob@globex.test"}},
		{"DELETE", "/api/v1/admin/memberships/../..", []string{"..", ".."}},
		{"POST", "/api/v1/auth/refresh", nil},
	} {
		r := httptest.NewRequest(c.method, c.target, nil)
		var p probe
		rt, mr := router.find(r, &p)
		if rt == nil {
			t.Fatalf("%s %s: no route", c.method, c.target)
		}
		var got []string
		for _, name := range rt.params {
			got = append(got, mr.PathValue(name))
		}
		if !slices.Equal(got, c.params) {
			t.Fatalf("%s %s: params %q, want %q", c.method, c.target, got, c.params)
		}
	}
}

func TestHasDotSegment(t *testing.T) {
	t.Parallel()
	for path, want := range map[string]bool{
		"/": false, "/.well-known/jwks.json": false, "/a/b.": false, "/a/..b": false, "/a/.b/c": false,
		"/.": true, "/..": true, "/a/./b": true, "/a/../b": true, "/a/..": true, "/a/.": true, ".": true,
	} {
		if hasDotSegment(path) != want {
			t.Errorf("hasDotSegment(%q) = %v", path, !want)
		}
	}
}

// The literal index answers as the mux does, for every method of every
// path without {…}, HEAD and an unknown method included.
func TestRouterLiteralIndex(t *testing.T) {
	t.Parallel()
	if len(router.literal) < 20 {
		t.Fatalf("%d literal paths", len(router.literal))
	}
	for path := range router.literal {
		for _, m := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "FOO"} {
			r := httptest.NewRequest(m, path, nil)
			var p1, p2 probe
			fast, _ := router.find(r, &p1)
			slow, _ := router.findByMux(r, &p2)
			if fast != slow {
				t.Fatalf("%s %s: the index says %p, the mux %p", m, path, fast, slow)
			}
		}
		if !Routed(path) {
			t.Fatalf("Routed(%q) = false", path)
		}
	}
}
