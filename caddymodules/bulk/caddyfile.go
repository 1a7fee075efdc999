package bulk

import (
	"strconv"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/erpgate/erpgate/caddymodules/internal/caddyfileutil"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("erp_bulk", parseCaddyfile)
	// inside handle /api/*: after erp_idempotency, before erp_cache and the
	// proxy it sends pages through (the order and why: caddymodules/idempotency)
	httpcaddyfile.RegisterDirectiveOrder("erp_bulk", httpcaddyfile.Before, "abort")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	m := new(Handler)
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return m, err
}

// UnmarshalCaddyfile parses:
//
//	erp_bulk [{
//		page_size <1..200>
//	}]
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return caddyfileutil.Settings(d, func(name, value string) error {
		switch name {
		case "page_size":
			n, err := strconv.Atoi(value)
			if err != nil {
				return d.Errf("page_size: %v", err)
			}
			h.PageSize = n
		default:
			return d.Errf("unknown subdirective %q", name)
		}
		return nil
	})
}

// Interface guards
var _ caddyfile.Unmarshaler = (*Handler)(nil)
