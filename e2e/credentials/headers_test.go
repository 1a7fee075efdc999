package credentials

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/erpgate/erpgate/internal/stacktest"
)

// identityHeaders are headers a client may send hoping a backend trusts
// them, in the spellings a client would try (Caddy itself drops names with
// `_` or `.` before any handler runs).
var identityHeaders = []string{
	"X-User-ID", "x-user-id", "X-USER-ID", "X-Roles", "X-Company-ID", "X-Tenant-ID",
	"X-Forwarded-User", "X-Remote-User", "Remote-User", "X-Auth-Request-User", "X-Auth-Request-Email",
	"X-Auth-Request-Access-Token", "X-ERP-Company-ID", "x-erp-user-id", "X-ERP-Roles", "X-ERP-Scope",
	"X-ERP-Assertion",
	"X-Employee-Number", // added to the default list by the test's config
}

// exampleWithEcho is Caddyfile.example with three more routes to a backend
// that echoes what it received: one without erp_auth, one under
// /api/v1/auth/ (as a remote auth service would be), one behind erp_auth;
// and with erp_envelope's list extended by `X-Employee-*`.
func exampleWithEcho(t *testing.T, echoURL string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(stacktest.RepoRoot(), "Caddyfile.example"))
	if err != nil {
		t.Fatal(err)
	}
	const anchor = "\thandle /health/* {"
	if !strings.Contains(string(b), anchor) {
		t.Fatal("Caddyfile.example has no /health/* route to put the echo routes before")
	}
	hp := hostPort(echoURL)
	routes := "\thandle /raw/* {\n\t\treverse_proxy " + hp + "\n\t}\n" +
		"\thandle /api/v1/auth/remote/* {\n\t\treverse_proxy " + hp + "\n\t}\n" +
		"\thandle /authed/* {\n\t\terp_auth {\n\t\t\trequire invoices:read\n\t\t}\n\t\treverse_proxy " + hp + "\n\t}\n"
	out := strings.Replace(string(b), anchor, routes+anchor, 1)
	// the list extended by configuration
	const envelope = "\n\terp_envelope\n"
	if !strings.Contains(out, envelope) {
		t.Fatal("Caddyfile.example has no bare erp_envelope line")
	}
	return strings.Replace(out, envelope, "\n\terp_envelope {\n\t\tstrip_headers default X-Employee-*\n\t}\n", 1)
}

// TestIdentityHeadersNeverReachABackend: identity-like headers from the
// client (the configurable list's default and the edge's own X-ERP-*) are
// removed before anything reads them, on every route: one without erp_auth,
// the auth service's path, an authenticated one, and a WebSocket upgrade.
// A harmless header still arrives.
func TestIdentityHeadersNeverReachABackend(t *testing.T) {
	t.Parallel()
	backend := newEcho(t)
	in := stacktest.Start(t, stacktest.Options{Config: exampleWithEcho(t, backend.URL)})
	alice := login(t, in.URL)

	forged := func(name string) http.Header {
		h := http.Header{"X-Test-Case": {name}, "X-Client-Note": {"harmless"}}
		for i, k := range identityHeaders {
			h[k] = append(h[k], "forged-"+string(rune('a'+i)))
		}
		return h
	}
	cases := map[string]struct {
		path string
		more http.Header
	}{
		"no erp_auth":     {"/raw/echo", nil},
		"auth service":    {"/api/v1/auth/remote/echo", nil},
		"behind erp_auth": {"/authed/echo", http.Header{"Authorization": {"Bearer " + alice.Access}}},
		"upgrade":         {"/raw/ws", http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}, "Sec-Websocket-Version": {"13"}, "Sec-Websocket-Key": {"dGhlIHNhbXBsZSBub25jZQ=="}}},
	}
	for name, c := range cases {
		h := forged(name)
		for k, v := range c.more {
			h[k] = v
		}
		resp := send(t, http.MethodGet, in.URL+c.path, nil, h)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", name, resp.StatusCode, resp.Body)
		}
		got, ok := backend.headers(name)
		if !ok {
			t.Fatalf("%s: the backend was not reached", name)
		}
		for k, vs := range got {
			for _, v := range vs {
				if strings.Contains(v, "forged-") {
					t.Errorf("%s: the backend got the client's %s: %s", name, k, v)
				}
			}
		}
		if got.Get("X-Client-Note") != "harmless" {
			t.Errorf("%s: a harmless header was removed", name)
		}
	}
	// behind erp_auth the edge states the identity itself
	got, _ := backend.headers("behind erp_auth")
	if got.Get("X-Erp-Company-Id") != "acme" {
		t.Errorf("behind erp_auth: X-ERP-Company-ID %q", got.Get("X-Erp-Company-Id"))
	}
}
