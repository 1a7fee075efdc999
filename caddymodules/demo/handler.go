// Package demo is the Caddy module erp_demo: the demo ERP backend of
// plugins/demo served by Caddy, so Caddyfile.example runs the edge and its
// backend in one process.
package demo

import (
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	erpdemo "github.com/erpgate/erpgate/plugins/demo"
)

func init() {
	caddy.RegisterModule(Handler{})
	httpcaddyfile.RegisterHandlerDirective("erp_demo", parseCaddyfile)
	httpcaddyfile.RegisterDirectiveOrder("erp_demo", httpcaddyfile.Before, "respond")
}

// Handler serves the demo ERP: companies acme and globex, customers, invoices
// and products in API versions v1 and v2, scoped by the X-ERP-Company-ID
// request header, plus diagnostics under /_demo/ (see package plugins/demo
// for every route and shape).
//
// It is terminal: it answers every request it gets and never calls the next
// handler. It stands for an ERP service behind the edge, so it writes its own
// answers, errors included, as application/problem+json, like a real backend
// would; the edge's envelope is not involved.
//
// The data lives in memory and is seeded afresh, identically, every time the
// config is loaded; changes made through the API are lost on reload.
//
// It has no options. JSON: `{"handler": "erp_demo"}`.
type Handler struct {
	server *erpdemo.Server
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.erp_demo",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision seeds a fresh demo ERP for this config.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.server = erpdemo.New()
	ctx.Logger().Info("demo ERP backend provisioned",
		zap.Strings("companies", h.server.Companies()))
	return nil
}

// ServeHTTP answers the request; next is never called.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	h.server.ServeHTTP(w, r)
	return nil
}

// Cleanup closes the WebSocket echo connections this config's server still
// holds, so a reload does not leave them behind.
func (h *Handler) Cleanup() error {
	if h.server == nil {
		return nil
	}
	return h.server.Close()
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
