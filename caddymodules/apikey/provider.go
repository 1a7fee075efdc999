// Package apikey is the erp_api_key authentication provider: it verifies API
// keys through the auth service's introspection, with a bounded cache.
// It owns no state of its own: the cache is a lasting value kept by the erp
// app (erpapp.Keep), the refusal audit the config's (edgeauth). Of
// caddymodules it imports only the erp app and caddymodules/internal/edgeauth,
// never another module package.
package apikey

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/caddyauth"
	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"

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

// Provider verifies `Authorization: ApiKey <key>` or `X-API-Key: <key>`
// (one of them: two credentials in a request are refused with 400
// `BAD_REQUEST`, see internal/credential).
// The key's company and plan become the request's identity
// (`{http.auth.user.id}` is `apikey:<key id>`, `{http.auth.user.key_id}`
// the key's id); its scope goes to erp_authz in the request variable
// `erp.scope`. Answers of the auth
// service's introspection are cached for `cache_ttl` (never past the key's
// expiry); a revocation or rotation announced by the auth service drops the
// key's cached answers at once on every instance. The cache is keyed by the
// SHA-256 of the key: no secret is kept, and lookups do not compare secrets.
// Every key costs the same look-up (one hash, one map read): the cache never
// reads a key's prefix, and a key it does not hold goes to introspection,
// where an unknown prefix costs what a wrong secret costs. A key that must
// be introspected while the auth service (or its store) does not answer is
// not refused: 503 `SERVICE_UNAVAILABLE` with `Retry-After`
// (internal/depfail), not 401.
type Provider struct {
	// IntrospectURL is the auth service's `POST /api/v1/auth/introspect`.
	// Empty: the auth service running in this process.
	IntrospectURL string `json:"introspect_url,omitempty"`
	// IntrospectSecret is the edge's credential for remote introspection;
	// use a placeholder such as `{env.ERP_INTROSPECTION_SECRET}`.
	IntrospectSecret string `json:"introspect_secret,omitempty"`
	// CacheTTL of an active key's answer. Default: 30s.
	CacheTTL caddy.Duration `json:"cache_ttl,omitempty"`
	// NegativeTTL of an inactive key's answer. Default: 2s.
	NegativeTTL caddy.Duration `json:"negative_ttl,omitempty"`
	// CacheSize is the number of answers kept. Default: 10000.
	CacheSize int `json:"cache_size,omitempty"`
	// Timeout of one introspection. Default: 3s.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	app     *erpapp.App
	logger  *zap.Logger
	metrics *edgeauth.Metrics
	secret  string
	client  *http.Client
	st      *state
	audit   *edgeauth.RefusalAuditor
	// refusals writes the log lines of refusals, sampled (erpapp.RefusalLog).
	refusals refusallog.Logger
}

// state is the provider's lasting value (erpapp.Keep), one per
// introspection source and cache size: a config's last requests are served
// after Caddy cleaned it up, and the next config takes the cache over.
type state struct {
	lasting *erpapp.Lasting
	cache   *Cache
	flight  singleflight.Group
}

func (s *state) Destruct() error { return nil }

// CaddyModule returns the Caddy module information.
func (Provider) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.authentication.providers.erp_api_key",
		New: func() caddy.Module { return new(Provider) },
	}
}

// Provision sets defaults.
func (p *Provider) Provision(ctx caddy.Context) error {
	p.logger = ctx.Logger()
	app, err := erpapp.Get(ctx)
	if err != nil {
		return err
	}
	p.app = app
	if p.CacheTTL <= 0 {
		p.CacheTTL = caddy.Duration(30 * time.Second)
	}
	if p.NegativeTTL <= 0 {
		p.NegativeTTL = caddy.Duration(2 * time.Second)
	}
	if p.CacheSize <= 0 {
		p.CacheSize = 10000
	}
	if p.Timeout <= 0 {
		p.Timeout = caddy.Duration(3 * time.Second)
	}
	p.secret = caddy.NewReplacer().ReplaceAll(p.IntrospectSecret, "")
	p.client = &http.Client{Timeout: time.Duration(p.Timeout)}
	if p.metrics, err = edgeauth.RegisterMetrics(ctx.GetMetricsRegistry()); err != nil {
		return err
	}
	if p.audit, err = edgeauth.RefusalAuditorFor(app, p.metrics, p.logger); err != nil {
		return err
	}
	p.refusals = app.Refusals().For(p.logger)
	size := p.CacheSize
	p.st, err = erpapp.Keep(app, p.IntrospectURL+"|"+strconv.Itoa(size), func(l *erpapp.Lasting) (*state, error) {
		st := &state{lasting: l, cache: NewCache(size)}
		l.Revocations().OnAdd(func(id string) {
			if k, ok := strings.CutPrefix(id, revocation.APIKeyPrefix); ok {
				st.cache.Forget(k)
			} else if k, ok := strings.CutPrefix(id, revocation.APIKeyRotatedPrefix); ok {
				st.cache.Forget(k)
			}
		})
		return st, nil
	})
	return err
}

// Validate checks the configuration.
func (p *Provider) Validate() error {
	if p.IntrospectURL != "" && p.IntrospectSecret == "" {
		return errors.New("erp_api_key: introspect_secret is required with introspect_url")
	}
	return nil
}

// Authenticate implements caddyauth.Authenticator.
func (p *Provider) Authenticate(w http.ResponseWriter, r *http.Request) (user caddyauth.User, authenticated bool, err error) {
	cred, ok := edgeauth.Credential(r)
	if !ok || cred.Kind != credential.APIKey {
		return caddyauth.User{}, false, nil
	}
	// the span covers this provider's decision: a cache hit, or the
	// introspection at the auth service
	ctx, span := tracing.Start(r.Context(), "erp.auth")
	defer func() { edgeauth.EndSpan(span, r, "api_key", user, authenticated) }()
	key := cred.Value
	r.Header.Del("X-Api-Key") // never forwarded to a backend
	if len(key) > 512 || key == "" {
		p.refuse(r, edgeauth.ReasonMalformed, key)
		return caddyauth.User{}, false, nil
	}
	revoked := p.st.lasting.Revocations()
	now := time.Now()
	h := Hash(key)
	id, ok := p.st.cache.Get(h, now)
	if span.IsRecording() {
		cache := "miss"
		if ok {
			cache = "hit"
		}
		span.SetAttributes(tracing.KeyCache.String(cache))
	}
	if !ok {
		v, err, _ := p.st.flight.Do(string(h[:]), func() (any, error) {
			ctx, cancel := context.WithTimeout(ctx, time.Duration(p.Timeout))
			defer cancel()
			return p.introspect(ctx, key)
		})
		if err != nil {
			if ce := p.refusals.Check(r.Context(), zap.ErrorLevel, "API key introspection failed", "unavailable"); ce != nil {
				ce.Write(zap.Error(err))
			}
			p.metrics.Decisions.WithLabelValues("api_key", "error").Inc()
			edgeauth.Fail(r, depfail.Error("API key verification is temporarily unavailable"))
			return caddyauth.User{}, false, nil
		}
		id = v.(Identity)
		until := now.Add(time.Duration(p.CacheTTL))
		if !id.Active {
			until = now.Add(time.Duration(p.NegativeTTL))
		} else if !id.Expiry.IsZero() && id.Expiry.Before(until) {
			until = id.Expiry
		}
		if !revoked.Has(revocation.APIKeyPrefix + id.KeyID) {
			p.st.cache.Put(h, id, until)
		}
	}
	if !id.Active || (!id.Expiry.IsZero() && !now.Before(id.Expiry)) || revoked.Has(revocation.APIKeyPrefix+id.KeyID) {
		p.refuse(r, edgeauth.ReasonInactive, key)
		return caddyauth.User{}, false, nil
	}
	p.metrics.Decisions.WithLabelValues("api_key", "ok").Inc()
	p.noteUse(r, id)
	sub := id.Subject
	if sub == "" {
		sub = "apikey:" + id.KeyID
	}
	edgeauth.SetScope(r, id.Scope)
	caddyhttp.SetVar(r.Context(), contract.VarCredential, &contract.Credential{ID: string(h[:]), Expiry: id.Expiry, Revocable: revocation.APIKeyPrefix + id.KeyID})
	return caddyauth.User{
		ID: sub,
		Metadata: map[string]string{
			"company_id": id.CompanyID,
			"roles":      "",
			"plan":       id.Plan,
			"key_id":     id.KeyID,
		},
	}, true, nil
}

// refuse answers a bad key; key goes to the audit only for its public prefix.
func (p *Provider) refuse(r *http.Request, why, key string) {
	p.metrics.Decisions.WithLabelValues("api_key", "refused").Inc()
	p.audit.Refused(r, "api_key", why, key)
	if ce := p.refusals.Check(r.Context(), zap.InfoLevel, "API key refused", why); ce != nil {
		ce.Write(zap.String("reason", why))
	}
	edgeauth.Fail(r, edgeauth.Unauthenticated(contract.CodeUnauthenticated, "invalid API key", "invalid_token"))
}

// introspection is the auth service's answer (RFC 7662 style).
type introspection struct {
	Active    bool   `json:"active"`
	KeyID     string `json:"key_id"`
	CompanyID string `json:"company_id"`
	Scope     string `json:"scope"`
	Plan      string `json:"plan"`
	Exp       int64  `json:"exp"`
	Sub       string `json:"sub"`
}

func (in introspection) identity() Identity {
	id := Identity{Active: in.Active, KeyID: in.KeyID, CompanyID: in.CompanyID, Scope: in.Scope, Plan: in.Plan, Subject: in.Sub}
	if in.Exp > 0 {
		id.Expiry = time.Unix(in.Exp, 0)
	}
	if id.Active && (id.CompanyID == "" || id.KeyID == "") {
		id.Active = false // an active key always has a company: fail closed
	}
	return id
}

func (p *Provider) introspect(ctx context.Context, key string) (Identity, error) {
	if p.IntrospectURL == "" {
		svc, err := p.app.AuthService()
		if err != nil {
			return Identity{}, err
		}
		in, err := svc.IntrospectAPIKey(ctx, key)
		if err != nil {
			return Identity{}, err
		}
		return introspection{Active: in.Active, KeyID: in.KeyID, CompanyID: in.CompanyID, Scope: in.Scope, Plan: in.Plan, Exp: in.Exp, Sub: in.Sub}.identity(), nil
	}
	body, _ := json.Marshal(map[string]string{"token": key, "token_type_hint": "api_key"})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.IntrospectURL, bytes.NewReader(body))
	if err != nil {
		return Identity{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+p.secret)
	resp, err := p.client.Do(req)
	if err != nil {
		return Identity{}, fmt.Errorf("introspect: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return Identity{}, fmt.Errorf("introspect: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return Identity{}, fmt.Errorf("introspect: status %d", resp.StatusCode)
	}
	var env struct {
		Data introspection `json:"data"`
	}
	if err := json.Unmarshal(b, &env); err != nil {
		return Identity{}, fmt.Errorf("introspect: answer: %w", err)
	}
	return env.Data.identity(), nil
}

// Interface guards
var (
	_ caddy.Provisioner       = (*Provider)(nil)
	_ caddy.Validator         = (*Provider)(nil)
	_ caddyauth.Authenticator = (*Provider)(nil)
)
