package browser_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/erpgate/erpgate/internal/demoauth"
	"github.com/erpgate/erpgate/internal/httpt"
)

// A user with TOTP signs in on the page: email and password, then the
// code, then the company; wrong input on the way is announced and the
// focus goes where the user fixes it. Signing out ends the session.
func TestPageSignInPasswordAndTOTP(t *testing.T) {
	t.Parallel()
	in, public := browserGateway(t, nil)
	u := browserNewUser(t, in.URL, "acme", "viewer")
	access := browserAPILogin(t, in.URL, u, "acme")
	r := httpt.Do(t, http.MethodPost, in.URL+"/api/v1/auth/mfa/totp/enroll", []byte("{}"), demoauth.Bearer(access))
	var en struct {
		Secret string `json:"secret"`
	}
	if r.StatusCode != 200 || json.Unmarshal(r.Envelope(t).Data, &en) != nil || en.Secret == "" {
		t.Fatalf("enroll: %d %s", r.StatusCode, r.Body)
	}
	confirmed := browserTOTPCode(t, en.Secret, time.Now())
	if r := httpt.Do(t, http.MethodPost, in.URL+"/api/v1/auth/mfa/totp/confirm", httpt.JSON(t, map[string]string{"code": confirmed}), demoauth.Bearer(access)); r.StatusCode != 200 {
		t.Fatalf("confirm: %d %s", r.StatusCode, r.Body)
	}

	b := browserOpen(t)
	b.open(public + "/login")
	if f := b.focused(); f != "email" {
		t.Errorf("the page opens with the focus on %q, want the email field", f)
	}

	// No address: said so, focus on the field.
	b.do("submit empty", click("#password-submit"))
	if msg := b.waitError(); !strings.Contains(msg, "email") || b.focused() != "email" {
		t.Errorf("empty email: %q, focus on %q", msg, b.focused())
	}
	// A wrong password: the service's message, nothing about the account.
	b.do("wrong password", fill("#email", u.Email), fill("#password", "not-the-password"), click("#password-submit"))
	if msg := b.waitError(); msg != "invalid email or password" || b.focused() != "error" {
		t.Errorf("wrong password: %q, focus on %q", msg, b.focused())
	}

	// The password: the second factor is asked, the code field focused.
	b.do("password", fill("#password", u.Password), click("#password-submit"), visible("#code"))
	if f := b.focused(); f != "code" {
		t.Errorf("the second-factor step opens with the focus on %q", f)
	}
	methods := browserEval[[]string](b, `Array.from(document.querySelectorAll('#mfa-methods .choice:not([hidden]) input')).map(i => i.value)`)
	if len(methods) != 1 || methods[0] != "totp" {
		t.Errorf("the page offers %v, want [totp]", methods)
	}

	// A wrong code: refused, focus back on the code.
	wrong := browserTOTPCode(t, en.Secret, time.Now().Add(30*time.Second))
	wrong = wrong[:5] + string('0'+(wrong[5]-'0'+5)%10)
	b.do("wrong code", fill("#code", wrong), click("#mfa-submit"))
	if msg := b.waitError(); !strings.Contains(msg, "code") || b.focused() != "code" {
		t.Errorf("wrong code: %q, focus on %q", msg, b.focused())
	}

	// The right code (the next step's: the current one was spent by the
	// confirmation), trusting the device; then the company.
	b.do("code", fill("#code", browserTOTPCode(t, en.Secret, time.Now().Add(30*time.Second))),
		click("#trust-device"), click("#mfa-submit"), visible(`#companies button[data-company-id="acme"]`))
	if f := browserEval[string](b, `document.activeElement.getAttribute("data-company-id") || ""`); f != "acme" {
		t.Errorf("the company step opens with the focus on %q (%q)", b.focused(), f)
	}
	b.do("company", click(`#companies button[data-company-id="acme"]`))
	tok := b.signedIn(in.URL, u.Email, "acme", "Acme Corp")

	// The token is a company-scoped access token: the edge serves the
	// company's data with it.
	inv := httpt.Do(t, http.MethodGet, in.URL+"/api/v2/invoices", nil, demoauth.Bearer(tok.AccessToken))
	if inv.StatusCode != 200 || inv.Envelope(t).Meta.CompanyID != "acme" {
		t.Fatalf("invoices with the page's token: %d %s", inv.StatusCode, inv.Body)
	}

	// Signing out ends the session and forgets the tokens.
	b.do("sign out", click("#sign-out"), visible("#email"))
	if left := browserEval[string](b, `sessionStorage.getItem("erpgate.tokens") || ""`); left != "" {
		t.Errorf("sessionStorage keeps %q after sign-out", left)
	}
	if me := httpt.Do(t, http.MethodGet, in.URL+"/api/v1/auth/me", nil, demoauth.Bearer(tok.AccessToken)); me.StatusCode != 401 {
		t.Errorf("GET /me after sign-out: %d", me.StatusCode)
	}
	b.noPageErrors()
}
