package authsvc

import (
	"strings"
	"testing"
)

func TestSpanNames(t *testing.T) {
	t.Parallel()
	for pattern, want := range map[string]string{
		"POST /api/v1/auth/login":                      "authsvc.login",
		"POST /api/v1/auth/mfa/verify":                 "authsvc.mfa.verify",
		"POST /api/v1/admin/users/{id}/reset-password": "authsvc.admin.users.{id}.reset-password",
		"GET /.well-known/jwks.json":                   "authsvc.web.well-known.jwks.json",
		"GET /login":                                   "authsvc.web.login",
	} {
		if got := spanName(pattern, 1); got != want {
			t.Errorf("spanName(%q) = %q, want %q", pattern, got, want)
		}
	}
	if got := spanName("GET /api/v1/auth/api-keys", 2); got != "authsvc.api-keys.GET" {
		t.Errorf("a path with two methods: %q", got)
	}
	// one name per route, none empty or holding a {…} segment
	seen := map[string]string{}
	for _, routes := range router.literal {
		for _, rt := range routes {
			if !strings.HasPrefix(rt.span, "authsvc.") || strings.Contains(rt.span, "{") {
				t.Errorf("a route without {…} has the span name %q", rt.span)
			}
		}
	}
	methods := map[string]int{}
	for pattern := range routeTable {
		_, path, _ := strings.Cut(pattern, " ")
		methods[path]++
	}
	for pattern := range routeTable {
		_, path, _ := strings.Cut(pattern, " ")
		n := spanName(pattern, methods[path])
		if other, dup := seen[n]; dup {
			t.Errorf("routes %q and %q share the span name %q", pattern, other, n)
		}
		seen[n] = pattern
	}
}
