// Package edgeauth holds what the edge's authentication providers share:
// the config's revocation set and the way a provider tells erp_envelope why
// it refused a credential.
package edgeauth

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	authsvcmod "github.com/erpgate/erpgate/caddymodules/authsvc"
	"github.com/erpgate/erpgate/caddymodules/erpapp"
	"github.com/erpgate/erpgate/config"
	"github.com/erpgate/erpgate/internal/revocation"
)

// RevocationTTL is how long a revocation is remembered: longer than any
// access token lives (15 minutes) plus leeway.
const RevocationTTL = 20 * time.Minute

type shared struct {
	set    *revocation.Set
	cancel context.CancelFunc
}

func (s *shared) Close() error { s.cancel(); return nil }

// Revocations returns the config's revocation set, created on first use and
// fed from Redis (every instance hears every revocation) or, on the embedded
// default, from the in-process auth service. Call it at request time: the
// auth service provisions in config order.
func Revocations(app *erpapp.App, logger *zap.Logger) (*revocation.Set, error) {
	svc, svcErr := authsvcmod.Lookup(app) // before Provide: Lookup takes the app's lock too
	v, err := app.Provide("edge.revocations", func() (any, error) {
		ctx, cancel := context.WithCancel(app.Context())
		set := revocation.NewSet(time.Now)
		switch {
		case app.RedisClient() != nil:
			l := &revocation.Listener{
				Redis: app.RedisClient(), Prefix: app.KeyPrefix, Set: set, TTL: RevocationTTL,
				Logger: logger, OnSwitch: func(up bool) { redisUp(up) },
			}
			l.Run(ctx)
		case svcErr == nil:
			if err := svc.SubscribeRevocations(ctx, func(sid string) { set.Add(sid, time.Now().Add(RevocationTTL)) }); err != nil {
				cancel()
				return nil, err
			}
		default:
			logger.Warn("no revocation source: no Redis and no in-process auth service; revoked sessions stay valid until their tokens expire")
		}
		return &shared{set: set, cancel: cancel}, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*shared).set, nil
}

// redisUp is replaced by the metrics of the module that registers them.
var redisUp = func(bool) {}

// Fail records why a credential was refused; erp_envelope renders this
// error instead of the authentication handler's generic 401.
func Fail(r *http.Request, e *config.Error) {
	if _, set := caddyhttp.GetVar(r.Context(), config.VarAuthFailure).(*config.Error); set {
		return
	}
	caddyhttp.SetVar(r.Context(), config.VarAuthFailure, e)
}

// Unauthenticated builds a 401 with its RFC 6750 challenge.
func Unauthenticated(code, message, bearerError string) *config.Error {
	challenge := `Bearer realm="erpgate"`
	if bearerError != "" {
		challenge += `, error="` + bearerError + `", error_description="` + message + `"`
	}
	return &config.Error{
		Status: http.StatusUnauthorized, Code: code, Message: message,
		Header: http.Header{"Www-Authenticate": {challenge}},
	}
}

// Metrics of the edge's authentication (bounded labels only).
type Metrics struct {
	Decisions   *prometheus.CounterVec // provider, outcome
	JWKSFetches *prometheus.CounterVec // outcome
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
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []**prometheus.CounterVec{&m.Decisions, &m.JWKSFetches} {
		if err := reg.Register(*c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, err
			}
			existing, ok := are.ExistingCollector.(*prometheus.CounterVec)
			if !ok {
				return nil, err
			}
			*c = existing
		}
	}
	return m, nil
}
