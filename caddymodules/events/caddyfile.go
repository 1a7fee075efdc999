package events

import (
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/erpgate/erpgate/caddymodules/internal/caddyfileutil"
)

// UnmarshalCaddyfile parses:
//
//	erp_events [{
//		company       <placeholder>
//		heartbeat     <duration>
//		buffer        <events>
//		write_timeout <duration>
//	}]
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return caddyfileutil.Settings(d, func(name, value string) error {
		switch name {
		case "company":
			h.Company = value
		case "heartbeat", "write_timeout":
			dur, err := caddy.ParseDuration(value)
			if err != nil || dur <= 0 {
				return d.Errf("%s: expected a positive duration", name)
			}
			if name == "heartbeat" {
				h.Heartbeat = caddy.Duration(dur)
			} else {
				h.WriteTimeout = caddy.Duration(dur)
			}
		case "buffer":
			n, err := strconv.Atoi(value)
			if err != nil || n < 1 {
				return d.Errf("buffer: expected a positive number of events")
			}
			h.Buffer = n
		default:
			return d.Errf("unknown subdirective %q", name)
		}
		return nil
	})
}
