package authz

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/caddyauth"
	"github.com/erpgate/erpgate/caddymodules/internal/caddyfileutil"

	"github.com/erpgate/erpgate/caddymodules/apikey"
	"github.com/erpgate/erpgate/caddymodules/companyjwt"
)

func init() {
	httpcaddyfile.RegisterDirective("erp_auth", parseErpAuth)
	httpcaddyfile.RegisterDirectiveOrder("erp_auth", httpcaddyfile.After, "basic_auth")
	httpcaddyfile.RegisterHandlerDirective("erp_authz", func(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
		m := new(Handler)
		return m, m.UnmarshalCaddyfile(h.Dispenser)
	})
	httpcaddyfile.RegisterDirectiveOrder("erp_authz", httpcaddyfile.After, "forward_auth")
}

// parseErpAuth expands `erp_auth` into Caddy's authentication handler with
// the erp_jwt and erp_api_key providers, followed by erp_authz:
//
//	erp_auth [<matcher>] {
//		jwks_url          <url>        # default: the in-process auth service
//		issuer            <iss>
//		audience          <aud>
//		leeway            <duration>
//		refresh_interval  <duration>   # JWKS background refresh
//		min_refetch       <duration>   # least time between refetches for unknown kids
//		negative_ttl      <duration>   # how long an unknown kid stays unknown
//		revocation_staleness <duration> # how old the view of revocations may get (default 5s)
//		key_cache_ttl     <duration>   # how long an API key's introspection is cached
//		introspect_url    <url>        # default: the in-process auth service
//		introspect_secret <secret>     # use {env.…}
//		api_keys          on|off       # default on
//		require           <scope…>     # default: {backend}:read|write
//		authenticated_only             # any verified identity; no scope check
//		backend           <name>       # the route's backend without erp_version:
//		                               # the edge assertion's audience
//		csrf_origins      <origin…>    # cookie mode: origins besides the request's
//		                               # own allowed to send unsafe requests
//	}
func parseErpAuth(h httpcaddyfile.Helper) ([]httpcaddyfile.ConfigValue, error) {
	// the matcher token follows the directive's name (as Caddy's own
	// handler directives read it); extracting it resets the dispenser
	if !h.Next() {
		return nil, h.ArgErr()
	}
	matcherSet, err := h.ExtractMatcherSet()
	if err != nil {
		return nil, err
	}
	h.Next() // directive name
	if h.NextArg() {
		return nil, h.ArgErr()
	}
	jwtP := new(companyjwt.Provider)
	keyP := new(apikey.Provider)
	az := new(Handler)
	apiKeys := true
	seen := map[string]bool{}
	for h.NextBlock(0) {
		name := h.Val()
		if seen[name] {
			return nil, h.Errf("duplicate subdirective %q", name)
		}
		seen[name] = true
		args := h.RemainingArgs()
		one := func() (string, error) {
			if len(args) != 1 {
				return "", h.ArgErr()
			}
			return args[0], nil
		}
		var v string
		switch name {
		case "jwks_url", "issuer", "audience", "introspect_url", "introspect_secret", "leeway", "api_keys",
			"refresh_interval", "min_refetch", "negative_ttl", "key_cache_ttl", "backend", "revocation_staleness":
			if v, err = one(); err != nil {
				return nil, err
			}
		}
		switch name {
		case "jwks_url":
			jwtP.JWKSURL = v
		case "issuer":
			jwtP.Issuer = v
		case "audience":
			jwtP.Audience = v
		case "leeway", "refresh_interval", "min_refetch", "negative_ttl", "key_cache_ttl", "revocation_staleness":
			d, err := caddy.ParseDuration(v)
			if err != nil || d <= 0 {
				return nil, h.Errf("%s: want a positive duration, got %q", name, v)
			}
			*map[string]*caddy.Duration{
				"leeway": &jwtP.Leeway, "refresh_interval": &jwtP.RefreshInterval, "min_refetch": &jwtP.MinRefetch,
				"negative_ttl": &jwtP.NegativeTTL, "key_cache_ttl": &keyP.CacheTTL, "revocation_staleness": &jwtP.RevocationStaleness,
			}[name] = caddy.Duration(d)
		case "introspect_url":
			keyP.IntrospectURL = v
		case "introspect_secret":
			keyP.IntrospectSecret = v
		case "api_keys":
			switch v {
			case "on":
				apiKeys = true
			case "off":
				apiKeys = false
			default:
				return nil, h.Errf("api_keys: expected on or off")
			}
		case "require":
			if len(args) == 0 {
				return nil, h.ArgErr()
			}
			az.Require = args
		case "authenticated_only":
			if len(args) != 0 {
				return nil, h.ArgErr()
			}
			az.AuthenticatedOnly = true
		case "backend":
			az.Backend = v
		case "csrf_origins":
			if len(args) == 0 {
				return nil, h.ArgErr()
			}
			jwtP.CSRFOrigins = args
		default:
			return nil, h.Errf("unknown subdirective %q", name)
		}
	}
	providers := caddy.ModuleMap{"erp_jwt": caddyconfig.JSON(jwtP, nil)}
	if apiKeys {
		providers["erp_api_key"] = caddyconfig.JSON(keyP, nil)
	}
	authn := &caddyauth.Authentication{ProvidersRaw: providers}
	out := h.NewRoute(matcherSet, authn)
	return append(out, h.NewRoute(matcherSet, az)...), nil
}

// UnmarshalCaddyfile parses
//
//	erp_authz {
//		require <scope…>
//		backend <name>
//	}
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	if err := caddyfileutil.NoArgs(d); err != nil {
		return err
	}
	return caddyfileutil.EachSubdirective(d, 0, nil, func(name string) error {
		switch name {
		case "require":
			h.Require = d.RemainingArgs()
			if len(h.Require) == 0 {
				return d.ArgErr()
			}
		case "backend":
			args := d.RemainingArgs()
			if len(args) != 1 {
				return d.ArgErr()
			}
			h.Backend = args[0]
		default:
			return d.Errf("unknown subdirective %q", name)
		}
		return nil
	})
}

// Interface guards
var _ caddyfile.Unmarshaler = (*Handler)(nil)
