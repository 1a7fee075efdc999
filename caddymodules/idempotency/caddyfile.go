package idempotency

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
	httpcaddyfile.RegisterHandlerDirective("erp_idempotency", parseCaddyfile)
	// Inside handle /api/*, between erp_quota and the proxy, erpgate's
	// handlers go in this order: erp_idempotency (a replay answers the
	// merged, exported or cached request alike), erp_bulk, erp_cache,
	// erp_merge. Caddy takes only its own directives as anchors and a
	// plugin's init order is not fixed, so each has an anchor of its own:
	// request_header, abort, copy_response, reverse_proxy (erp_quota sits
	// before request_header).
	httpcaddyfile.RegisterDirectiveOrder("erp_idempotency", httpcaddyfile.After, "request_header")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	m := new(Handler)
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return m, err
}

// UnmarshalCaddyfile parses:
//
//	erp_idempotency [{
//		ttl          <duration>
//		lease        <duration>
//		max_entry    <size>
//		max_request  <size>
//		memory_bytes <size>
//		company      <placeholder>
//		retry_after  <seconds>
//	}]
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return caddyfileutil.Settings(d, func(name, value string) error {
		var err error
		switch name {
		case "ttl":
			h.TTL, err = durationArg(value)
		case "lease":
			h.Lease, err = durationArg(value)
		case "max_entry":
			h.MaxEntry, err = sizeArg(value)
		case "max_request":
			h.MaxRequest, err = sizeArg(value)
		case "memory_bytes":
			h.MemoryBytes, err = sizeArg(value)
		case "company":
			h.Company = value
		case "retry_after":
			h.RetryAfter, err = strconv.Atoi(value)
		default:
			return d.Errf("erp_idempotency: unknown setting %q", name)
		}
		if err != nil {
			return d.Errf("erp_idempotency: %s: %v", name, err)
		}
		return nil
	})
}

func durationArg(v string) (caddy.Duration, error) {
	dur, err := caddy.ParseDuration(v)
	return caddy.Duration(dur), err
}

func sizeArg(v string) (int, error) {
	n, err := humanize.ParseBytes(v)
	return int(n), err
}
