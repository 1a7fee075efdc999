package version

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/erpgate/erpgate/caddymodules/internal/caddyfileutil"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("erp_version", parseCaddyfile)
	// after the envelope and header rewrites, before anything that proxies
	httpcaddyfile.RegisterDirectiveOrder("erp_version", httpcaddyfile.Before, "basic_auth")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	m := new(Handler)
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return m, err
}

// UnmarshalCaddyfile parses:
//
//	erp_version [{
//		prefix  <path>
//		company <placeholder>
//	}]
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	if err := caddyfileutil.NoArgs(d); err != nil {
		return err
	}
	return caddyfileutil.EachSubdirective(d, 0, nil, func(name string) error {
		args := d.RemainingArgs()
		if len(args) != 1 {
			return d.ArgErr()
		}
		switch name {
		case "prefix":
			h.Prefix = args[0]
		case "company":
			h.Company = args[0]
		default:
			return d.Errf("unknown subdirective %q", name)
		}
		return nil
	})
}

// Interface guards
var _ caddyfile.Unmarshaler = (*Handler)(nil)
