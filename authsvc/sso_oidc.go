package authsvc

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"go.uber.org/zap"
	"golang.org/x/oauth2"

	"github.com/erpgate/erpgate/authsvc/store"
	"github.com/erpgate/erpgate/contract"
)

// The OIDC flow: authorization code with PKCE (S256), state and nonce
// (coreos/go-oidc verifies the ID token, x/oauth2 exchanges the code).
//
// The flow's data (connection, nonce, PKCE verifier, return_to, expiry)
// travels in a cookie sealed under the master key with the state as
// additional data: the client can neither read nor change it, and it
// opens only for the state it was made for. The cookie's name carries a
// digest of the state, so flows in two tabs don't overwrite each other;
// HttpOnly, SameSite=Lax (the IdP's redirect back is a top-level GET),
// Secure when the public URL is https, Path=/api/v1/auth/sso. A state is
// accepted once (a mark in Redis or in process) within ssoFlowTTL.

const (
	ssoFlowTTL        = 10 * time.Minute
	ssoCookiePrefix   = "erp_sso_"
	ssoProviderTTL    = 15 * time.Minute
	ssoProviderNegTTL = 15 * time.Second
	maxReturnTo       = 512
)

// ssoFlow is what the start of a flow leaves for its callback.
type ssoFlow struct {
	State        string    `json:"s"`
	CompanyID    string    `json:"c"`
	ConnectionID string    `json:"k"`
	Nonce        string    `json:"n"`
	Verifier     string    `json:"v"`
	ReturnTo     string    `json:"r,omitempty"`
	Expires      time.Time `json:"e"`
}

// stateRe is a state this service makes: 32 random bytes, base64url.
var stateRe = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)

func ssoCookieName(state string) string {
	h := sha256.Sum256([]byte("erp-sso-cookie:" + state))
	return ssoCookiePrefix + hex.EncodeToString(h[:8])
}

func ssoFlowAAD(state string) string { return "sso-flow:" + state }

// cachedProvider is an issuer's discovery (and with it its JWKS cache), or
// the error of its last failed discovery.
type cachedProvider struct {
	p   *oidc.Provider
	err error
	at  time.Time
}

// oidcProvider is the issuer's discovered configuration, cached for
// ssoProviderTTL (a failure for ssoProviderNegTTL, so that a flood of
// starts toward a dead issuer is not a flood of outbound requests).
func (s *Service) oidcProvider(ctx context.Context, issuer string) (*oidc.Provider, error) {
	now := s.clock.Now()
	s.sso.mu.Lock()
	cp := s.sso.providers[issuer]
	s.sso.mu.Unlock()
	if cp != nil {
		if cp.err == nil && now.Sub(cp.at) < ssoProviderTTL {
			return cp.p, nil
		}
		if cp.err != nil && now.Sub(cp.at) < ssoProviderNegTTL {
			return nil, cp.err
		}
	}
	ctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, s.sso.client), ssoClientTimeout)
	defer cancel()
	p, err := oidc.NewProvider(ctx, issuer)
	s.sso.mu.Lock()
	defer s.sso.mu.Unlock()
	if len(s.sso.providers) > 1000 { // bounded: issuers are few, a stale one is fetched again
		clear(s.sso.providers)
	}
	s.sso.providers[issuer] = &cachedProvider{p: p, err: err, at: now}
	return p, err
}

// ssoReturnTo checks a return_to: a path of this origin ("/…", not "//…"
// nor "/\…"), no scheme, host or fragment, at most 512 bytes.
func ssoReturnTo(raw string) (string, error) {
	if raw == "" {
		return "", nil
	}
	bad := invalid("return_to", "return_to is a path on this site starting with / (such as /login)")
	if len(raw) > maxReturnTo || !strings.HasPrefix(raw, "/") || strings.HasPrefix(raw, "//") || strings.HasPrefix(raw, "/\\") ||
		strings.ContainsAny(raw, "#\\") || strings.ContainsFunc(raw, func(r rune) bool { return r <= 0x20 || r == 0x7f }) {
		return "", bad
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || !strings.HasPrefix(u.Path, "/") || strings.HasPrefix(u.Path, "//") {
		return "", bad
	}
	return raw, nil
}

// handleSSOStart answers GET /api/v1/auth/sso/{company}/start: a redirect
// to the connection's identity provider.
func (s *Service) handleSSOStart(c *call) (int, any, error) {
	companyID := c.params[0]
	q := c.r.URL.Query()
	returnTo, err := ssoReturnTo(q.Get("return_to"))
	if err != nil {
		return 0, nil, err
	}
	var conn store.SSOConnection
	if id := q.Get("connection"); id != "" {
		conn, err = s.store.GetSSOConnection(c.ctx, companyID, id)
		if errors.Is(err, store.ErrNotFound) {
			return 0, nil, errNotFound("no such SSO connection")
		}
		if err != nil {
			return 0, nil, err
		}
	} else {
		list, err := s.store.ListSSOConnections(c.ctx, companyID)
		if err != nil {
			return 0, nil, err
		}
		switch len(list) {
		case 0:
			return 0, nil, errNotFound("no such SSO connection")
		case 1:
			conn = list[0]
		default:
			return 0, nil, invalid("connection", "the company has several SSO connections: name one with ?connection=")
		}
	}
	if conn.Kind == store.SSOKindSAML {
		return s.startSAML(c, conn, returnTo)
	}
	p, err := s.oidcProvider(c.ctx, conn.Issuer)
	if err != nil {
		s.logger.Warn("sso provider unavailable", zap.String("issuer", conn.Issuer), zap.String("connection", conn.ID), zap.Error(err))
		e := contract.NewError(http.StatusServiceUnavailable, contract.CodeServiceUnavailable, "the identity provider can't be reached; try again later")
		return 0, nil, e
	}
	flow := ssoFlow{State: randomSecret(), CompanyID: conn.CompanyID, ConnectionID: conn.ID, Nonce: randomSecret(),
		Verifier: oauth2.GenerateVerifier(), ReturnTo: returnTo, Expires: s.clock.Now().Add(ssoFlowTTL).UTC()}
	plain, err := json.Marshal(flow)
	if err != nil {
		return 0, nil, err
	}
	sealed := s.sealer.Seal(ssoFlowAAD(flow.State), plain)
	http.SetCookie(c.w, &http.Cookie{Name: ssoCookieName(flow.State), Value: base64.RawURLEncoding.EncodeToString(sealed), Path: ssoCookiePath,
		MaxAge: int(ssoFlowTTL / time.Second), HttpOnly: true, Secure: s.ssoSecureCookies(), SameSite: http.SameSiteLaxMode})
	cfg := s.oauthConfig(conn, p, "")
	loc := cfg.AuthCodeURL(flow.State, oidc.Nonce(flow.Nonce), oauth2.S256ChallengeOption(flow.Verifier))
	return http.StatusFound, redirect{location: loc}, nil
}

func (s *Service) ssoSecureCookies() bool { return strings.HasPrefix(s.cfg.PublicURL, "https://") }

func (s *Service) oauthConfig(conn store.SSOConnection, p *oidc.Provider, secret string) *oauth2.Config {
	scopes := conn.Scopes
	if len(scopes) == 0 {
		scopes = []string{oidc.ScopeOpenID, "email", "profile"}
	}
	return &oauth2.Config{ClientID: conn.ClientID, ClientSecret: secret, Endpoint: p.Endpoint(), RedirectURL: s.cfg.PublicURL + ssoCallbackPath, Scopes: scopes}
}

// idpErrorRe bounds what of an IdP's error code goes into the audit record.
var idpErrorRe = regexp.MustCompile(`^[a-z_]{1,64}$`)

// handleSSOCallback answers GET /api/v1/auth/sso/callback?code&state: the
// IdP's redirect back after an OIDC sign-in.
func (s *Service) handleSSOCallback(c *call) (int, any, error) {
	q := c.r.URL.Query()
	state := q.Get("state")
	if !stateRe.MatchString(state) {
		return s.ssoRefuse(c, nil, ReasonSSOState, "", "cause", "missing")
	}
	name := ssoCookieName(state)
	// Whatever follows, the flow's cookie is spent.
	http.SetCookie(c.w, &http.Cookie{Name: name, Value: "", Path: ssoCookiePath, MaxAge: -1, HttpOnly: true, Secure: s.ssoSecureCookies(), SameSite: http.SameSiteLaxMode})
	ck, err := c.r.Cookie(name)
	if err != nil {
		return s.ssoRefuse(c, nil, ReasonSSOState, "", "cause", "no_cookie")
	}
	sealed, err := base64.RawURLEncoding.DecodeString(ck.Value)
	if err != nil {
		return s.ssoRefuse(c, nil, ReasonSSOState, "", "cause", "cookie")
	}
	plain, err := s.sealer.Open(ssoFlowAAD(state), sealed)
	if err != nil {
		return s.ssoRefuse(c, nil, ReasonSSOState, "", "cause", "cookie")
	}
	var flow ssoFlow
	if err := json.Unmarshal(plain, &flow); err != nil || subtle.ConstantTimeCompare([]byte(flow.State), []byte(state)) != 1 {
		return s.ssoRefuse(c, nil, ReasonSSOState, "", "cause", "cookie")
	}
	now := s.clock.Now()
	if !now.Before(flow.Expires) {
		return s.ssoRefuse(c, nil, ReasonSSOStateExpired, flow.ReturnTo)
	}
	h := sha256.Sum256([]byte(state))
	first, err := s.counters.MarkOnce(c.ctx, "sso:state:"+hex.EncodeToString(h[:16]), ssoFlowTTL+time.Minute)
	if err != nil {
		return 0, nil, err
	}
	if !first {
		return s.ssoRefuse(c, nil, ReasonSSOStateReplayed, flow.ReturnTo)
	}
	conn, err := s.store.GetSSOConnection(c.ctx, flow.CompanyID, flow.ConnectionID)
	if errors.Is(err, store.ErrNotFound) || err == nil && conn.Kind != store.SSOKindOIDC {
		return s.ssoRefuse(c, nil, ReasonSSOConnectionGone, flow.ReturnTo, "connection", flow.ConnectionID)
	}
	if err != nil {
		return 0, nil, err
	}
	if e := q.Get("error"); e != "" {
		if !idpErrorRe.MatchString(e) {
			e = "other"
		}
		return s.ssoRefuse(c, &conn, ReasonSSOIdPError, flow.ReturnTo, "idp_error", e)
	}
	code := q.Get("code")
	if code == "" || len(code) > 4096 {
		return s.ssoRefuse(c, &conn, ReasonSSOExchange, flow.ReturnTo, "cause", "no_code")
	}
	id, reason, details, err := s.oidcIdentity(c, conn, flow, code)
	if err != nil {
		return 0, nil, err
	}
	if reason != "" {
		return s.ssoRefuse(c, &conn, reason, flow.ReturnTo, details...)
	}
	return s.ssoSignIn(c, conn, id, flow.ReturnTo)
}

// oidcIdentity exchanges the code and verifies what the IdP answered: the
// ID token's signature (the issuer's JWKS), issuer, audience (and azp when
// there are several), expiry, nonce and at_hash; the email claim (from the
// ID token, else from the userinfo endpoint for the same subject) and
// email_verified. A refusal is a reason with audit details; err is for
// failures of our own.
func (s *Service) oidcIdentity(c *call, conn store.SSOConnection, flow ssoFlow, code string) (ssoIdentity, string, []string, error) {
	p, err := s.oidcProvider(c.ctx, conn.Issuer)
	if err != nil {
		s.logger.Warn("sso provider unavailable", zap.String("issuer", conn.Issuer), zap.String("connection", conn.ID), zap.Error(err))
		return ssoIdentity{}, ReasonSSOProviderFailed, nil, nil
	}
	secret, err := s.sealer.Open(ssoSecretAAD(conn.ID), conn.SealedClientSecret)
	if err != nil {
		return ssoIdentity{}, "", nil, errors.New("sso: the connection's client secret does not open under the master key")
	}
	ctx, cancel := context.WithTimeout(oidc.ClientContext(c.ctx, s.sso.client), ssoClientTimeout)
	defer cancel()
	tok, err := s.oauthConfig(conn, p, string(secret)).Exchange(ctx, code, oauth2.VerifierOption(flow.Verifier))
	if err != nil {
		// Never the error's text: it may quote the token endpoint's body.
		cause := "unreachable"
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			cause = "refused"
			if idpErrorRe.MatchString(re.ErrorCode) {
				cause = re.ErrorCode
			}
		}
		s.logger.Info("sso code exchange failed", zap.String("connection", conn.ID), zap.String("cause", cause))
		return ssoIdentity{}, ReasonSSOExchange, []string{"cause", cause}, nil
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return ssoIdentity{}, ReasonSSOIDToken, []string{"cause", "no_id_token"}, nil
	}
	idt, err := p.VerifierContext(ctx, &oidc.Config{ClientID: conn.ClientID, Now: s.clock.Now}).Verify(ctx, raw)
	if err != nil {
		return ssoIdentity{}, ReasonSSOIDToken, []string{"cause", idTokenCause(err)}, nil
	}
	if len(idt.Audience) > 1 {
		var azp struct {
			AZP string `json:"azp"`
		}
		if err := idt.Claims(&azp); err != nil || azp.AZP != conn.ClientID {
			return ssoIdentity{}, ReasonSSOIDToken, []string{"cause", "azp"}, nil
		}
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(flow.Nonce)) != 1 {
		return ssoIdentity{}, ReasonSSONonce, nil, nil
	}
	if idt.AccessTokenHash != "" {
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			return ssoIdentity{}, ReasonSSOIDToken, []string{"cause", "at_hash"}, nil
		}
	}
	if idt.Subject == "" {
		return ssoIdentity{}, ReasonSSOIDToken, []string{"cause", "no_subject"}, nil
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return ssoIdentity{}, ReasonSSOIDToken, []string{"cause", "claims"}, nil
	}
	emailClaim, nameClaim := ssoClaim(conn, "email"), ssoClaim(conn, "name")
	if _, ok := claims[emailClaim].(string); !ok && p.UserInfoEndpoint() != "" {
		// Many IdPs put the email in the userinfo answer only.
		ui, err := p.UserInfo(ctx, oauth2.StaticTokenSource(tok))
		if err != nil {
			s.logger.Info("sso userinfo failed", zap.String("connection", conn.ID))
			return ssoIdentity{}, ReasonSSOEmail, []string{"cause", "userinfo"}, nil
		}
		if ui.Subject != idt.Subject {
			return ssoIdentity{}, ReasonSSOIDToken, []string{"cause", "userinfo_subject"}, nil
		}
		var more map[string]any
		if err := ui.Claims(&more); err != nil {
			return ssoIdentity{}, ReasonSSOEmail, []string{"cause", "userinfo"}, nil
		}
		claims = more
	}
	email, _ := claims[emailClaim].(string)
	if email == "" {
		return ssoIdentity{}, ReasonSSOEmail, nil, nil
	}
	switch v := claims["email_verified"].(type) {
	case bool:
		if !v {
			return ssoIdentity{}, ReasonSSOEmailUnverif, nil, nil
		}
	case string: // some IdPs send "true"/"false"
		if strings.EqualFold(v, "false") {
			return ssoIdentity{}, ReasonSSOEmailUnverif, nil, nil
		}
	}
	name, _ := claims[nameClaim].(string)
	return ssoIdentity{Subject: idt.Subject, Email: email, Name: name}, "", nil, nil
}

// idTokenCause names what an ID token failed, for the audit record.
func idTokenCause(err error) string {
	var exp *oidc.TokenExpiredError
	msg := err.Error()
	switch {
	case errors.As(err, &exp):
		return "expired"
	case strings.Contains(msg, "audience"):
		return "audience"
	case strings.Contains(msg, "different provider"):
		return "issuer"
	case strings.Contains(msg, "signature"), strings.Contains(msg, "signing"):
		return "signature"
	case strings.Contains(msg, "malformed"):
		return "malformed"
	}
	return "invalid"
}
