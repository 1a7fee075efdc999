package redactquery

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/erpgate/erpgate/caddymodules/internal/caddyfileutil"
)

// UnmarshalCaddyfile parses the filter inside a `format filter` block:
//
//	<field> erp_redact_query [{
//		names <pattern|default…>
//		value <replacement>
//	}]
func (f *Filter) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	if err := caddyfileutil.NoArgs(d); err != nil {
		return err
	}
	return caddyfileutil.EachSubdirective(d, 0, nil, func(name string) error {
		switch name {
		case "names":
			f.Names = d.RemainingArgs()
			if len(f.Names) == 0 {
				return d.ArgErr()
			}
			if _, err := Compile(f.Names, ""); err != nil {
				return d.Errf("names: %v", err)
			}
		case "value":
			if !d.NextArg() {
				return d.ArgErr()
			}
			f.Value = d.Val()
			if d.NextArg() {
				return d.ArgErr()
			}
		default:
			return d.Errf("unknown subdirective %q", name)
		}
		return nil
	})
}

// Interface guards
var _ caddyfile.Unmarshaler = (*Filter)(nil)
