package erpapp

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/erpgate/erpgate/caddymodules/internal/caddyfileutil"
)

func init() {
	httpcaddyfile.RegisterGlobalOption("erp", parseGlobalOption)
}

// parseGlobalOption parses the `erp` global option:
//
//	erp {
//		postgres   <url>
//		redis      <url|addr,addr…>
//		key_prefix <prefix>
//		demo       [on|off]
//		timeout    <duration>
//		fleet_poll <duration>
//		refusal_audit {
//			sample   <n>
//			interval <duration>
//			buffer   <n>
//		}
//		refusal_log {
//			sample     <n>
//			interval   <duration>
//			access_log sampled|all
//		}
//		authsvc {
//			issuer|audience|master_key|introspection_secret <value>
//			access_ttl|refresh_ttl|refresh_idle_ttl|key_rotation|key_publish_delay|key_reload <duration>
//			password_hashing {
//				memory_kib|iterations|parallelism|concurrency|queue <number>
//				queue_wait <duration>
//			}
//		}
//	}
//
// An empty value (e.g. an unset `{$ERP_REDIS_URL}`) leaves the setting empty,
// which means the embedded default; so does a runtime placeholder such as
// `{env.ERP_REDIS_URL}` that resolves to nothing. Prefer the runtime form for
// URLs with a password: `{$…}` is substituted into the JSON config, which the
// admin API serves.
func parseGlobalOption(d *caddyfile.Dispenser, _ any) (any, error) {
	app := new(App)
	if err := app.UnmarshalCaddyfile(d); err != nil {
		return nil, err
	}
	return httpcaddyfile.App{Name: "erp", Value: caddyconfig.JSON(app, nil)}, nil
}

// UnmarshalCaddyfile fills the app from the `erp` block.
func (a *App) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	if err := caddyfileutil.NoArgs(d); err != nil {
		return err
	}
	return caddyfileutil.EachSubdirective(d, 0, repeatable, func(name string) error {
		switch name {
		case "postgres", "redis", "key_prefix":
			args := d.RemainingArgs()
			if len(args) > 1 {
				return d.ArgErr()
			}
			v := ""
			if len(args) == 1 {
				v = args[0]
			}
			switch name {
			case "postgres":
				a.Postgres = v
			case "redis":
				a.Redis = v
			case "key_prefix":
				if v == "" {
					return d.ArgErr()
				}
				a.KeyPrefix = v
			}
		case "demo":
			args := d.RemainingArgs()
			switch {
			case len(args) == 0:
				a.Demo = true
			case len(args) == 1 && (args[0] == "on" || args[0] == "true"):
				a.Demo = true
			case len(args) == 1 && (args[0] == "off" || args[0] == "false"):
				a.Demo = false
			default:
				return d.Errf("demo: expected on or off")
			}
		case "timeout":
			if !d.NextArg() {
				return d.ArgErr()
			}
			dur, err := caddy.ParseDuration(d.Val())
			if err != nil {
				return d.Errf("timeout: %v", err)
			}
			a.Timeout = caddy.Duration(dur)
			if d.NextArg() {
				return d.ArgErr()
			}
		default:
			if p, ok := subdirectives[name]; ok {
				return p(a, d)
			}
			return d.Errf("unknown subdirective %q", name)
		}
		return nil
	})
}

// subdirectives lets other files of this package (the backend registry) add
// subdirectives to the `erp` block; repeatable marks those that may repeat.
var (
	subdirectives = map[string]func(*App, *caddyfile.Dispenser) error{}
	repeatable    = map[string]bool{}
)

// Interface guards
var _ caddyfile.Unmarshaler = (*App)(nil)
