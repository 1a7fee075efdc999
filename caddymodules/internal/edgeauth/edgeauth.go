// Package edgeauth holds what the edge's authentication providers share:
// the config's revocation set and the way a provider tells erp_envelope why
// it refused a credential.
package edgeauth

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/erpgate/erpgate/authsvc"
	authsvcmod "github.com/erpgate/erpgate/caddymodules/authsvc"
	"github.com/erpgate/erpgate/caddymodules/erpapp"
	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/credential"
	"github.com/erpgate/erpgate/internal/promreg"
	"github.com/erpgate/erpgate/internal/revocation"
)

// RevocationTTL is how long a revocation is remembered: longer than any
// access token lives (15 minutes) plus leeway.
const RevocationTTL = 20 * time.Minute

// Caddy cleans up an old config's modules while its last requests may still
// be in flight (the HTTP servers' graceful shutdown runs on). What those
// requests need — the revocation set and the way to the auth service — is
// therefore kept per process, not per config: a new config takes it over
// before the old one lets go.

var (
	appsMu sync.Mutex
	apps   []*erpapp.App // the erp apps of live configs, oldest first
)

// Register records a config's erp app (call it in Provision) …
func Register(app *erpapp.App) {
	appsMu.Lock()
	apps = append(apps, app)
	appsMu.Unlock()
}

// Unregister … and forgets it (call it in Cleanup).
func Unregister(app *erpapp.App) {
	appsMu.Lock()
	for i, a := range apps {
		if a == app {
			apps = append(apps[:i], apps[i+1:]...)
			break
		}
	}
	appsMu.Unlock()
}

// Service is the in-process auth service of the newest live config that has
// one and is ready, with that config's erp app; when none of them is ready
// yet (a reload), the newest, whose callers wait for it (Ready). An older
// config's service is used only while that config is live: once it is
// cleaned up, its service (in embedded mode, its own memory store and keys)
// must not decide anything.
func Service() (*authsvc.Service, *erpapp.App, error) {
	appsMu.Lock()
	list := append([]*erpapp.App(nil), apps...)
	appsMu.Unlock()
	err := errors.New("erp: no config has an erp_authsvc handler")
	var newest *authsvc.Service
	var newestApp *erpapp.App
	for i := len(list) - 1; i >= 0; i-- {
		svc, e := authsvcmod.Lookup(list[i])
		if e != nil {
			err = e
			continue
		}
		if svc.Prepared() {
			return svc, list[i], nil
		}
		if newest == nil {
			newest, newestApp = svc, list[i]
		}
	}
	if newest == nil {
		return nil, nil, err
	}
	return newest, newestApp, nil
}

var revocationPool = caddy.NewUsagePool()

// Revocations is a process-wide revocation set, fed from Redis (every
// instance hears every revocation) or from the in-process auth services.
type Revocations struct {
	Set    *revocation.Set
	key    string
	cancel context.CancelFunc

	mu  sync.Mutex
	fed map[*authsvc.Service]bool
}

// Destruct stops the Redis listener.
func (r *Revocations) Destruct() error { r.cancel(); return nil }

// AcquireRevocations returns the revocation set for app's Redis (or the
// embedded one); Release it in Cleanup. The Redis listener runs in the
// background: nothing here waits on the network.
func AcquireRevocations(app *erpapp.App, logger *zap.Logger) (*Revocations, error) {
	key := "embedded"
	if rk := app.RedisKey(); rk != "" { // resolved: app.Redis may be a placeholder
		key = rk + "|" + app.KeyPrefix
	}
	v, _, err := revocationPool.LoadOrNew(key, func() (caddy.Destructor, error) {
		ctx, cancel := context.WithCancel(context.Background()) // lives as long as the pool entry
		r := &Revocations{Set: revocation.NewSet(time.Now), key: key, cancel: cancel, fed: map[*authsvc.Service]bool{}}
		if rdb := app.RedisClient(); rdb != nil {
			l := &revocation.Listener{Redis: rdb, Prefix: app.KeyPrefix, Set: r.Set, TTL: RevocationTTL, Logger: logger}
			r.Set.Unconfirm() // not current until the listener's first resync
			go l.Run(ctx)
		}
		return r, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*Revocations), nil
}

// Release gives the set back.
func (r *Revocations) Release() {
	_, _ = revocationPool.Delete(r.key)
}

// Join is what a provider does in Provision: record the config's erp app and
// acquire the revocation set. Leave undoes it in Cleanup.
func Join(app *erpapp.App, logger *zap.Logger) (*Revocations, error) {
	revs, err := AcquireRevocations(app, logger)
	if err != nil {
		return nil, err
	}
	Register(app)
	return revs, nil
}

// Leave undoes Join (revs may be nil when Join failed).
func Leave(app *erpapp.App, revs *Revocations) {
	if revs == nil {
		return
	}
	Unregister(app)
	revs.Release()
}

// FeedFrom subscribes the set to an in-process auth service's revocations:
// without Redis that is the only source; with Redis it makes this process's
// revocations take effect here at once, Redis up or not. Each service is
// subscribed once, for the life of its contract.
func (r *Revocations) FeedFrom(ctx context.Context, svc *authsvc.Service, logger *zap.Logger) {
	if svc == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fed[svc] {
		return
	}
	if err := svc.SubscribeRevocations(ctx, func(id string) { r.Set.Add(id, time.Now().Add(RevocationTTL)) }); err != nil {
		logger.Warn("subscribing to revocations failed", zap.Error(err))
		return
	}
	r.fed[svc] = true
	context.AfterFunc(ctx, func() {
		r.mu.Lock()
		delete(r.fed, svc)
		r.mu.Unlock()
	})
}

// Fail records why a credential was refused; erp_envelope renders this
// error instead of the authentication handler's generic 401.
func Fail(r *http.Request, e *contract.Error) {
	if _, set := caddyhttp.GetVar(r.Context(), contract.VarAuthFailure).(*contract.Error); set {
		return
	}
	caddyhttp.SetVar(r.Context(), contract.VarAuthFailure, e)
}

// Credential is the request's one credential (internal/credential's rule,
// the same as the auth service's). A request with two, or with one under a
// non-standard header name, is refused with 400 BAD_REQUEST through Fail,
// and ok is false: the provider declines it.
func Credential(r *http.Request) (c credential.Credential, ok bool) {
	c, err := credential.FromRequest(r)
	if err != nil {
		Fail(r, credential.Refusal(err))
		return c, false
	}
	return c, true
}

// SetScope hands the verified caller's scope to erp_authz (with the
// identity the provider returns to the authentication handler).
func SetScope(r *http.Request, scope string) {
	caddyhttp.SetVar(r.Context(), contract.VarScope, scope)
}

// Unauthenticated builds a 401 with its RFC 6750 challenge.
func Unauthenticated(code, message, bearerError string) *contract.Error {
	challenge := `Bearer realm="erpgate"`
	if bearerError != "" {
		challenge += `, error="` + bearerError + `", error_description="` + message + `"`
	}
	return &contract.Error{
		Status: http.StatusUnauthorized, Code: code, Message: message,
		Header: http.Header{"Www-Authenticate": {challenge}},
	}
}

// Metrics of the edge's authentication (bounded labels only).
type Metrics struct {
	Decisions   *prometheus.CounterVec // provider, outcome
	JWKSFetches *prometheus.CounterVec // outcome
	// RefusalAudit counts refusals by what their audit became (outcome:
	// recorded, summarized, dropped — see RefusalAuditor).
	RefusalAudit *prometheus.CounterVec
}

// RegisterMetrics registers the metrics on reg (or finds them there).
func RegisterMetrics(reg *prometheus.Registry) (*Metrics, error) {
	m := &Metrics{
		Decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "erpgate", Subsystem: "auth", Name: "decisions_total",
			Help: "Authentication decisions at the edge by provider (jwt, api_key) and outcome.",
		}, []string{"provider", "outcome"}),
		JWKSFetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "erpgate", Subsystem: "auth", Name: "jwks_fetches_total",
			Help: "JWKS fetches by outcome (ok, error).",
		}, []string{"outcome"}),
		RefusalAudit: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "erpgate", Subsystem: "auth", Name: "refusal_audit_total",
			Help: "Credentials refused at the edge by what their audit became: recorded (a record of its own), summarized (counted in an interval's summary), dropped (the buffer was full: counted in the summary).",
		}, []string{"outcome"}),
	}
	for _, c := range []**prometheus.CounterVec{&m.Decisions, &m.JWKSFetches, &m.RefusalAudit} {
		var err error
		if *c, err = promreg.Register(reg, *c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
