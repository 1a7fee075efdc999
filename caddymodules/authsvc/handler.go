// Package authsvc is the `erp_authsvc` Caddy handler: it serves the auth
// service (package github.com/erpgate/erpgate/authsvc) in-process. It owns
// no state: the service, its settings and its store belong to the erp app
// (caddymodules/erpapp). It must not import a module package other than the
// erp app.
package authsvc

import (
	"errors"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	core "github.com/erpgate/erpgate/authsvc"
	"github.com/erpgate/erpgate/caddymodules/erpapp"
	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/envelope"
	"github.com/erpgate/erpgate/internal/promreg"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler serves the auth service: `/api/v1/auth/*`, `/api/v1/admin/*`,
// `/.well-known/*`, and the API reference `/api/v1/openapi.json` and
// `/api/v1/docs`. It is terminal for those paths; for any other path it
// answers 404 (through the error route, so erp_envelope renders it).
//
// It has no settings of its own: every erp_authsvc handler of one config
// serves the one auth service of the `erp` app, configured in the global
// block (see erpapp.AuthSvc) and run on the app's Postgres pool, Redis
// client, key prefix and demo switch:
//
//	{
//		erp {
//			authsvc {
//				master_key           {env.ERP_MASTER_KEY}
//				introspection_secret {env.ERP_INTROSPECTION_SECRET}
//			}
//		}
//	}
//	…
//	handle /api/v1/auth/* {
//		erp_authsvc
//	}
//
// JSON: `{"handler": "erp_authsvc"}`.
type Handler struct {
	app    *erpapp.App
	logger *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.erp_authsvc",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision tells the erp app that this config serves its auth service. It
// does no I/O: the service is made and prepared at first use.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	app, err := erpapp.Get(ctx)
	if err != nil {
		return err
	}
	app.HostAuthService()
	h.app = app
	// The auth and admin events relay's backlog and counts (authsvc/events.go)
	// and the sign-in, token and key counts (authsvc/metrics.go).
	return promreg.RegisterProcessWide(ctx.GetMetricsRegistry(), append(core.EventMetrics(), core.Metrics()...)...)
}

// ServeHTTP serves the auth service's paths and is terminal for them.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	if !core.Routed(r.URL.Path) {
		return caddyhttp.Error(http.StatusNotFound, errors.New("not an auth service endpoint"))
	}
	svc, err := h.app.ServedAuthService()
	if err != nil {
		h.logger.Error("auth service unavailable", zap.Error(err))
		return caddyhttp.Error(http.StatusServiceUnavailable, err)
	}
	caddyhttp.SetVar(r.Context(), contract.VarEnveloped, true)
	svc.Handler(core.HTTPOptions{RequestID: requestID, ClientIP: clientIP}).ServeHTTP(w, r)
	return nil
}

// requestID is erp_envelope's id for the request when it set one, else the
// client's (valid) X-Request-ID, else a new one.
func requestID(r *http.Request) string {
	if v, ok := caddyhttp.GetVar(r.Context(), contract.VarRequestID).(string); ok && v != "" {
		return v
	}
	return envelope.RequestID(r.Header.Get(contract.HeaderRequestID))
}

// clientIP is Caddy's client address (trusted proxies applied).
func clientIP(r *http.Request) string {
	if v, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok && v != "" {
		return v
	}
	return core.RemoteIP(r)
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
