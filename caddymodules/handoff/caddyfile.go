package handoff

import (
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/erpgate/erpgate/caddymodules/internal/caddyfileutil"
)

// UnmarshalCaddyfile parses the wrapper inside `listener_wrappers`; it takes
// neither arguments nor a block:
//
//	erp_handoff
func (w *Wrapper) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	if err := caddyfileutil.NoArgs(d); err != nil {
		return err
	}
	return caddyfileutil.EachSubdirective(d, 0, nil, func(name string) error {
		return d.Errf("unknown subdirective %q", name)
	})
}

// Interface guards
var _ caddyfile.Unmarshaler = (*Wrapper)(nil)
