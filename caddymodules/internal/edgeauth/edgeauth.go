// Package edgeauth holds what the edge's authentication providers (erp_jwt,
// erp_api_key) have in common: the credential rule, the way a provider tells
// erp_envelope why it refused a credential, their metrics and the audit of
// refusals. It owns no state across configs: what the providers share
// lives in the erp app (caddymodules/erpapp: its Lasting and OfConfig). It
// imports the erp app and must not import any other module package of
// caddymodules (the providers import it).
package edgeauth

import (
	"net/http"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/credential"
	"github.com/erpgate/erpgate/internal/promreg"
)

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
