package authsvc_test

import (
	"slices"
	"testing"
	"time"

	"github.com/erpgate/erpgate/authsvc"
)

// A login answer names the second factors the token may be completed
// with, and /mfa/verify takes only those.
func TestLoginMFAMethods(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	methods := func(a answer) []string {
		var out []string
		for _, m := range a.data()["mfa_methods"].([]any) {
			out = append(out, m.(string))
		}
		return out
	}
	if l := e.login(t, "alice@acme.test", authsvc.DemoPassword); l.data()["mfa_required"] != false || len(methods(l)) != 0 {
		t.Fatalf("login without a second factor: %s", l.Raw)
	}
	s := e.session(t, "alice@acme.test", "acme")
	secret, _ := enrollTOTP(t, e, s.str("access_token"))
	l := e.login(t, "alice@acme.test", authsvc.DemoPassword)
	if l.data()["mfa_required"] != true || !slices.Equal(methods(l), []string{"totp"}) {
		t.Fatalf("login with TOTP: %s", l.Raw)
	}
	e.clock.Add(30 * time.Second)
	code := independentCode(t, secret, e.clock.Now())
	for _, m := range []string{"sms", "email", "webauthn", "carrier-pigeon"} {
		v := e.do(t, req{method: "POST", path: "/api/v1/auth/mfa/verify", body: map[string]any{"login_token": l.str("login_token"), "code": code, "method": m}})
		if v.Status != 422 || v.code() != "VALIDATION_FAILED" {
			t.Fatalf("method %s not offered: %d %s", m, v.Status, v.Raw)
		}
	}
	// The refusals spent nothing: the code and the token still pass.
	v := e.do(t, req{method: "POST", path: "/api/v1/auth/mfa/verify", body: map[string]any{"login_token": l.str("login_token"), "code": code, "method": "totp"}})
	if v.Status != 200 || v.data()["method"] != "totp" || v.data()["mfa_required"] != false {
		t.Fatalf("verify: %d %s", v.Status, v.Raw)
	}
}
