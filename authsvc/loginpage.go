package authsvc

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"html/template"
	"net/http"
	"net/url"

	"github.com/erpgate/erpgate/authsvc/store"
	"github.com/erpgate/erpgate/contract"
)

// The hosted sign-in page, GET /login: one HTML document rendered on the
// server with what the company and the service offer (the company's SSO
// buttons, magic links when mail is configured, passkeys when the service
// has them), and its own script and style at /login/app.js and
// /login/app.css. The script drives the JSON API of the same origin
// (password, second factors, passkeys, magic links, SSO results, company
// selection); the page holds no inline script or style, so its policy
// allows nothing but those two files and same-origin fetches.

// pageRoutes are the hosted pages.
var pageRoutes = map[string]handlerFunc{
	"GET /login":         (*Service).handleLoginPage,
	"GET /login/{asset}": (*Service).handleLoginAsset,
}

//go:embed loginpage/index.html loginpage/app.js loginpage/app.css
var loginPageFiles embed.FS

// LoginPageCSP is the Content-Security-Policy of the hosted sign-in page.
const LoginPageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// loginAsset is one embedded file of the page, with a version (a hash of
// its content) that the page's links carry so that a new binary's page
// never runs an old cached script.
type loginAsset struct {
	contentType string
	body        []byte
	version     string
}

var (
	loginAssets = map[string]loginAsset{
		"app.js":  newLoginAsset("loginpage/app.js", "text/javascript; charset=utf-8"),
		"app.css": newLoginAsset("loginpage/app.css", "text/css; charset=utf-8"),
	}
	loginPageTemplate = template.Must(template.New("index.html").ParseFS(loginPageFiles, "loginpage/index.html"))
)

func newLoginAsset(name, contentType string) loginAsset {
	b, err := loginPageFiles.ReadFile(name)
	if err != nil {
		panic("authsvc: embedded login page file missing: " + name)
	}
	sum := sha256.Sum256(b)
	return loginAsset{contentType: contentType, body: b, version: hex.EncodeToString(sum[:8])}
}

// loginPageView is what the page template renders.
type loginPageView struct {
	ScriptVersion string
	StyleVersion  string
	// Company is the ?company= the page was opened with when it names a
	// company that can sign in ("" otherwise).
	Company string
	// SSO are the company's SSO connections as buttons.
	SSO []ssoButton
	// MagicLinks: "Email me a link" is offered (mail is configured).
	MagicLinks bool
	// Passkeys: "Sign in with a passkey" is offered: the service has
	// passkeys and they are on (public_url names a domain, not an IP
	// address); the browser must support WebAuthn too (the script checks).
	Passkeys bool
}

// ssoButton is one SSO connection on the page.
type ssoButton struct {
	Name string
	URL  string
}

// loginPageReturnTo is where an SSO flow started from the page comes back
// to (the SSO callback redirects there with #sso_result=…).
const loginPageReturnTo = "/login"

// handleLoginPage renders the hosted sign-in page. ?company=<id> adds the
// company's SSO buttons; an unknown or disabled company (or a malformed
// id) gets the page without them, the same page any address gets.
func (s *Service) handleLoginPage(c *call) (int, any, error) {
	v := loginPageView{
		ScriptVersion: loginAssets["app.js"].version,
		StyleVersion:  loginAssets["app.css"].version,
		MagicLinks:    s.cfg.SMTPURL != "" && messagingRoutes["POST /api/v1/auth/magic-link"] != nil,
		Passkeys:      webauthnRoutes["POST /api/v1/auth/webauthn/login/begin"] != nil && s.webauthn.rp != nil,
	}
	if id := c.r.URL.Query().Get("company"); id != "" && slugRe.MatchString(id) {
		buttons, err := s.loginPageSSO(c, id)
		if err != nil {
			return 0, nil, err
		}
		if buttons != nil {
			v.Company, v.SSO = id, buttons
		}
	}
	var buf bytes.Buffer
	if err := loginPageTemplate.Execute(&buf, v); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, rawDoc{contentType: "text/html; charset=utf-8", body: buf.Bytes(), header: map[string]string{
		"Content-Security-Policy": LoginPageCSP,
		"X-Frame-Options":         "DENY",
		"Referrer-Policy":         "no-referrer",
		// the page differs by company and by configuration: never cached
		"Cache-Control":              "no-store",
		"Cross-Origin-Opener-Policy": "same-origin",
	}}, nil
}

// loginPageSSO are the SSO buttons of an active company (nil for none, an
// unknown company or a disabled one).
func (s *Service) loginPageSSO(c *call, companyID string) ([]ssoButton, error) {
	co, err := s.store.GetCompany(c.ctx, companyID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if co.Disabled {
		return nil, nil
	}
	conns, err := s.store.ListSSOConnections(c.ctx, companyID)
	if err != nil {
		return nil, err
	}
	var out []ssoButton
	for _, conn := range conns {
		q := url.Values{"connection": {conn.ID}, "return_to": {loginPageReturnTo}}
		out = append(out, ssoButton{
			Name: conn.Name,
			URL:  "/api/v1/auth/sso/" + url.PathEscape(companyID) + "/start?" + q.Encode(),
		})
	}
	return out, nil
}

// handleLoginAsset serves the page's script and style.
func (s *Service) handleLoginAsset(c *call) (int, any, error) {
	a, ok := loginAssets[c.param]
	if !ok {
		return 0, nil, contract.NewError(http.StatusNotFound, contract.CodeNotFound, contract.MessageForStatus(http.StatusNotFound))
	}
	return http.StatusOK, rawDoc{contentType: a.contentType, body: a.body, header: map[string]string{
		"Content-Security-Policy": LoginPageCSP,
		"Referrer-Policy":         "no-referrer",
	}}, nil
}
