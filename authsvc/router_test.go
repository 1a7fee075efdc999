package authsvc_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/erpgate/erpgate/authsvc"
)

// Every answer of the router is an envelope (e.do checks it): the mux's
// plain-text 404, 405 and redirects never reach a client. A path is routed
// by its decoded form, segment by segment, as before the mux.
func TestRouterAnswers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	cases := []struct {
		name, method, path string
		status             int    // 0: routed to its handler (neither 404 nor 405)
		allow              string // the Allow header of a 405
	}{
		{"unknown path", "GET", "/api/v1/auth/nope", 404, ""},
		{"unknown prefix", "GET", "/nope", 404, ""},
		{"root", "GET", "/", 404, ""},
		{"wrong method", "GET", "/api/v1/auth/login", 405, "POST"},
		{"unknown method", "FOO", "/api/v1/auth/login", 405, "POST"},
		{"connect", "CONNECT", "/api/v1/auth/login", 405, "POST"},
		{"head is not get", "HEAD", "/api/v1/auth/me", 405, "GET"},
		{"two methods", "PUT", "/api/v1/auth/api-keys", 405, "GET, POST"},
		{"two methods, two params", "GET", "/api/v1/admin/memberships/acme/bob", 405, "DELETE, PUT"},
		{"lower-case method", "post", "/api/v1/auth/login", 405, "POST"},
		{"trailing slash", "POST", "/api/v1/auth/login/", 404, ""},
		{"double slash", "POST", "/api/v1/auth//login", 404, ""},
		{"dot segment", "POST", "/api/v1/auth/./login", 404, ""},
		{"dot-dot segment", "POST", "/api/v1/auth/x/../login", 404, ""},
		{"encoded dot-dot", "POST", "/api/v1/auth/x/%2e%2e/login", 404, ""},
		{"upper case", "POST", "/api/v1/auth/LOGIN", 404, ""},
		{"empty param", "DELETE", "/api/v1/auth/sessions/", 404, ""},
		{"empty first of two params", "PUT", "/api/v1/admin/memberships//bob", 404, ""},
		{"encoded slash in a param", "DELETE", "/api/v1/auth/sessions/a%2Fb", 404, ""},
		{"extra segment", "DELETE", "/api/v1/auth/sessions/a/b", 404, ""},
		{"encoded letter", "POST", "/api/v1/auth/%6Cogin", 0, ""},
		{"encoded slash between literals", "POST", "/api/v1/auth%2Flogin", 0, ""},
		{"param", "DELETE", "/api/v1/auth/sessions/abc", 0, ""},
		{"dot-dot as a param", "DELETE", "/api/v1/auth/sessions/..", 0, ""},
		{"encoded dot as a param", "DELETE", "/api/v1/auth/sessions/%2E", 0, ""},
		{"two params", "PUT", "/api/v1/admin/memberships/acme/bob%40globex.test", 0, ""},
		{"jwks", "GET", "/.well-known/jwks.json", 200, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := e.do(t, req{method: c.method, path: c.path})
			switch {
			case c.status == 0 && (a.Status == 404 || a.Status == 405):
				t.Fatalf("%s %s: %d, want it routed: %s", c.method, c.path, a.Status, a.Raw)
			case c.status != 0 && a.Status != c.status:
				t.Fatalf("%s %s: %d, want %d: %s", c.method, c.path, a.Status, c.status, a.Raw)
			}
			if got := a.Header.Get("Allow"); got != c.allow {
				t.Fatalf("Allow %q, want %q", got, c.allow)
			}
			if want := c.status != 404; authsvc.Routed(pathOf(t, c.path)) != want {
				t.Fatalf("Routed(%q) = %v, want %v", c.path, !want, want)
			}
		})
	}
}

// pathOf is the decoded path of a request target, as r.URL.Path has it.
func pathOf(t *testing.T, target string) string {
	t.Helper()
	r, err := http.NewRequest("GET", "http://h"+target, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r.URL.Path
}

// Every method of every route of the table reaches its handler.
func TestRouterRoutesEveryEndpoint(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	n := 0
	for path, methods := range authsvc.Routes() {
		for _, m := range methods {
			n++
			target := path
			for _, p := range []string{"{id}", "{company_id}", "{user_id}"} {
				target = strings.ReplaceAll(target, p, "x")
			}
			if path == "/api/v1/openapi.json" || path == "/api/v1/docs" || strings.HasPrefix(path, "/login") { // raw documents, not envelopes
				target = strings.ReplaceAll(target, "{asset}", "app.js")
				w := httptest.NewRecorder()
				e.h.ServeHTTP(w, httptest.NewRequest(m, target, nil))
				if w.Code != 200 {
					t.Errorf("%s %s: %d", m, path, w.Code)
				}
				continue
			}
			a := e.do(t, req{method: m, path: target, body: map[string]any{}})
			if a.Status == 405 || (a.Status == 404 && a.code() == "NOT_FOUND" && !strings.Contains(path, "{")) {
				t.Errorf("%s %s: %d %s", m, target, a.Status, a.Raw)
			}
		}
	}
	if n < 35 {
		t.Fatalf("the table has %d endpoints", n)
	}
}
