package browser_test

import (
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"golang.org/x/text/language"

	"github.com/erpgate/erpgate/internal/demoauth"
	"github.com/erpgate/erpgate/internal/httpt"
)

// browserOIDCPassword is every identity provider user's password.
const browserOIDCPassword = "idp-password-1"

// browserOIDCUsers are the provider's users by id; each signs in with its
// email as username.
type browserOIDCUsers map[string]*storage.User

func (u browserOIDCUsers) GetUserByID(id string) *storage.User { return u[id] }
func (u browserOIDCUsers) GetUserByUsername(name string) *storage.User {
	for _, v := range u {
		if v.Username == name {
			return v
		}
	}
	return nil
}
func (u browserOIDCUsers) ExampleClientID() string { return storage.ServiceUserID }

// browserOIDCProvider is a real OpenID provider in the test process:
// zitadel/oidc's op package with its example storage and login form, on a
// loopback port, with one web client whose redirect URI is the gateway's
// callback, and users with these (verified) addresses.
type browserOIDCProvider struct {
	Issuer, ClientID, ClientSecret string
}

func browserStartOIDCProvider(t *testing.T, publicURL string, emails ...string) *browserOIDCProvider {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &browserOIDCProvider{Issuer: "http://" + ln.Addr().String(), ClientID: "erpgate-page", ClientSecret: "page-client-secret-" + browserRandom() + browserRandom()}
	users := browserOIDCUsers{}
	for i, e := range emails {
		id := "idp-user-" + string(rune('a'+i))
		users[id] = &storage.User{ID: id, Username: e, Password: browserOIDCPassword, FirstName: "Idp", LastName: "Person", Email: e,
			EmailVerified: true, PreferredLanguage: language.English}
	}
	clients := map[string]*storage.Client{p.ClientID: storage.WebClient(p.ClientID, p.ClientSecret, publicURL+"/api/v1/auth/sso/callback")}
	srv := &http.Server{Handler: exampleop.SetupServer(p.Issuer, storage.NewStorageWithClients(users, clients), nil, false), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return p
}

// A company's SSO button on the page leads through the company's OpenID
// provider (its own login form) back to the page, which continues to the
// company and a token for the user it provisioned; an identity the
// company does not own comes back as a refusal the page shows.
func TestPageSignInOIDC(t *testing.T) {
	t.Parallel()
	in, public := browserGateway(t, map[string]string{"ERP_SSO_ALLOW_PRIVATE": "1"})
	email := "sso-" + browserRandom() + "@acme-idp.test"
	stranger := "eve-" + browserRandom() + "@elsewhere.test"
	idp := browserStartOIDCProvider(t, public, email, stranger)

	root := demoauth.Login(t, in.URL, "root@erpgate.local", "acme")
	r := httpt.Do(t, http.MethodPost, in.URL+"/api/v1/admin/companies/acme/sso", httpt.JSON(t, map[string]any{
		"kind": "oidc", "name": "Acme IdP", "domains": []string{"acme-idp.test"}, "jit": true, "default_role": "viewer",
		"oidc": map[string]any{"issuer": idp.Issuer, "client_id": idp.ClientID, "client_secret": idp.ClientSecret},
	}), demoauth.Bearer(root.Access))
	var conn struct {
		ID string `json:"id"`
	}
	if r.StatusCode != 201 || json.Unmarshal(r.Envelope(t).Data, &conn) != nil || conn.ID == "" {
		t.Fatalf("create the SSO connection: %d %s", r.StatusCode, r.Body)
	}

	b := browserOpen(t)
	b.open(public + "/login?company=acme")
	if got := b.text("a.sso-button"); got != "Sign in with Acme IdP" {
		t.Fatalf("the SSO button reads %q", got)
	}

	// The button, the provider's own form, and back.
	b.do("to the provider", click("a.sso-button"), visible("#username"))
	if loc := browserRun(b, "location", chromedp.Location()); !strings.HasPrefix(loc, idp.Issuer+"/login/username") {
		t.Fatalf("the button led to %s, not the provider's login", loc)
	}
	b.do("provider login", fill("#username", email), fill("#password", browserOIDCPassword), click(`button[type="submit"]`),
		visible(`#companies button[data-company-id="acme"]`))
	if loc := browserRun(b, "location", chromedp.Location()); loc != public+"/login" {
		t.Errorf("the page keeps %q in the address bar (the fragment must go)", loc)
	}
	b.do("company", click(`#companies button[data-company-id="acme"]`))
	tok := b.signedIn(in.URL, email, "acme", "Acme Corp")
	me := httpt.Do(t, http.MethodGet, in.URL+"/api/v1/auth/me", nil, demoauth.Bearer(tok.AccessToken))
	if !strings.Contains(string(me.Body), `"viewer"`) {
		t.Errorf("the provisioned member lacks the connection's default role: %s", me.Body)
	}

	// Signed out, the same button with an identity of another domain: the
	// provider vouches for it, the company does not own it; the page says
	// so and offers the sign-in again.
	b.do("sign out", click("#sign-out"), visible("#email"))
	b.open(public + "/login?company=acme")
	b.do("to the provider again", click("a.sso-button"), visible("#username"),
		fill("#username", stranger), fill("#password", browserOIDCPassword), click(`button[type="submit"]`),
		visible(`#app[data-ready="true"] #email`))
	if msg := b.waitError(); !strings.Contains(msg, "identity provider could not be completed") {
		t.Errorf("a foreign identity: the page says %q", msg)
	}
	if left := browserEval[string](b, `sessionStorage.getItem("erpgate.tokens") || ""`); left != "" {
		t.Errorf("a refused sign-in left tokens: %q", left)
	}
	b.noPageErrors()
}
