package authsvc_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/erpgate/erpgate/authsvc"
)

// waAssertion is a well-formed (unsigned) assertion for a challenge:
// enough to pass parsing, so the session checks before verification are
// what answers.
func waAssertion(challenge string) map[string]any {
	cd, _ := json.Marshal(map[string]any{"type": "webauthn.get", "challenge": challenge, "origin": "http://localhost:8080"})
	h := sha256.Sum256([]byte("localhost"))
	ad := append(h[:], 0x05, 0, 0, 0, 1)
	b := base64.RawURLEncoding.EncodeToString
	id := b([]byte("0123456789abcdef"))
	return map[string]any{"id": id, "rawId": id, "type": "public-key",
		"response": map[string]any{"clientDataJSON": b(cd), "authenticatorData": b(ad), "signature": b([]byte{0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01})}}
}

func waLastReason(t *testing.T, e *env, root string) string {
	t.Helper()
	a := e.do(t, req{method: "GET", path: "/api/v1/admin/audit?type=webauthn.failed&limit=1", bearer: root})
	list, _ := a.Body["data"].([]any)
	if a.Status != 200 || len(list) == 0 {
		t.Fatalf("audit: %d %v", a.Status, a.Body)
	}
	d, _ := list[0].(map[string]any)["details"].(map[string]any)
	r, _ := d["reason"].(string)
	return r
}

// A ceremony is good for WebAuthnSessionTTL on the service's clock, and a
// session of one step does not open at another.
func TestWebAuthnSessionBounds(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	root := e.session(t, "root@erpgate.local", "acme").str("access_token")
	alice := e.session(t, "alice@acme.test", "acme").str("access_token")

	begin := e.do(t, req{method: "POST", path: "/api/v1/auth/webauthn/login/begin", body: map[string]any{}})
	if begin.Status != 200 || begin.str("session") == "" {
		t.Fatalf("begin: %d %v", begin.Status, begin.Body)
	}
	pk := begin.data()["options"].(map[string]any)["publicKey"].(map[string]any)
	e.clock.Add(authsvc.WebAuthnSessionTTL)
	fin := e.do(t, req{method: "POST", path: "/api/v1/auth/webauthn/login/finish",
		body: map[string]any{"session": begin.str("session"), "credential": waAssertion(pk["challenge"].(string))}})
	if fin.Status != 401 || fin.code() != "UNAUTHENTICATED" {
		t.Fatalf("expired session: %d %v", fin.Status, fin.Body)
	}
	if r := waLastReason(t, e, root); r != authsvc.ReasonWebAuthnExpired {
		t.Fatalf("expired session audited as %q", r)
	}

	// A registration session is no login session (and the other way round).
	reg := e.do(t, req{method: "POST", path: "/api/v1/auth/webauthn/register/begin", bearer: alice, body: map[string]any{"name": "k"}})
	if reg.Status != 200 {
		t.Fatalf("register begin: %d %v", reg.Status, reg.Body)
	}
	fin = e.do(t, req{method: "POST", path: "/api/v1/auth/webauthn/login/finish",
		body: map[string]any{"session": reg.str("session"), "credential": waAssertion("x")}})
	if fin.Status != 401 || waLastReason(t, e, root) != authsvc.ReasonWebAuthnSession {
		t.Fatalf("registration session at login: %d %v", fin.Status, fin.Body)
	}
	login := e.do(t, req{method: "POST", path: "/api/v1/auth/webauthn/login/begin", body: map[string]any{}})
	fin = e.do(t, req{method: "POST", path: "/api/v1/auth/webauthn/register/finish", bearer: alice,
		body: map[string]any{"session": login.str("session"), "credential": map[string]any{"id": "x"}}})
	if fin.Status != 422 || waLastReason(t, e, root) != authsvc.ReasonWebAuthnSession {
		t.Fatalf("login session at registration: %d %v", fin.Status, fin.Body)
	}
}

// With an IP address as the public URL's host there is no relying party:
// the passkey endpoints say so, and logins offer no passkey factor.
func TestWebAuthnOffForIPAddress(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{cfg: authsvc.Config{PublicURL: "http://127.0.0.1:8080"}})
	a := e.do(t, req{method: "POST", path: "/api/v1/auth/webauthn/login/begin", body: map[string]any{}})
	if a.Status != 503 || a.code() != "SERVICE_UNAVAILABLE" {
		t.Fatalf("passkeys without a domain: %d %v", a.Status, a.Body)
	}
}

// The passkey answers match the OpenAPI document.
func TestWebAuthnOpenAPIAnswers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	doc, c := loadDoc(t), docCompiler(t)
	alice := e.session(t, "alice@acme.test", "acme").str("access_token")
	login := e.login(t, "alice@acme.test", authsvc.DemoPassword)
	for _, r := range []struct {
		path string
		r    req
	}{
		{"/api/v1/auth/webauthn/register/begin", req{method: "POST", path: "/api/v1/auth/webauthn/register/begin", bearer: alice, body: map[string]any{"name": "Laptop"}}},
		{"/api/v1/auth/webauthn/register/begin", req{method: "POST", path: "/api/v1/auth/webauthn/register/begin", body: map[string]any{}}},
		{"/api/v1/auth/webauthn/register/finish", req{method: "POST", path: "/api/v1/auth/webauthn/register/finish", bearer: alice, body: map[string]any{"session": "x", "credential": map[string]any{}}}},
		{"/api/v1/auth/webauthn/login/begin", req{method: "POST", path: "/api/v1/auth/webauthn/login/begin", body: map[string]any{}}},
		{"/api/v1/auth/webauthn/login/begin", req{method: "POST", path: "/api/v1/auth/webauthn/login/begin", body: map[string]any{"email": "nobody@acme.test"}}},
		{"/api/v1/auth/webauthn/login/begin", req{method: "POST", path: "/api/v1/auth/webauthn/login/begin", body: map[string]any{"login_token": login.str("login_token")}}},
		{"/api/v1/auth/webauthn/login/finish", req{method: "POST", path: "/api/v1/auth/webauthn/login/finish", body: map[string]any{"session": "x", "credential": waAssertion("x")}}},
		{"/api/v1/auth/webauthn/credentials", req{method: "GET", path: "/api/v1/auth/webauthn/credentials", bearer: alice}},
		{"/api/v1/auth/webauthn/credentials/{id}", req{method: "DELETE", path: "/api/v1/auth/webauthn/credentials/00000000-0000-0000-0000-000000000000", bearer: alice}},
	} {
		a := e.do(t, r.r)
		v, err := jsonschema.UnmarshalJSON(strings.NewReader(a.Raw))
		if err != nil {
			t.Fatal(err)
		}
		if err := responseSchema(t, c, doc, r.path, r.r.method, a.Status).Validate(v); err != nil {
			t.Errorf("%s %s %d does not match the document: %v\n%s", r.r.method, r.path, a.Status, err, a.Raw)
		}
	}
}
