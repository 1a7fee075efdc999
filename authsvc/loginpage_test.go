package authsvc_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/erpgate/erpgate/authsvc"
	"github.com/erpgate/erpgate/authsvc/store"
)

// loginPageGet serves one GET of the hosted page (or an asset).
func loginPageGet(t *testing.T, e *env, path string) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
	return w
}

// loginPageDoc parses a page and returns its root.
func loginPageDoc(t *testing.T, body string) *html.Node {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatalf("the page is not HTML: %v", err)
	}
	return doc
}

func loginPageFind(n *html.Node, match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && match(n) {
			out = append(out, n)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return out
}

func loginPageAttr(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}

func loginPageText(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return strings.TrimSpace(b.String())
}

// The page is served with its policy and headers, links only its own
// versioned assets, and offers SSO buttons for exactly the connections of
// the company it was opened for, their names escaped.
func TestLoginPageSSOButtons(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOpts{})
	ctx := context.Background()
	if err := e.svc.Ready(ctx); err != nil { // the demo companies are seeded
		t.Fatal(err)
	}
	conns := []store.SSOConnection{
		{ID: "11111111-1111-4111-8111-111111111111", CompanyID: "acme", Kind: store.SSOKindOIDC, Name: `Acme <b>Okta</b>`, Domains: []string{"acme.test"}, Issuer: "https://idp.acme.test", ClientID: "c"},
		{ID: "22222222-2222-4222-8222-222222222222", CompanyID: "acme", Kind: store.SSOKindSAML, Name: "Acme ADFS", Domains: []string{"corp.acme.test"}},
		{ID: "33333333-3333-4333-8333-333333333333", CompanyID: "globex", Kind: store.SSOKindOIDC, Name: "Globex IdP", Domains: []string{"globex.test"}, Issuer: "https://idp.globex.test", ClientID: "g"},
	}
	for i, c := range conns {
		c.CreatedAt = time.Date(2026, 1, 1, 0, 0, i, 0, time.UTC)
		if err := e.svc.Store().CreateSSOConnection(ctx, c, store.Event{Type: "test.sso_created", Time: c.CreatedAt}); err != nil {
			t.Fatal(err)
		}
	}

	w := loginPageGet(t, e, "/login?company=acme")
	if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("GET /login: %d %s %s", w.Code, w.Header().Get("Content-Type"), w.Body)
	}
	for k, want := range map[string]string{
		"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
		"X-Frame-Options":         "DENY",
		"Referrer-Policy":         "no-referrer",
		"Cache-Control":           "no-store",
		"X-Content-Type-Options":  "nosniff",
	} {
		if got := w.Header().Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	doc := loginPageDoc(t, w.Body.String())
	links := loginPageFind(doc, func(n *html.Node) bool {
		return n.Data == "a" && strings.Contains(loginPageAttrOr(n, "class"), "sso-button")
	})
	if len(links) != 2 {
		t.Fatalf("%d SSO buttons for acme, want 2:\n%s", len(links), w.Body)
	}
	wantHref := []string{
		"/api/v1/auth/sso/acme/start?connection=11111111-1111-4111-8111-111111111111&return_to=%2Flogin",
		"/api/v1/auth/sso/acme/start?connection=22222222-2222-4222-8222-222222222222&return_to=%2Flogin",
	}
	wantText := []string{"Sign in with Acme <b>Okta</b>", "Sign in with Acme ADFS"}
	for i, a := range links {
		if href := loginPageAttrOr(a, "href"); href != wantHref[i] {
			t.Errorf("button %d links %q, want %q", i, href, wantHref[i])
		}
		if got := loginPageText(a); got != wantText[i] {
			t.Errorf("button %d reads %q, want %q", i, got, wantText[i])
		}
		if a.FirstChild == nil || a.FirstChild.NextSibling != nil || a.FirstChild.Type != html.TextNode {
			t.Errorf("button %d: the connection's name was not escaped", i)
		}
	}
	if main := loginPageFind(doc, func(n *html.Node) bool { return loginPageAttrOr(n, "id") == "app" }); len(main) != 1 || loginPageAttrOr(main[0], "data-company") != "acme" {
		t.Errorf("the page does not name its company")
	}

	// The script and style are the page's own, at the versions it links.
	for _, asset := range []struct{ tag, attr, path, ctype string }{
		{"script", "src", "/login/app.js", "text/javascript"},
		{"link", "href", "/login/app.css", "text/css"},
	} {
		els := loginPageFind(doc, func(n *html.Node) bool {
			return n.Data == asset.tag && strings.HasPrefix(loginPageAttrOr(n, asset.attr), asset.path+"?v=")
		})
		if len(els) != 1 {
			t.Fatalf("the page links %s %d times", asset.path, len(els))
		}
		a := loginPageGet(t, e, loginPageAttrOr(els[0], asset.attr))
		if a.Code != 200 || !strings.HasPrefix(a.Header().Get("Content-Type"), asset.ctype) || a.Body.Len() < 500 {
			t.Errorf("%s: %d %s (%d bytes)", asset.path, a.Code, a.Header().Get("Content-Type"), a.Body.Len())
		}
	}

	// Another company's page shows its own connection; a company without
	// one, an unknown one and a malformed id show none (and the same page).
	w = loginPageGet(t, e, "/login?company=globex")
	if n := strings.Count(w.Body.String(), `class="button sso-button"`); n != 1 || !strings.Contains(w.Body.String(), "Globex IdP") || strings.Contains(w.Body.String(), "Acme") {
		t.Errorf("globex's page shows %d SSO buttons:\n%s", n, w.Body)
	}
	plain := loginPageGet(t, e, "/login").Body.String()
	if strings.Contains(plain, "sso-button") || !strings.Contains(plain, `data-company=""`) {
		t.Errorf("the page without a company shows SSO buttons")
	}
	if _, err := e.svc.Store().GetCompany(ctx, "initech"); err == nil {
		t.Fatal("initech exists")
	}
	for _, q := range []string{"initech", "%3Cscript%3E", "ACME", strings.Repeat("a", 80)} {
		if got := loginPageGet(t, e, "/login?company="+q).Body.String(); got != plain {
			t.Errorf("?company=%s differs from the page without a company", q)
		}
	}

	// Unknown assets are not found, in the envelope.
	if w := loginPageGet(t, e, "/login/other.js"); w.Code != 404 || !strings.Contains(w.Body.String(), `"NOT_FOUND"`) {
		t.Errorf("/login/other.js: %d %s", w.Code, w.Body)
	}
	post := httptest.NewRecorder()
	e.h.ServeHTTP(post, httptest.NewRequest(http.MethodPost, "/login", strings.NewReader("{}")))
	if post.Code != 405 {
		t.Errorf("POST /login: %d", post.Code)
	}
}

// Magic links are offered only when mail is configured and the service
// has the endpoint; passkeys only when it has theirs.
func TestLoginPageOffers(t *testing.T) {
	t.Parallel()
	routes := authsvc.Routes()
	_, hasMagic := routes["/api/v1/auth/magic-link"]
	_, hasPasskeys := routes["/api/v1/auth/webauthn/login/begin"]
	onOff := func(b bool) string {
		if b {
			return "on"
		}
		return "off"
	}
	for _, tc := range []struct {
		name     string
		smtp     string
		public   string
		want     string
		passkeys bool
	}{
		{"no mail", "", "http://localhost:8080", "off", hasPasskeys},
		{"mail", "smtp://127.0.0.1:1025", "http://localhost:8080", onOff(hasMagic), hasPasskeys},
		// an IP address cannot be a passkey relying party
		{"public URL with an IP address", "", "http://127.0.0.1:8080", "off", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOpts{cfg: authsvc.Config{SMTPURL: tc.smtp, SMTPFrom: "erpgate@example.test", PublicURL: tc.public}})
			body := loginPageGet(t, e, "/login").Body.String()
			if !strings.Contains(body, `data-magic-links="`+tc.want+`"`) {
				t.Errorf("magic links not %s", tc.want)
			}
			if (tc.want == "on") != strings.Contains(body, `id="magic-link"`) {
				t.Errorf("the magic link button does not follow data-magic-links=%s", tc.want)
			}
			if !strings.Contains(body, `data-passkeys="`+onOff(tc.passkeys)+`"`) || tc.passkeys != strings.Contains(body, `id="passkey-login"`) {
				t.Errorf("passkeys offered wrongly (want %v)", tc.passkeys)
			}
		})
	}
}

func loginPageAttrOr(n *html.Node, key string) string {
	v, _ := loginPageAttr(n, key)
	return v
}
