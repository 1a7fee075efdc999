// Package ipblock is the erp_ip_block handler: it refuses requests from
// client addresses the security monitor blocked (secmon.Blocklist, shared
// by every edge instance through Redis). It owns no state: the blocklist
// is the erp app's Lasting's; it imports no module package but the erp app.
package ipblock

import (
	"net/http"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/erpgate/erpgate/caddymodules/erpapp"
	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/secmon"
)

func init() {
	caddy.RegisterModule(Handler{})
	httpcaddyfile.RegisterHandlerDirective("erp_ip_block", func(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
		m := new(Handler)
		return m, m.UnmarshalCaddyfile(h.Dispenser)
	})
	httpcaddyfile.RegisterDirectiveOrder("erp_ip_block", httpcaddyfile.Before, "header") // right after erp_envelope (registered first, also before header)
}

// Handler refuses a request whose client address is blocked with 403
// `FORBIDDEN` (context `{"reason": "address_blocked"}`) and `Retry-After`
// (seconds until the block ends). Place it right after erp_envelope, so a
// blocked address reaches nothing else, the auth service included:
//
//	erp_envelope
//	erp_ip_block
//
// The client address is Caddy's (`{http.vars.client_ip}`): the connection's
// peer, or the forwarded address when the peer is one of the server's
// `trusted_proxies`. Loopback is never blocked. The check is an atomic
// load when nothing is blocked, else one map lookup.
type Handler struct {
	bl *secmon.Blocklist
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.erp_ip_block",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision takes the erp app's blocklist.
func (h *Handler) Provision(ctx caddy.Context) error {
	app, err := erpapp.Get(ctx)
	if err != nil {
		return err
	}
	h.bl = app.Lasting().Blocklist()
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if h.bl.Empty() {
		return next.ServeHTTP(w, r)
	}
	ip, _ := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string)
	until, blocked := h.bl.BlockedString(ip)
	if !blocked {
		return next.ServeHTTP(w, r)
	}
	secmon.BlockedRequestsTotal.Inc()
	secs := int64(time.Until(until)/time.Second) + 1
	e := &contract.Error{Status: http.StatusForbidden, Code: contract.CodeForbidden,
		Message: "requests from your network address are refused for a while after repeated failed sign-ins; try again later",
		Context: map[string]any{"reason": "address_blocked"},
		Header:  http.Header{"Retry-After": []string{strconv.FormatInt(secs, 10)}}}
	return caddyhttp.Error(http.StatusForbidden, e)
}

// UnmarshalCaddyfile takes `erp_ip_block` with no arguments and no block.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next()
	if d.NextArg() {
		return d.ArgErr()
	}
	if d.NextBlock(0) {
		return d.Errf("erp_ip_block: takes no block")
	}
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
	_ caddyfile.Unmarshaler       = (*Handler)(nil)
)
