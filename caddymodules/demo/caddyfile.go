package demo

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// parseCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	erp_demo [<matcher>] {
//		jwks_url <url>
//		issuer   <iss>
//		backend  <service> <name>
//		insecure_skip_assertion
//	}
//
// The block is optional; `backend` may be given once per service.
func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	handler := new(Handler)
	if err := handler.UnmarshalCaddyfile(h.Dispenser); err != nil {
		return nil, err
	}
	return handler, nil
}

// UnmarshalCaddyfile fills the fields; it rejects arguments, unknown or
// repeated subdirectives and wrong argument counts.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	seen := map[string]bool{}
	for d.NextBlock(0) {
		name := d.Val()
		if name != "backend" && seen[name] {
			return d.Errf("erp_demo: %s given twice", name)
		}
		seen[name] = true
		switch name {
		case "jwks_url", "issuer":
			if !d.NextArg() {
				return d.ArgErr()
			}
			if name == "jwks_url" {
				h.JWKSURL = d.Val()
			} else {
				h.Issuer = d.Val()
			}
			if d.NextArg() {
				return d.ArgErr()
			}
		case "backend":
			args := d.RemainingArgs()
			if len(args) != 2 {
				return d.ArgErr()
			}
			if _, dup := h.Backends[args[0]]; dup {
				return d.Errf("erp_demo: backend %s given twice", args[0])
			}
			if h.Backends == nil {
				h.Backends = map[string]string{}
			}
			h.Backends[args[0]] = args[1]
		case "insecure_skip_assertion":
			if d.NextArg() {
				return d.ArgErr()
			}
			h.InsecureSkipAssertion = true
		default:
			return d.Errf("unrecognized subdirective %q", name)
		}
	}
	return nil
}

// Interface guards
var _ caddyfile.Unmarshaler = (*Handler)(nil)
