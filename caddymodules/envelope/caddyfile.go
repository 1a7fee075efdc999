package envelope

import (
	"strconv"

	"github.com/erpgate/erpgate/caddymodules/internal/caddyfileutil"
	"github.com/erpgate/erpgate/internal/clientheaders"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("erp_envelope", parseCaddyfile)
	httpcaddyfile.RegisterDirectiveOrder("erp_envelope", httpcaddyfile.Before, "header")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	m := new(Handler)
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return m, err
}

// UnmarshalCaddyfile parses:
//
//	erp_envelope {
//		max_buffer    <bytes>
//		strip_headers <name|prefix*|default…>
//		graphql_path  <path|off>
//	}
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	if err := caddyfileutil.NoArgs(d); err != nil {
		return err
	}
	return caddyfileutil.EachSubdirective(d, 0, nil, func(name string) error {
		switch name {
		case "max_buffer":
			if !d.NextArg() {
				return d.ArgErr()
			}
			n, err := strconv.ParseInt(d.Val(), 10, 64)
			if err != nil || n <= 0 {
				return d.Errf("max_buffer: want a positive number of bytes, got %q", d.Val())
			}
			h.MaxBuffer = n
			if d.NextArg() {
				return d.ArgErr()
			}
		case "strip_headers":
			h.StripHeaders = d.RemainingArgs()
			if len(h.StripHeaders) == 0 {
				return d.ArgErr()
			}
			if err := clientheaders.Check(h.StripHeaders); err != nil {
				return d.Errf("strip_headers: %v", err)
			}
		case "graphql_path":
			args := d.RemainingArgs()
			if len(args) != 1 {
				return d.ArgErr()
			}
			h.GraphQLPath = args[0]
		default:
			return d.Errf("unknown subdirective %q", name)
		}
		return nil
	})
}

// Interface guards
var _ caddyfile.Unmarshaler = (*Handler)(nil)
