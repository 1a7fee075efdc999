package credential

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/erpgate/erpgate/contract"
)

// Cookie mode (browsers): the auth service sets these three cookies when a
// sign-in, refresh or company switch asks for {"cookie": true}. The
// __Host- prefix makes the browser refuse them unless they are Secure,
// have Path=/ and no Domain (no sibling host can set or shadow them).
const (
	// AccessCookie holds the access token (HttpOnly).
	AccessCookie = "__Host-erp_at"
	// RefreshCookie holds the refresh token (HttpOnly). __Host- requires
	// Path=/, so it goes with every request to the site; only the refresh
	// endpoint reads it.
	RefreshCookie = "__Host-erp_rt"
	// CSRFCookie holds the double-submit CSRF token: readable by the
	// page's scripts, which send it back in CSRFHeader.
	CSRFCookie = "__Host-erp_csrf"
	// CSRFHeader carries the CSRF token on unsafe requests.
	CSRFHeader = "X-CSRF-Token"
)

// Errors of CheckCSRF.
var (
	ErrCSRFOrigin = errors.New("credential: the request's Origin is not allowed")
	ErrCSRFToken  = errors.New("credential: the X-CSRF-Token header does not match the CSRF cookie")
)

// Unsafe reports whether method may change state (and so needs the CSRF
// check when the credential is a cookie).
func Unsafe(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return false
	}
	return true
}

// CheckCSRF checks an unsafe request authenticated by the cookie: its
// Origin (or, without one, its Referer's origin) must be the request's own
// origin or one of allowed ("scheme://host[:port]"), and its X-CSRF-Token
// must equal the CSRF cookie (double submit: another site can make the
// browser send the cookies, but cannot read them to fill the header). Safe
// methods pass.
func CheckCSRF(r *http.Request, allowed []string) error {
	if !Unsafe(r.Method) {
		return nil
	}
	origin := r.Header.Get("Origin")
	if origin == "" || origin == "null" {
		origin = ""
		if ref := r.Header.Get("Referer"); ref != "" {
			if u, err := url.Parse(ref); err == nil && u.Scheme != "" && u.Host != "" {
				origin = u.Scheme + "://" + u.Host
			}
		}
	}
	if !originAllowed(origin, r, allowed) {
		return ErrCSRFOrigin
	}
	ck, err := r.Cookie(CSRFCookie)
	tok := r.Header.Get(CSRFHeader)
	if err != nil || ck.Value == "" || tok == "" || subtle.ConstantTimeCompare([]byte(ck.Value), []byte(tok)) != 1 {
		return ErrCSRFToken
	}
	return nil
}

func originAllowed(origin string, r *http.Request, allowed []string) bool {
	if origin == "" {
		return false
	}
	for _, a := range allowed {
		if strings.EqualFold(origin, strings.TrimSuffix(a, "/")) {
			return true
		}
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return strings.EqualFold(origin, scheme+"://"+r.Host)
}

// CSRFRefusal is the answer to a CheckCSRF error: 403 FORBIDDEN.
func CSRFRefusal(err error) *contract.Error {
	msg := "cookie-authenticated requests that change state need the " + CSRFHeader + " header equal to the " + CSRFCookie + " cookie"
	if errors.Is(err, ErrCSRFOrigin) {
		msg = "cookie-authenticated requests that change state must come from an allowed Origin"
	}
	return &contract.Error{Status: http.StatusForbidden, Code: contract.CodeForbidden, Message: msg}
}

// RemoveCookies drops cookie mode's cookies from the request's Cookie
// header (the rest goes on to the backend): like the Authorization header,
// the credential stays at the edge.
func RemoveCookies(h http.Header) {
	vs := h["Cookie"]
	if len(vs) == 0 {
		return
	}
	var keep []string
	for _, v := range vs {
		for _, part := range strings.Split(v, ";") {
			name, _, _ := strings.Cut(strings.TrimSpace(part), "=")
			if name == "" || name == AccessCookie || name == RefreshCookie || name == CSRFCookie {
				continue
			}
			keep = append(keep, strings.TrimSpace(part))
		}
	}
	if len(keep) == 0 {
		h.Del("Cookie")
		return
	}
	h["Cookie"] = []string{strings.Join(keep, "; ")}
}
