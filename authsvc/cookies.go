package authsvc

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/erpgate/erpgate/internal/credential"
)

// Cookie mode (browsers). select-company, refresh and switch-company with
// {"cookie": true} answer the tokens as cookies instead of in the body:
// the access token in credential.AccessCookie, the refresh token in
// credential.RefreshCookie (both HttpOnly, out of reach of the page's
// scripts) and a fresh double-submit CSRF token in credential.CSRFCookie
// (readable, also in the body's csrf_token), all __Host- (Secure, Path=/,
// no Domain) and SameSite=Strict. The edge accepts the access token cookie
// as a bearer token (internal/credential) and checks CSRF on unsafe
// methods; so does authenticate here.

// cookieSession is the body of a cookie-mode answer: the token pair
// without its tokens.
type cookieSession struct {
	Cookie           bool        `json:"cookie"`
	CSRFToken        string      `json:"csrf_token"`
	TokenType        string      `json:"token_type"`
	ExpiresIn        int64       `json:"expires_in"`
	RefreshExpiresIn int64       `json:"refresh_expires_in"`
	SessionID        string      `json:"session_id"`
	Company          companyView `json:"company"`
}

// answerPair answers pair in the body, or in cookie mode as cookies.
func answerPair(c *call, pair tokenPair, cookie bool) any {
	if !cookie {
		return pair
	}
	csrf := newCSRFToken()
	setCookie(c.w, credential.AccessCookie, pair.AccessToken, pair.ExpiresIn, true)
	setCookie(c.w, credential.RefreshCookie, pair.RefreshToken, pair.RefreshExpiresIn, true)
	setCookie(c.w, credential.CSRFCookie, csrf, pair.RefreshExpiresIn, false)
	return cookieSession{
		Cookie: true, CSRFToken: csrf, TokenType: pair.TokenType, ExpiresIn: pair.ExpiresIn,
		RefreshExpiresIn: pair.RefreshExpiresIn, SessionID: pair.SessionID, Company: pair.Company,
	}
}

// clearCookies expires cookie mode's cookies (logout), whether or not the
// request carried them.
func clearCookies(w http.ResponseWriter) {
	for _, name := range []string{credential.AccessCookie, credential.RefreshCookie, credential.CSRFCookie} {
		setCookie(w, name, "", -1, name != credential.CSRFCookie)
	}
}

func setCookie(w http.ResponseWriter, name, value string, maxAge int64, httpOnly bool) {
	ck := &http.Cookie{
		Name: name, Value: value, Path: "/", Secure: true, HttpOnly: httpOnly,
		SameSite: http.SameSiteStrictMode, MaxAge: int(maxAge),
	}
	if maxAge < 0 {
		ck.Expires = time.Unix(0, 0)
	}
	w.Header().Add("Set-Cookie", ck.String())
}

func newCSRFToken() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("authsvc: crypto/rand: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// csrfOrigins are the origins, besides a request's own, that may send
// cookie-authenticated unsafe requests: the public URL's.
func (s *Service) csrfOrigins() []string {
	u, err := url.Parse(s.cfg.PublicURL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil
	}
	return []string{strings.ToLower(u.Scheme) + "://" + u.Host}
}

// callerToken is the call's access token: the bearer token, or the access
// token cookie after the CSRF check of an unsafe method.
func (s *Service) callerToken(c *call) (string, error) {
	cred, err := credential.FromRequest(c.r)
	if err == nil && cred.Source == credential.FromCookie {
		if err := credential.CheckCSRF(c.r, s.csrfOrigins()); err != nil {
			return "", credential.CSRFRefusal(err)
		}
		return cred.Value, nil
	}
	return bearer(c.r)
}

// refreshCookie is the refresh token of cookie mode, after the CSRF check.
func (s *Service) refreshCookie(c *call) (string, error) {
	if err := credential.CheckCSRF(c.r, s.csrfOrigins()); err != nil {
		return "", credential.CSRFRefusal(err)
	}
	ck, err := c.r.Cookie(credential.RefreshCookie)
	if err != nil {
		return "", nil
	}
	return ck.Value, nil
}
