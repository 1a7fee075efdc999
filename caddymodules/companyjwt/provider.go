// Package companyjwt is the erp_jwt authentication provider: it verifies
// company-scoped access tokens against the issuer's JWKS. It owns no state
// of its own: the key set and the cache of verified tokens are a lasting
// value kept by the erp app (erpapp.Keep), the refusal audit the config's
// (edgeauth). Of caddymodules it imports only the erp app and
// caddymodules/internal/edgeauth, never another module package.
package companyjwt

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/caddyauth"
	"github.com/lestrrat-go/httprc/v3"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/erpgate/erpgate/caddymodules/erpapp"
	"github.com/erpgate/erpgate/caddymodules/internal/edgeauth"
	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/credential"
	"github.com/erpgate/erpgate/internal/depfail"
	"github.com/erpgate/erpgate/internal/refusallog"
	"github.com/erpgate/erpgate/internal/revocation"
	"github.com/erpgate/erpgate/internal/tracing"
)

func init() {
	caddy.RegisterModule(Provider{})
}

// Provider verifies `Authorization: Bearer <access token>` (or, for
// WebSocket upgrades, `Sec-WebSocket-Protocol: bearer, <token>`) and makes
// the token's identity the request's user: `{http.auth.user.id}` is `sub`,
// and `company_id`, `roles` and `plan` are published as
// `{http.auth.user.*}`; the scope goes to erp_authz in the request variable
// `erp.scope`. Tokens in query strings are never accepted. A request with
// more than one credential (two Authorization headers, a bearer token and an
// API key, a subprotocol bearer and another) or with a credential header
// under a non-standard name is refused with 400 `BAD_REQUEST`
// (internal/credential: the auth service applies the same rule).
//
// Checks (RFC 8725, RFC 9068): strict compact serialisation and base64url,
// no `crit`, `jku`, `x5u`, `jwk` or `x5c`, `typ` at+jwt, the key's own `alg`
// (asymmetric algorithms only), exact `iss`, `aud` containing the audience,
// `exp` required, `nbf`/`iat` with leeway. Header and claims are JSON read
// by internal/tokenjson, as the auth service reads them: member names
// case-sensitive, no duplicate member in any case (`cid` and `CID`), valid
// UTF-8, each claim of its type (`"cid": 123` refused). A bounded
// cache of verified tokens skips the signature check for repeated tokens,
// never past `exp` and never for a revoked session.
//
// Keys come from `jwks_url` (cached with httprc, refreshed in the
// background, last good set kept on failure) or, when it is empty, from the
// auth service running in this process. An unknown `kid` causes at most one
// refetch at a time and at most one per `min_refetch`, and is then
// remembered as unknown for `negative_ttl`.
//
// A token that cannot be checked is not refused: with no key set yet (the
// JWKS unreachable, the in-process auth service not ready) or with an
// unknown `kid` while the last fetch failed, the answer is 503
// `SERVICE_UNAVAILABLE` with `Retry-After` (internal/depfail), not 401.
//
// Revocations (logout, a revoked session) reach the edge through Redis
// (every instance) and in process (the auth service of this process); see
// `revocation_staleness` for what happens while Redis is unreachable.
type Provider struct {
	// JWKSURL is the issuer's JWKS. Empty: the in-process auth service's keys.
	JWKSURL string `json:"jwks_url,omitempty"`
	// Issuer is the exact `iss`. Default: the in-process auth service's issuer.
	Issuer string `json:"issuer,omitempty"`
	// Audience must be in `aud`. Default: the in-process auth service's audience.
	Audience string `json:"audience,omitempty"`
	// Leeway for exp, nbf and iat. Default: 30s.
	Leeway caddy.Duration `json:"leeway,omitempty"`
	// CacheSize is the number of verified tokens kept. Default: 10000.
	CacheSize int `json:"cache_size,omitempty"`
	// RefreshInterval of the key set in the background. Default: 1m.
	RefreshInterval caddy.Duration `json:"refresh_interval,omitempty"`
	// MinRefetch is the least time between two fetches caused by unknown kids. Default: 5s.
	MinRefetch caddy.Duration `json:"min_refetch,omitempty"`
	// NegativeTTL is how long an unknown kid is remembered. Default: 10s.
	NegativeTTL caddy.Duration `json:"negative_ttl,omitempty"`
	// MaxTokenBytes is the largest token accepted. Default: 8192.
	MaxTokenBytes int `json:"max_token_bytes,omitempty"`
	// RevocationStaleness bounds how old the edge's view of revocations may
	// be. With Redis, the view is confirmed current about every second (a
	// PING answered on the revocation subscription, after a resync of the
	// marks that is retried until it succeeds); when it was last confirmed
	// longer ago than this — Redis unreachable, or a resync still failing —
	// the edge stops trusting it. A token whose session is known revoked is
	// still refused with 401 TOKEN_REVOKED; any other token's session is
	// looked up in the auth service's store (the auth service of this
	// process, when `jwks_url` is empty), at most once per token per
	// RevocationStaleness, and refused with 401 TOKEN_REVOKED if revoked.
	// When that lookup fails (the store is unreachable too) or there is no
	// auth service in this process, the request is refused with 503
	// SERVICE_UNAVAILABLE and `Retry-After: 2` (fail closed). A healthy edge
	// does no extra work: one atomic load per request. At least 2s.
	// Without Redis the view is always current. Default: 5s.
	RevocationStaleness caddy.Duration `json:"revocation_staleness,omitempty"`
	// CSRFOrigins are the origins ("scheme://host[:port]"), besides the
	// request's own, from which a request authenticated by the access token
	// cookie (cookie mode) may change state; such a request must also carry
	// X-CSRF-Token equal to the __Host-erp_csrf cookie
	// (credential.CheckCSRF). Bearer tokens and API keys are not affected.
	CSRFOrigins []string `json:"csrf_origins,omitempty"`

	logger  *zap.Logger
	state   *state
	metrics *edgeauth.Metrics
	ok      prometheus.Counter // decisions{provider="jwt",outcome="ok"}
	audit   *edgeauth.RefusalAuditor
	// refusals writes the log lines of refusals, sampled (erpapp.RefusalLog).
	refusals refusallog.Logger
}

// CaddyModule returns the Caddy module information.
func (Provider) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.authentication.providers.erp_jwt",
		New: func() caddy.Module { return new(Provider) },
	}
}

// Provision sets defaults; keys are fetched at first use, not here.
func (p *Provider) Provision(ctx caddy.Context) error {
	p.logger = ctx.Logger()
	app, err := erpapp.Get(ctx)
	if err != nil {
		return err
	}
	if p.Leeway <= 0 {
		p.Leeway = caddy.Duration(30 * time.Second)
	}
	if p.CacheSize <= 0 {
		p.CacheSize = 10000
	}
	if p.RefreshInterval <= 0 {
		p.RefreshInterval = caddy.Duration(time.Minute)
	}
	if p.MinRefetch <= 0 {
		p.MinRefetch = caddy.Duration(5 * time.Second)
	}
	if p.NegativeTTL <= 0 {
		p.NegativeTTL = caddy.Duration(10 * time.Second)
	}
	if p.MaxTokenBytes <= 0 {
		p.MaxTokenBytes = 8192
	}
	if p.RevocationStaleness <= 0 {
		p.RevocationStaleness = caddy.Duration(DefaultRevocationStaleness)
	}
	m, err := edgeauth.RegisterMetrics(ctx.GetMetricsRegistry())
	if err != nil {
		return err
	}
	p.metrics = m
	p.ok = m.Decisions.WithLabelValues("jwt", "ok")
	if p.audit, err = edgeauth.RefusalAuditorFor(app, m, p.logger); err != nil {
		return err
	}
	p.refusals = app.Refusals().For(p.logger)
	key := p.JWKSURL + "|" + p.Issuer + "|" + p.Audience + "|" + time.Duration(p.RevocationStaleness).String()
	p.state, err = erpapp.Keep(app, key, func(l *erpapp.Lasting) (*state, error) {
		ctx, cancel := context.WithCancel(l.Context())
		return &state{lasting: l, base: ctx, cancel: cancel}, nil
	})
	return err
}

// Validate checks the configuration.
func (p *Provider) Validate() error {
	if p.RevocationStaleness != 0 && time.Duration(p.RevocationStaleness) < MinRevocationStaleness {
		return fmt.Errorf("erp_jwt: revocation_staleness must be at least %s", MinRevocationStaleness)
	}
	if p.JWKSURL != "" {
		if !strings.HasPrefix(p.JWKSURL, "https://") && !strings.HasPrefix(p.JWKSURL, "http://") {
			return errors.New("erp_jwt: jwks_url must be an http(s) URL")
		}
		if p.Issuer == "" || p.Audience == "" {
			return errors.New("erp_jwt: issuer and audience are required with jwks_url")
		}
	}
	return nil
}

// state is the provider's lasting value (erpapp.Keep), one per key source,
// issuer, audience and staleness: Caddy cleans up an old config while its
// last requests are still being served, so the verifier (its key set, its
// cache of verified tokens, its background refresh) outlives the config;
// the next config with the same settings takes it over.
type state struct {
	lasting  *erpapp.Lasting
	base     context.Context
	cancel   context.CancelFunc
	mu       sync.Mutex
	verifier *Verifier
}

func (s *state) Destruct() error { s.cancel(); return nil }

// verifierFor builds the verifier on first use.
func (p *Provider) verifierFor() (*Verifier, error) {
	s := p.state
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.verifier != nil {
		return s.verifier, nil
	}
	base := s.base
	policy := Policy{Issuer: p.Issuer, Audience: p.Audience, Leeway: time.Duration(p.Leeway), MaxTokenBytes: p.MaxTokenBytes}
	var fetch FetchFunc
	var checkSession func(ctx context.Context, userID, sid string) (bool, error)
	if p.JWKSURL == "" {
		// the auth service of the newest live config, asked at each use:
		// the verifier outlives the config that made it
		lasting := s.lasting
		svc, err := lasting.AuthService()
		if err != nil {
			return nil, fmt.Errorf("erp_jwt: no jwks_url and %w", err)
		}
		if policy.Issuer == "" {
			policy.Issuer = svc.Issuer()
		}
		if policy.Audience == "" {
			policy.Audience = svc.Audience()
		}
		fetch = func(ctx context.Context) (jwk.Set, error) {
			svc, err := lasting.AuthService()
			if err != nil {
				return nil, err
			}
			return svc.PublicKeys(ctx)
		}
		checkSession = func(ctx context.Context, userID, sid string) (bool, error) {
			svc, err := lasting.AuthService()
			if err != nil {
				return false, err
			}
			ctx, cancel := context.WithTimeout(ctx, svc.Config().Timeout)
			defer cancel()
			return svc.IsSessionRevoked(ctx, userID, sid)
		}
	} else {
		cache, err := jwk.NewCache(base, httprc.NewClient())
		if err != nil {
			return nil, fmt.Errorf("erp_jwt: JWKS cache: %w", err)
		}
		url := p.JWKSURL
		if err := cache.Register(base, url,
			jwk.WithMinInterval(time.Duration(p.MinRefetch)),
			jwk.WithMaxInterval(time.Duration(p.RefreshInterval)),
			jwk.WithWaitReady(false)); err != nil {
			return nil, fmt.Errorf("erp_jwt: JWKS cache: %w", err)
		}
		fetch = func(ctx context.Context) (jwk.Set, error) { return cache.Refresh(ctx, url) }
	}
	metrics, logger := p.metrics, p.logger
	ks := &KeySet{
		Fetch: fetch, MinRefetch: time.Duration(p.MinRefetch), NegativeTTL: time.Duration(p.NegativeTTL),
		Now: time.Now, BaseContext: base,
		OnFetch: func(err error) {
			metrics.JWKSFetches.WithLabelValues(outcome(err)).Inc()
			if err != nil {
				logger.Warn("JWKS fetch failed; keeping the last good key set", zap.Error(err))
			}
		},
	}
	if err := ks.Refresh(); err != nil && ks.Len() == 0 {
		return nil, fmt.Errorf("erp_jwt: no keys yet: %w", err)
	}
	v := &Verifier{Policy: policy, Keys: ks, Cache: NewTokenCache(p.CacheSize), Revoked: s.lasting.Revocations(), Now: time.Now,
		Staleness: time.Duration(p.RevocationStaleness), CheckSession: checkSession}
	interval := time.Duration(p.RefreshInterval)
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-base.Done():
				return
			case <-t.C:
				_ = ks.Refresh()
				v.Cache.Prune(time.Now())
			}
		}
	}()
	s.verifier = v
	return v, nil
}

func outcome(err error) string {
	if err != nil {
		return "error"
	}
	return "ok"
}

// Authenticate implements caddyauth.Authenticator.
func (p *Provider) Authenticate(w http.ResponseWriter, r *http.Request) (user caddyauth.User, authenticated bool, err error) {
	cred, ok := edgeauth.Credential(r)
	if !ok {
		// erp_jwt samples the log of these for both providers: it is in every erp_auth.
		if ce := p.refusals.Check(r.Context(), zap.DebugLevel, "ambiguous credentials refused", "ambiguous"); ce != nil {
			ce.Write(zap.String("request_id", requestID(r)))
		}
		return caddyauth.User{}, false, nil
	}
	switch cred.Kind {
	case credential.None:
		// (none left: erp_api_key may have refused and removed one already)
		if _, refused := caddyhttp.GetVar(r.Context(), contract.VarAuthFailure).(*contract.Error); !refused {
			if ce := p.refusals.Check(r.Context(), zap.DebugLevel, "request without credentials refused", "missing"); ce != nil {
				ce.Write(zap.String("request_id", requestID(r)))
			}
		}
		edgeauth.Fail(r, edgeauth.Unauthenticated(contract.CodeUnauthenticated, "authentication required", ""))
		return caddyauth.User{}, false, nil
	case credential.Bearer:
	default:
		return caddyauth.User{}, false, nil // an API key: erp_api_key's
	}
	// the span covers this provider's decision: a token cache hit, or the
	// verification (and, past revocation_staleness, the session's recheck)
	ctx, span := tracing.Start(r.Context(), "erp.auth")
	defer func() { edgeauth.EndSpan(span, r, "jwt", user, authenticated) }()
	tok := cred.Value
	if cred.Source == credential.FromCookie {
		// cookie mode: the browser sends the cookie on its own, so a request
		// that changes state must prove it comes from our pages
		if err := credential.CheckCSRF(r, p.CSRFOrigins); err != nil {
			p.metrics.Decisions.WithLabelValues("jwt", "csrf").Inc()
			edgeauth.Fail(r, credential.CSRFRefusal(err))
			return caddyauth.User{}, false, nil
		}
	}
	if cred.Source == credential.FromWebSocket {
		credential.RemoveWebSocketBearer(r.Header) // never forwarded to a backend
	}
	v, err := p.verifierFor()
	if err != nil {
		if ce := p.refusals.Check(r.Context(), zap.ErrorLevel, "token verification unavailable", "unavailable"); ce != nil {
			ce.Write(zap.Error(err))
		}
		p.metrics.Decisions.WithLabelValues("jwt", "error").Inc()
		edgeauth.Fail(r, depfail.Error("token verification is temporarily unavailable"))
		return caddyauth.User{}, false, nil
	}
	c, err := v.Verify(ctx, tok)
	if errors.Is(err, ErrKeysUnavailable) || errors.Is(err, ErrRevocationUnknown) || depfail.Unavailable(err) {
		// not a refusal: the token could not be checked (internal/depfail):
		// its key set or, past revocation_staleness, its session's state
		p.metrics.Decisions.WithLabelValues("jwt", "error").Inc()
		if ce := p.refusals.Check(r.Context(), zap.WarnLevel, "access token could not be checked", "unavailable"); ce != nil {
			ce.Write(zap.String("reason", err.Error()), zap.String("request_id", requestID(r)))
		}
		edgeauth.Fail(r, depfail.Error("token verification is temporarily unavailable"))
		return caddyauth.User{}, false, nil
	}
	if err != nil {
		code, msg := contract.CodeUnauthenticated, "invalid access token"
		switch {
		case errors.Is(err, ErrExpired):
			code, msg = contract.CodeTokenExpired, "access token expired"
		case errors.Is(err, ErrRevoked):
			code, msg = contract.CodeTokenRevoked, "access token revoked"
		}
		p.metrics.Decisions.WithLabelValues("jwt", strings.ToLower(code)).Inc()
		p.audit.Refused(r, "jwt", refusalReason(err), "")
		if ce := p.refusals.Check(r.Context(), zap.InfoLevel, "access token refused", refusalReason(err)); ce != nil {
			ce.Write(zap.String("reason", err.Error()), zap.String("request_id", requestID(r)))
		}
		edgeauth.Fail(r, edgeauth.Unauthenticated(code, msg, "invalid_token"))
		return caddyauth.User{}, false, nil
	}
	p.ok.Inc()
	edgeauth.SetScope(r, c.Scope)
	caddyhttp.SetVar(r.Context(), contract.VarCredential, &c.Credential)
	return caddyauth.User{ID: c.Subject, Metadata: c.Metadata}, true, nil
}

// Bounds of Provider.RevocationStaleness.
const (
	DefaultRevocationStaleness = 5 * time.Second
	// MinRevocationStaleness: twice the interval at which a healthy
	// subscription confirms the view (revocation.DefaultPingInterval).
	MinRevocationStaleness = 2 * revocation.DefaultPingInterval
)

func requestID(r *http.Request) string {
	id, _ := caddyhttp.GetVar(r.Context(), contract.VarRequestID).(string)
	return id
}

// Interface guards
var (
	_ caddy.Provisioner       = (*Provider)(nil)
	_ caddy.Validator         = (*Provider)(nil)
	_ caddyauth.Authenticator = (*Provider)(nil)
)
