package cache

import (
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"

	"github.com/erpgate/erpgate/caddymodules/internal/caddyfileutil"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("erp_cache", parseCaddyfile)
	// after erp_quota (a hit is still counted) and erp_bulk, before erp_merge
	// and the proxy (the order and why: caddymodules/idempotency)
	httpcaddyfile.RegisterDirectiveOrder("erp_cache", httpcaddyfile.Before, "copy_response")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	m := new(Handler)
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return m, err
}

// UnmarshalCaddyfile parses:
//
//	erp_cache [{
//		ttl         <duration>
//		backend     <name> ttl <duration>
//		max_body    <size>
//		store       redis|memory
//		max_entries <n>
//		max_bytes   <size>
//		timeout     <duration>
//	}]
//
// backend repeats (once per name).
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	if err := caddyfileutil.NoArgs(d); err != nil {
		return err
	}
	return caddyfileutil.EachSubdirective(d, 0, map[string]bool{"backend": true}, func(name string) error {
		switch name {
		case "backend":
			var bname, kw, val string
			if !d.Args(&bname, &kw, &val) || kw != "ttl" || d.NextArg() {
				return d.Err("backend takes: <name> ttl <duration>")
			}
			if _, dup := h.Backends[bname]; dup {
				return d.Errf("backend %s given twice", bname)
			}
			dur, err := caddy.ParseDuration(val)
			if err != nil {
				return d.Errf("backend %s ttl: %v", bname, err)
			}
			if h.Backends == nil {
				h.Backends = make(map[string]*BackendConfig)
			}
			h.Backends[bname] = &BackendConfig{TTL: caddy.Duration(dur)}
			return nil
		}
		switch name {
		case "ttl", "timeout", "max_body", "max_bytes", "max_entries", "store":
		default:
			return d.Errf("unknown subdirective %s", name)
		}
		var val string
		if !d.Args(&val) || d.NextArg() {
			return d.ArgErr()
		}
		switch name {
		case "ttl", "timeout":
			dur, err := caddy.ParseDuration(val)
			if err != nil {
				return d.Errf("%s: %v", name, err)
			}
			if name == "ttl" {
				h.TTL = caddy.Duration(dur)
			} else {
				h.Timeout = caddy.Duration(dur)
			}
		case "max_body", "max_bytes":
			n, err := humanize.ParseBytes(val)
			if err != nil {
				return d.Errf("%s: %v", name, err)
			}
			if name == "max_body" {
				h.MaxBody = int64(n)
			} else {
				h.MaxBytes = int(n)
			}
		case "max_entries":
			n, err := strconv.Atoi(val)
			if err != nil || n <= 0 {
				return d.Errf("max_entries: %q is not a positive number", val)
			}
			h.MaxEntries = n
		case "store":
			if val != "redis" && val != "memory" {
				return d.Errf("store must be redis or memory, not %q", val)
			}
			h.Store = val
		}
		return nil
	})
}

// Interface guard
var _ caddyfile.Unmarshaler = (*Handler)(nil)
