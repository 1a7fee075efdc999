package quota

import (
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/erpgate/erpgate/caddymodules/internal/caddyfileutil"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("erp_quota", parseCaddyfile)
	// after authentication (erp_auth, erp_authz), before anything that proxies
	httpcaddyfile.RegisterDirectiveOrder("erp_quota", httpcaddyfile.Before, "request_header")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	m := new(Handler)
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return m, err
}

// UnmarshalCaddyfile parses:
//
//	erp_quota [{
//		plan <name> [<rate> [<quota>]] [{
//			rate        <n>/<unit>
//			client_rate <n>/<unit>
//			quota       <n>
//		}]
//		default_plan   <name>
//		key            <placeholder>
//		plan_from      <placeholder>
//		client         <placeholder>
//		on_redis_down  allow|deny|local
//		shadow
//		timeout        <duration>
//		probe_interval <duration>
//		billing_day    <1-31>
//		time_zone      <IANA zone>
//	}]
//
// plan repeats (once per name); a rate or quota given both inline and in
// the block is an error.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	if err := caddyfileutil.NoArgs(d); err != nil {
		return err
	}
	return caddyfileutil.EachSubdirective(d, 0, map[string]bool{"plan": true}, func(name string) error {
		switch name {
		case "plan":
			if err := h.parsePlan(d); err != nil {
				return err
			}
		case "shadow":
			if d.NextArg() {
				return d.ArgErr()
			}
			h.Shadow = true
		case "default_plan", "key", "plan_from", "client", "on_redis_down", "time_zone":
			args := d.RemainingArgs()
			if len(args) != 1 {
				return d.ArgErr()
			}
			switch name {
			case "default_plan":
				h.DefaultPlan = args[0]
			case "key":
				h.Key = args[0]
			case "plan_from":
				h.PlanFrom = args[0]
			case "client":
				h.Client = args[0]
			case "on_redis_down":
				switch args[0] {
				case policyAllow, policyDeny, policyLocal:
				default:
					return d.Errf("on_redis_down: want allow, deny or local")
				}
				h.OnRedisDown = args[0]
			case "time_zone":
				h.TimeZone = args[0]
			}
		case "timeout", "probe_interval":
			args := d.RemainingArgs()
			if len(args) != 1 {
				return d.ArgErr()
			}
			dur, err := caddy.ParseDuration(args[0])
			if err != nil || dur <= 0 {
				return d.Errf("%s: invalid duration %q", name, args[0])
			}
			if name == "timeout" {
				h.Timeout = caddy.Duration(dur)
			} else {
				h.ProbeInterval = caddy.Duration(dur)
			}
		case "billing_day":
			args := d.RemainingArgs()
			if len(args) != 1 {
				return d.ArgErr()
			}
			n, err := strconv.Atoi(args[0])
			if err != nil || n < 1 || n > 31 {
				return d.Errf("billing_day: want 1 to 31")
			}
			h.BillingDay = n
		default:
			return d.Errf("unknown subdirective %q", name)
		}
		return nil
	})
}

func (h *Handler) parsePlan(d *caddyfile.Dispenser) error {
	args := d.RemainingArgs()
	if len(args) < 1 || len(args) > 3 {
		return d.ArgErr()
	}
	name := args[0]
	if _, dup := h.Plans[name]; dup {
		return d.Errf("duplicate plan %q", name)
	}
	p := &Plan{}
	if len(args) > 1 {
		p.Rate = args[1]
	}
	if len(args) > 2 {
		n, err := strconv.ParseInt(args[2], 10, 64)
		if err != nil {
			return d.Errf("plan %s: quota %q is not a number", name, args[2])
		}
		p.Quota = n
	}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		sub := d.Val()
		if seen[sub] {
			return d.Errf("plan %s: duplicate subdirective %q", name, sub)
		}
		seen[sub] = true
		vals := d.RemainingArgs()
		if len(vals) != 1 {
			return d.ArgErr()
		}
		switch sub {
		case "rate":
			if p.Rate != "" {
				return d.Errf("plan %s: rate given twice", name)
			}
			p.Rate = vals[0]
		case "client_rate":
			p.ClientRate = vals[0]
		case "quota":
			if p.Quota != 0 {
				return d.Errf("plan %s: quota given twice", name)
			}
			n, err := strconv.ParseInt(vals[0], 10, 64)
			if err != nil {
				return d.Errf("plan %s: quota %q is not a number", name, vals[0])
			}
			p.Quota = n
		default:
			return d.Errf("plan %s: unknown subdirective %q", name, sub)
		}
	}
	if h.Plans == nil {
		h.Plans = map[string]*Plan{}
	}
	h.Plans[name] = p
	return nil
}

// Interface guards
var _ caddyfile.Unmarshaler = (*Handler)(nil)
