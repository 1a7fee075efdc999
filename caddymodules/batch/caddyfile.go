package batch

import (
	"strconv"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"

	"github.com/erpgate/erpgate/caddymodules/internal/caddyfileutil"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("erp_batch", parseCaddyfile)
	httpcaddyfile.RegisterDirectiveOrder("erp_batch", httpcaddyfile.Before, "respond")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	m := new(Handler)
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return m, err
}

// UnmarshalCaddyfile parses:
//
//	erp_batch [{
//		plan <name> {             (repeatable, one per plan)
//			max_items <n>
//		}
//		default_plan <name>
//		max_parallel <n>
//		max_body     <size>       (1MiB, 65536, …)
//		max_response <size>
//	}]
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	if err := caddyfileutil.NoArgs(d); err != nil {
		return err
	}
	return caddyfileutil.EachSubdirective(d, 0, map[string]bool{"plan": true}, func(name string) error {
		if name == "plan" {
			return h.parsePlan(d)
		}
		if name == "max_items" {
			return d.Errf("max_items belongs in a plan block")
		}
		args := d.RemainingArgs()
		if len(args) != 1 {
			return d.ArgErr()
		}
		v := args[0]
		switch name {
		case "default_plan":
			h.DefaultPlan = v
		case "max_parallel":
			n, err := positive(d, name, v)
			if err != nil {
				return err
			}
			h.MaxParallel = n
		case "max_body", "max_response":
			n, err := humanize.ParseBytes(v)
			if err != nil || n == 0 || n > 1<<30 {
				return d.Errf("%s: want a size from 1 byte to 1GiB, got %q", name, v)
			}
			if name == "max_body" {
				h.MaxBody = int64(n)
			} else {
				h.MaxResponse = int64(n)
			}
		default:
			return d.Errf("unknown subdirective %q", name)
		}
		return nil
	})
}

// parsePlan reads `plan <name> { max_items <n> }`.
func (h *Handler) parsePlan(d *caddyfile.Dispenser) error {
	if !d.NextArg() {
		return d.ArgErr()
	}
	name := d.Val()
	if d.NextArg() {
		return d.ArgErr()
	}
	if _, dup := h.Plans[name]; dup {
		return d.Errf("plan %s: duplicate", name)
	}
	p := &Plan{}
	err := caddyfileutil.EachSubdirective(d, d.Nesting(), nil, func(sub string) error {
		args := d.RemainingArgs()
		if sub != "max_items" {
			return d.Errf("plan %s: unknown subdirective %q", name, sub)
		}
		if len(args) != 1 {
			return d.ArgErr()
		}
		n, err := positive(d, sub, args[0])
		p.MaxItems = n
		return err
	})
	if err != nil {
		return err
	}
	if h.Plans == nil {
		h.Plans = map[string]*Plan{}
	}
	h.Plans[name] = p
	return nil
}

// positive parses a whole number from 1 to maxItemsLimit.
func positive(d *caddyfile.Dispenser, name, v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxItemsLimit {
		return 0, d.Errf("%s: want a whole number from 1 to %d, got %q", name, maxItemsLimit, v)
	}
	return n, nil
}
