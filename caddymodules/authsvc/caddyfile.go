package authsvc

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("erp_authsvc", parseCaddyfile)
	httpcaddyfile.RegisterDirectiveOrder("erp_authsvc", httpcaddyfile.Before, "respond")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	m := new(Handler)
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return m, err
}

// UnmarshalCaddyfile accepts the bare directive
//
//	erp_authsvc
//
// The auth service's settings are in the global `erp { authsvc { … } }`
// block; a setting given here is an error that says where it now goes.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the directive
	if d.NextArg() {
		return d.Errf("erp_authsvc takes no arguments: the auth service's settings go in the global option block, erp { authsvc { … } }")
	}
	for d.NextBlock(0) {
		return d.Errf("erp_authsvc has no settings: move %q into the global option block, erp { authsvc { %s … } }", d.Val(), d.Val())
	}
	return nil
}

// Interface guards
var _ caddyfile.Unmarshaler = (*Handler)(nil)
