package exportjobs

import (
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/erpgate/erpgate/caddymodules/internal/caddyfileutil"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("erp_export_jobs", parseCaddyfile)
	// after erp_auth, which verified the caller
	httpcaddyfile.RegisterDirectiveOrder("erp_export_jobs", httpcaddyfile.Before, "abort")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	m := new(Handler)
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return m, err
}

// UnmarshalCaddyfile parses:
//
//	erp_export_jobs [{
//		dir         <path>       # default $TMPDIR/erpgate-exports
//		max_active  <n>          # a company's queued and running jobs; default 2
//		retention   <duration>   # a finished job and its file; default 1h
//		link_ttl    <duration>   # a download link's life; default 15m
//		link_secret <secret>     # use {env.…}; default: random, shared through Redis
//		start_wait  <duration>   # POST waits for the first page; default 30s
//	}]
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return caddyfileutil.Settings(d, func(name, value string) error {
		switch name {
		case "dir":
			h.Dir = value
		case "link_secret":
			h.LinkSecret = value
		case "max_active":
			n, err := strconv.Atoi(value)
			if err != nil || n < 1 {
				return d.Errf("max_active must be a positive integer")
			}
			h.MaxActive = n
		case "retention", "link_ttl", "start_wait":
			dur, err := caddy.ParseDuration(value)
			if err != nil || dur <= 0 {
				return d.Errf("%s must be a positive duration", name)
			}
			*map[string]*caddy.Duration{"retention": &h.Retention, "link_ttl": &h.LinkTTL, "start_wait": &h.StartWait}[name] = caddy.Duration(dur)
		default:
			return d.Errf("unknown subdirective %q", name)
		}
		return nil
	})
}

// Interface guards
var _ caddyfile.Unmarshaler = (*Handler)(nil)
