package graphql

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
	httpcaddyfile.RegisterHandlerDirective("erp_graphql", parseCaddyfile)
	httpcaddyfile.RegisterDirectiveOrder("erp_graphql", httpcaddyfile.Before, "respond")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	m := new(Handler)
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return m, err
}

// UnmarshalCaddyfile parses:
//
//	erp_graphql [{
//		plan <name> {             (repeatable, one per plan)
//			max_depth   <n>
//			max_cost    <n>
//			max_aliases <n>
//			max_size    <size>      (8KiB, 32768, …)
//			persisted_only
//		}
//		default_plan      <name>
//		persisted_queries <file>
//		apq_cache         <entries>
//		timeout           <duration>
//		max_parallel      <n>
//		max_response      <size>
//	}]
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	if err := caddyfileutil.NoArgs(d); err != nil {
		return err
	}
	return caddyfileutil.EachSubdirective(d, 0, map[string]bool{"plan": true}, func(name string) error {
		if name == "plan" {
			return h.parsePlan(d)
		}
		if name == "persisted_only" || name == "max_depth" || name == "max_cost" || name == "max_aliases" || name == "max_size" {
			return d.Errf("%s belongs in a plan block", name)
		}
		args := d.RemainingArgs()
		if len(args) != 1 {
			return d.ArgErr()
		}
		v := args[0]
		switch name {
		case "default_plan":
			h.DefaultPlan = v
		case "persisted_queries":
			h.PersistedQueries = v
		case "apq_cache":
			n, err := positive(d, name, v)
			if err != nil {
				return err
			}
			h.APQCache = n
		case "timeout":
			dur, err := caddy.ParseDuration(v)
			if err != nil || dur <= 0 {
				return d.Errf("timeout: want a positive duration, got %q", v)
			}
			h.Timeout = caddy.Duration(dur)
		case "max_parallel":
			n, err := positive(d, name, v)
			if err != nil {
				return err
			}
			h.MaxParallel = n
		case "max_response":
			n, err := size(d, name, v)
			if err != nil {
				return err
			}
			h.MaxResponse = int64(n)
		default:
			return d.Errf("unknown subdirective %q", name)
		}
		return nil
	})
}

// parsePlan reads `plan <name> { … }`.
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
		if sub == "persisted_only" {
			if len(args) != 0 {
				return d.ArgErr()
			}
			p.PersistedOnly = true
			return nil
		}
		if len(args) != 1 {
			return d.ArgErr()
		}
		var err error
		switch sub {
		case "max_depth":
			p.MaxDepth, err = positive(d, sub, args[0])
		case "max_cost":
			p.MaxCost, err = positive(d, sub, args[0])
		case "max_aliases":
			p.MaxAliases, err = positive(d, sub, args[0])
		case "max_size":
			p.MaxSize, err = size(d, sub, args[0])
		default:
			return d.Errf("plan %s: unknown subdirective %q", name, sub)
		}
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

func positive(d *caddyfile.Dispenser, name, v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, d.Errf("%s: want a positive number, got %q", name, v)
	}
	return n, nil
}

// size reads a byte size: 8KiB, 1MiB, 32768.
func size(d *caddyfile.Dispenser, name, v string) (int, error) {
	n, err := humanize.ParseBytes(v)
	if err != nil || n == 0 || n > 1<<40 {
		return 0, d.Errf("%s: want a positive size (8KiB, 32768), got %q", name, v)
	}
	return int(n), nil
}

// Interface guards
var _ caddyfile.Unmarshaler = (*Handler)(nil)
