package authsvc

import (
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/erpgate/erpgate/caddymodules/internal/caddyfileutil"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("erp_authsvc", parseCaddyfile)
	httpcaddyfile.RegisterDirectiveOrder("erp_authsvc", httpcaddyfile.Before, "respond")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	m := new(Handler)
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return m, err
}

// UnmarshalCaddyfile fills the handler from
//
//	erp_authsvc [{
//		issuer|audience|master_key|introspection_secret <value>
//		access_ttl|refresh_ttl|refresh_idle_ttl|key_rotation|key_publish_delay|key_reload <duration>
//		password_hashing {
//			memory_kib|iterations|parallelism|concurrency|queue <number>
//			queue_wait <duration>
//		}
//	}]
//
// A string setting with no value (an unset `{$VAR}`) stays empty.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	if err := caddyfileutil.NoArgs(d); err != nil {
		return err
	}
	return caddyfileutil.EachSubdirective(d, 0, nil, func(name string) error {
		args := d.RemainingArgs()
		str := map[string]*string{"issuer": &h.Issuer, "audience": &h.Audience, "master_key": &h.MasterKey, "introspection_secret": &h.IntrospectionSecret}
		dur := map[string]*caddy.Duration{"access_ttl": &h.AccessTTL, "refresh_ttl": &h.RefreshTTL, "refresh_idle_ttl": &h.RefreshIdleTTL,
			"key_rotation": &h.KeyRotation, "key_publish_delay": &h.KeyPublishDelay, "key_reload": &h.KeyReload}
		if p, ok := str[name]; ok {
			if len(args) > 1 {
				return d.ArgErr()
			}
			if len(args) == 1 {
				*p = args[0]
			}
			return nil
		}
		if p, ok := dur[name]; ok {
			if len(args) != 1 {
				return d.ArgErr()
			}
			v, err := caddy.ParseDuration(args[0])
			if err != nil {
				return d.Errf("%s: %v", name, err)
			}
			if v <= 0 {
				return d.Errf("%s: must be positive", name)
			}
			*p = caddy.Duration(v)
			return nil
		}
		if name == "password_hashing" {
			if len(args) != 0 {
				return d.ArgErr()
			}
			if h.PasswordHashing == nil {
				h.PasswordHashing = new(PasswordHashing)
			}
			return h.PasswordHashing.unmarshalCaddyfile(d)
		}
		return d.Errf("unknown subdirective %q", name)
	})
}

// unmarshalCaddyfile fills the password_hashing block: a number 0 (what an
// unset `{$VAR:0}` gives) is the default.
func (p *PasswordHashing) unmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return caddyfileutil.EachSubdirective(d, d.Nesting(), nil, func(name string) error {
		args := d.RemainingArgs()
		if len(args) != 1 {
			return d.ArgErr()
		}
		if name == "queue_wait" {
			v, err := caddy.ParseDuration(args[0])
			if err != nil || v <= 0 {
				return d.Errf("queue_wait: a positive duration is required")
			}
			p.QueueWait = caddy.Duration(v)
			return nil
		}
		num := map[string]*int{"memory_kib": &p.MemoryKiB, "iterations": &p.Iterations, "parallelism": &p.Parallelism,
			"concurrency": &p.Concurrency, "queue": &p.Queue}
		dst, ok := num[name]
		if !ok {
			return d.Errf("unknown subdirective %q", name)
		}
		v, err := strconv.Atoi(args[0])
		if err != nil || v < 0 {
			return d.Errf("%s: a number, 0 or more, is required (0: the default)", name)
		}
		*dst = v
		return nil
	})
}

// Interface guards
var _ caddyfile.Unmarshaler = (*Handler)(nil)
