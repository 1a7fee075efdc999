package authsvc_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/erpgate/erpgate/authsvc"
)

// routeCases are the router's hot endpoints, a {…} route, a miss and a
// wrong method.
var routeCases = []struct{ name, method, path string }{
	{"refresh", http.MethodPost, "/api/v1/auth/refresh"},
	{"introspect", http.MethodPost, "/api/v1/auth/introspect"},
	{"jwks", http.MethodGet, "/.well-known/jwks.json"},
	{"wildcard", http.MethodPost, "/api/v1/auth/api-keys/6f1c2b3a-0d4e-4f5a-9b8c-7d6e5f4a3b2c/rotate"},
	{"miss", http.MethodGet, "/api/v1/auth/nope"},
}

// BenchmarkRouted is the path check erp_authsvc makes on every request
// before it hands the request to the service.
func BenchmarkRouted(b *testing.B) {
	for _, c := range routeCases {
		b.Run(c.name, func(b *testing.B) {
			want := c.name != "miss"
			b.ReportAllocs()
			for b.Loop() {
				if authsvc.Routed(c.path) != want {
					b.Fatal("Routed is wrong")
				}
			}
		})
	}
}

// BenchmarkRoute serves requests that the router alone answers or that do
// no I/O (the JWK Set): routing, the envelope, and nothing else.
func BenchmarkRoute(b *testing.B) {
	e := newEnv(b, envOpts{})
	for _, c := range []struct {
		name, method, path string
		status             int
	}{
		{"jwks", http.MethodGet, "/.well-known/jwks.json", 200},
		{"not-found", http.MethodGet, "/api/v1/auth/nope", 404},
		{"method-not-allowed", http.MethodGet, "/api/v1/auth/refresh", 405},
	} {
		b.Run(c.name, func(b *testing.B) {
			r := httptest.NewRequest(c.method, c.path, nil)
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				e.h.ServeHTTP(w, r)
				if w.Code != c.status {
					b.Fatalf("%d, want %d", w.Code, c.status)
				}
			}
		})
	}
}
