package authsvc

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
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
//	}]
//
// A string setting with no value (an unset `{$VAR}`) stays empty.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	seen := map[string]bool{}
	for d.NextBlock(0) {
		name := d.Val()
		if seen[name] {
			return d.Errf("duplicate subdirective %q", name)
		}
		seen[name] = true
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
			continue
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
			continue
		}
		return d.Errf("unknown subdirective %q", name)
	}
	return nil
}

// Interface guards
var _ caddyfile.Unmarshaler = (*Handler)(nil)
