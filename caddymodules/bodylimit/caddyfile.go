package bodylimit

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"

	"github.com/erpgate/erpgate/caddymodules/internal/caddyfileutil"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("erp_body_limit", parseCaddyfile)
	// right after erp_auth (which sits after basic_auth, before
	// forward_auth): the plan is known, and erp_quota, erp_idempotency,
	// erp_merge and the proxy come later
	httpcaddyfile.RegisterDirectiveOrder("erp_body_limit", httpcaddyfile.After, "forward_auth")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	m := new(Handler)
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return m, err
}

// UnmarshalCaddyfile parses:
//
//	erp_body_limit [{
//		plan    <name> <size>
//		default <size>
//	}]
//
// plan repeats (once per name); sizes as 10MiB, 1GB, 512KB.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	if err := caddyfileutil.NoArgs(d); err != nil {
		return err
	}
	return caddyfileutil.EachSubdirective(d, 0, map[string]bool{"plan": true}, func(name string) error {
		switch name {
		case "plan":
			var plan, size string
			if !d.Args(&plan, &size) || d.NextArg() {
				return d.Err("plan takes: <name> <size>")
			}
			if _, dup := h.Plans[plan]; dup {
				return d.Errf("plan %s given twice", plan)
			}
			n, err := humanize.ParseBytes(size)
			if err != nil || n == 0 {
				return d.Errf("plan %s: %q is not a size", plan, size)
			}
			if h.Plans == nil {
				h.Plans = make(map[string]int64)
			}
			h.Plans[plan] = int64(n)
		case "default":
			var size string
			if !d.Args(&size) || d.NextArg() {
				return d.ArgErr()
			}
			n, err := humanize.ParseBytes(size)
			if err != nil || n == 0 {
				return d.Errf("default: %q is not a size", size)
			}
			h.Default = int64(n)
		default:
			return d.Errf("unknown subdirective %s", name)
		}
		return nil
	})
}

// Interface guard
var _ caddyfile.Unmarshaler = (*Handler)(nil)
