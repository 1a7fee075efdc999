package browser_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"github.com/erpgate/erpgate/internal/demoauth"
	"github.com/erpgate/erpgate/internal/httpt"
)

// browserAuthenticator gives the tab a virtual platform authenticator
// (CTAP2, internal transport, resident keys, user verification that
// passes, presence confirmed at once) and returns its id.
func browserAuthenticator(b *browserSession) webauthn.AuthenticatorID {
	b.t.Helper()
	if _, err := chromedp.Call(b.ctx, webauthn.Enable, webauthn.EnableParams{}); err != nil {
		b.t.Fatalf("WebAuthn.enable: %v", err)
	}
	res, err := chromedp.Call(b.ctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{Options: &webauthn.VirtualAuthenticatorOptions{
		Protocol:                    webauthn.AuthenticatorProtocolCtap2,
		Ctap2version:                webauthn.Ctap2versionCtap21,
		Transport:                   webauthn.AuthenticatorTransportInternal,
		HasResidentKey:              true,
		HasUserVerification:         true,
		IsUserVerified:              true,
		AutomaticPresenceSimulation: true,
	}})
	if err != nil {
		b.t.Fatalf("WebAuthn.addVirtualAuthenticator: %v", err)
	}
	return res.AuthenticatorID
}

// A user signs in with a password, adds a passkey on the page, signs out,
// and signs in again with the passkey alone (no address typed): the
// company-scoped token at the end is theirs. Then a password sign-in asks
// for the passkey as the second factor.
func TestPageSignInPasskey(t *testing.T) {
	t.Parallel()
	in, public := browserGateway(t, nil)
	u := browserNewUser(t, in.URL, "acme", "viewer")

	b := browserOpen(t)
	auth := browserAuthenticator(b)
	b.open(public + "/login")
	b.do("passkey button", visible("#passkey-login"))

	// Password, company, then "Add a passkey".
	b.do("password", fill("#email", u.Email), fill("#password", u.Password), click("#password-submit"),
		visible(`#companies button[data-company-id="acme"]`), click(`#companies button[data-company-id="acme"]`))
	first := b.signedIn(in.URL, u.Email, "acme", "Acme Corp")
	b.do("add a passkey", click("#add-passkey"))
	if s := b.waitFor(`document.getElementById("add-passkey").hidden && $("#status").textContent || $("#error").textContent`); s != "Passkey added. Next time you can sign in with it." {
		t.Fatalf("after adding a passkey the page says %q", s)
	}
	creds, err := chromedp.Call(b.ctx, webauthn.GetCredentials, webauthn.GetCredentialsParams{AuthenticatorID: auth})
	if err != nil || len(creds.Credentials) != 1 || creds.Credentials[0].RpID != "localhost" || !creds.Credentials[0].IsResidentCredential {
		t.Fatalf("the authenticator holds %+v (%v), want one resident passkey for localhost", creds.Credentials, err)
	}
	r := httpt.Do(t, http.MethodGet, in.URL+"/api/v1/auth/webauthn/credentials", nil, demoauth.Bearer(first.AccessToken))
	var listed []struct {
		ID string `json:"id"`
	}
	if r.StatusCode != 200 || json.Unmarshal(r.Envelope(t).Data, &listed) != nil || len(listed) != 1 {
		t.Fatalf("the user's passkeys: %d %s", r.StatusCode, r.Body)
	}

	// Sign out: the tokens are gone and the page starts over.
	b.do("sign out", click("#sign-out"), visible("#email"))
	if left := browserEval[string](b, `sessionStorage.getItem("erpgate.tokens") || ""`); left != "" {
		t.Fatalf("sessionStorage keeps %q after sign-out", left)
	}

	// The passkey alone: discoverable, verified on the device, no second
	// factor asked.
	b.do("sign in with the passkey", click("#passkey-login"), visible(`#companies button[data-company-id="acme"]`),
		click(`#companies button[data-company-id="acme"]`))
	second := b.signedIn(in.URL, u.Email, "acme", "Acme Corp")
	if second.AccessToken == first.AccessToken {
		t.Fatal("the passkey sign-in reused the first session's token")
	}

	// With a passkey, a password sign-in asks for it as the second factor.
	b.do("sign out again", click("#sign-out"), visible("#email"))
	b.do("password with the passkey as second factor", fill("#email", u.Email), fill("#password", u.Password), click("#password-submit"),
		visible("#mfa-submit"))
	if got := b.text("#mfa-submit"); got != "Use my passkey" {
		t.Fatalf("the second-factor step offers %q", got)
	}
	if shown := browserEval[bool](b, `!document.getElementById("code-field").hidden`); shown {
		t.Error("a code field is shown for a passkey")
	}
	b.do("the passkey", click("#mfa-submit"), visible(`#companies button[data-company-id="acme"]`), click(`#companies button[data-company-id="acme"]`))
	b.signedIn(in.URL, u.Email, "acme", "Acme Corp")
	b.noPageErrors()
}
