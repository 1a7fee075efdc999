package merge

import (
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("erp_merge", parseCaddyfile)
	// right before the proxy, after erp_cache (its fetch of the current
	// version is never a cached one; the order: caddymodules/idempotency)
	httpcaddyfile.RegisterDirectiveOrder("erp_merge", httpcaddyfile.Before, "reverse_proxy")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	m := new(Handler)
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return m, err
}

// UnmarshalCaddyfile parses:
//
//	erp_merge [{
//		ttl         <duration>
//		max_entries     <n>
//		max_per_company <n>
//		max_body        <bytes>
//	}]
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next()
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		key := d.Val()
		if !d.NextArg() {
			return d.ArgErr()
		}
		val := d.Val()
		switch key {
		case "ttl":
			dur, err := caddy.ParseDuration(val)
			if err != nil || dur <= 0 {
				return d.Errf("ttl: a positive duration, not %q", val)
			}
			h.TTL = caddy.Duration(dur)
		case "max_entries", "max_per_company", "max_body":
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil || n <= 0 {
				return d.Errf("%s: a positive integer, not %q", key, val)
			}
			switch key {
			case "max_entries":
				h.MaxEntries = int(n)
			case "max_per_company":
				h.MaxPerCompany = int(n)
			default:
				h.MaxBody = n
			}
		default:
			return d.Errf("unknown erp_merge option %q", key)
		}
		if d.NextArg() {
			return d.ArgErr()
		}
	}
	return nil
}
