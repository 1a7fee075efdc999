// Package assertion signs the edge assertions (DESIGN.md "Edge assertion")
// that vouch for a request to a backend: `X-ERP-Assertion: <JWT>` with the
// verified identity, the backend as audience, at most 60 s of life and never
// beyond the credential's own expiry. A Signer is made per handler (erp_authz
// for proxied requests, erp_graphql for its backend calls) and keeps a cache
// of the assertions it signed, per credential and backend, so that signing
// stays off the per-request path. It signs with the erp app's in-process
// auth service.
package assertion

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/erpgate/erpgate/authsvc"
	"github.com/erpgate/erpgate/caddymodules/erpapp"
	"github.com/erpgate/erpgate/caddymodules/internal/edgeauth"
	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/depfail"
	"github.com/erpgate/erpgate/internal/refusallog"
)

// Identity is the verified caller an assertion states.
type Identity struct {
	User, Company, Roles, Scope, Plan string
}

// IdentityOf reads the identity erp_auth verified for r: user, company,
// roles and plan from the replacer (`{http.auth.user.*}`), the scope from
// the request variable contract.VarScope.
func IdentityOf(r *http.Request) Identity {
	var id Identity
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		id.User = replString(repl, "http.auth.user.id")
		id.Company = replString(repl, "http.auth.user.company_id")
		id.Roles = replString(repl, "http.auth.user.roles")
		id.Plan = replString(repl, "http.auth.user.plan")
	}
	id.Scope, _ = caddyhttp.GetVar(r.Context(), contract.VarScope).(string)
	return id
}

// Signer signs and caches edge assertions. Set its exported fields before
// its first use only.
type Signer struct {
	// Sign signs an assertion. nil: the erp app's in-process auth service
	// (tests replace it).
	Sign func(ctx context.Context, a *authsvc.Assertion) (string, error)
	// Now is the clock. nil: time.Now.
	Now func() time.Time

	app      *erpapp.App
	logger   *zap.Logger
	refusals refusallog.Logger
	cache    *cache
	warned   warnings
}

// New is a Signer with an empty cache, signing with app's auth service (app
// may be nil when Sign is set). Failures are logged to logger, refusals
// through refusals.
func New(app *erpapp.App, logger *zap.Logger, refusals refusallog.Logger) *Signer {
	return &Signer{app: app, logger: logger, refusals: refusals, cache: newCache(cacheSize)}
}

// warnings are logged once per Signer.
type warnings struct {
	noService    atomic.Bool // no in-process auth service
	noCredential atomic.Bool // a credential from another provider
}

func (s *Signer) warnOnce(done *atomic.Bool, msg string) {
	if done.CompareAndSwap(false, true) {
		s.logger.Warn(msg)
	}
}

// For is the edge assertion for r's verified identity (IdentityOf) and
// credential, with backend as audience; see Of.
func (s *Signer) For(r *http.Request, backend string) (string, error) {
	return s.Of(r, backend, IdentityOf(r))
}

// Of is the edge assertion stating id for r's credential and backend: the
// cached one while it may be reused, else a new one. It is "" with no error
// when none can be made and the request is to go on without one (a
// credential from another provider than erp_jwt and erp_api_key, no
// in-process auth service: a warning is logged once). Errors are
// caddyhttp errors wrapping a *contract.Error: 401 TOKEN_EXPIRED for a
// credential the edge accepted within its leeway past its expiry, 503
// SERVICE_UNAVAILABLE when signing fails.
func (s *Signer) Of(r *http.Request, backend string, id Identity) (string, error) {
	cred, _ := caddyhttp.GetVar(r.Context(), contract.VarCredential).(*contract.Credential)
	if cred == nil || cred.ID == "" {
		s.warnOnce(&s.warned.noCredential, "the request's credential is not from erp_jwt or erp_api_key: it is proxied without an edge assertion")
		return "", nil
	}
	now := s.now()
	if e, ok := s.cache.get(cred.ID, backend, now); ok && e.statesFor(id.User, id.Company, id.Roles, id.Scope, id.Plan) {
		return e.token, nil
	}
	exp, bound, ok := Expiry(now, cred.Expiry)
	if !ok {
		return "", caddyhttp.Error(http.StatusUnauthorized, edgeauth.Unauthenticated(contract.CodeTokenExpired, "access token expired", "invalid_token"))
	}
	sign := s.Sign
	var svc *authsvc.Service
	if sign == nil {
		var err error
		if s.app == nil {
			err = errNoApp
		} else {
			svc, err = s.app.AuthService()
		}
		if err != nil {
			s.warnOnce(&s.warned.noService, "no auth service in this process to sign edge assertions with: requests are proxied without one, and backends that verify them refuse")
			return "", nil
		}
		sign = svc.SignAssertion
	}
	a := &authsvc.Assertion{
		Audience: backend, Subject: id.User, CompanyID: id.Company, Roles: splitRoles(id.Roles), Scope: id.Scope,
		Plan: id.Plan, IssuedAt: now, Expiry: exp,
	}
	tok, err := sign(r.Context(), a)
	// The chosen service's config may be unloaded by a reload while this
	// request waits for the service to get ready (see AuthServiceAfter):
	// then again on the newer one. Rapid reloads can unload several in a
	// row; the request's ctx bounds the waiting, maxSignTries a flapping.
	for i := 1; err != nil && svc != nil && i < maxSignTries; i++ {
		if svc = s.app.AuthServiceAfter(r.Context(), svc); svc != nil {
			tok, err = svc.SignAssertion(r.Context(), a)
		}
	}
	if err != nil {
		if ce := s.refusals.Check(r.Context(), zap.ErrorLevel, "signing the edge assertion failed", "unavailable"); ce != nil {
			rid, _ := caddyhttp.GetVar(r.Context(), contract.VarRequestID).(string)
			ce.Write(zap.Error(err), zap.String("request_id", rid))
		}
		return "", caddyhttp.Error(http.StatusServiceUnavailable, depfail.Error("the edge cannot vouch for requests right now"))
	}
	s.cache.put(cred.ID, backend, &entry{
		token: tok, until: reuseUntil(exp, bound), sub: id.User, cid: id.Company, roles: id.Roles, scope: id.Scope, plan: id.Plan,
	}, now)
	return tok, nil
}

type errString string

func (e errString) Error() string { return string(e) }

const errNoApp = errString("no erp app")

func (s *Signer) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// maxSignTries bounds the services one assertion is tried with: one per
// config a burst of reloads unloads while the request waits.
const maxSignTries = 8

// splitRoles undoes the comma-join of {http.auth.user.roles}.
func splitRoles(roles string) []string {
	if roles == "" {
		return []string{}
	}
	return strings.Split(roles, ",")
}

func replString(repl *caddy.Replacer, key string) string {
	v, ok := repl.Get(key)
	if !ok {
		return ""
	}
	s, _ := v.(string)
	return s
}
