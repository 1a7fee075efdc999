// Package upstreams is the Caddy module http.reverse_proxy.upstreams.erp:
// the upstreams of the backend version erp_version chose for the request.
// It owns no state: it reads the erp app's *erpapp.Version from the
// request's variables; it imports no module package but the erp app.
package upstreams

import (
	"errors"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"

	"github.com/erpgate/erpgate/caddymodules/erpapp"
	"github.com/erpgate/erpgate/contract"
)

func init() {
	caddy.RegisterModule(Source{})
}

// Source gives reverse_proxy the upstreams of the backend and version
// erp_version routed the request to (the `upstreams` of that version in the
// erp app's registry). reverse_proxy load-balances among them with its
// lb_policy, retries (lb_retries) and passive health checks (fail_duration,
// max_fails, unhealthy_status…), which Caddy keeps per upstream address
// across requests and reloads.
//
//	reverse_proxy {
//		dynamic erp
//	}
//
// It has no options. JSON: `{"source": "erp"}`. A request that did not pass
// erp_version has no upstreams and fails with 503 (never a default backend).
//
// An upstream URL with the https scheme needs `transport http { tls }` on
// the reverse_proxy: the transport, not the upstream, decides TLS.
type Source struct{}

// CaddyModule returns the Caddy module information.
func (Source) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.reverse_proxy.upstreams.erp",
		New: func() caddy.Module { return new(Source) },
	}
}

// errNoRoute is returned when erp_version did not run for the request.
var errNoRoute = errors.New("erp upstreams: no backend chosen for this request; is erp_version before reverse_proxy?")

// GetUpstreams returns fresh Upstream values each time: reverse_proxy
// writes to them while provisioning, so they cannot be shared between
// concurrent requests; their health state lives in Caddy's per-address
// host table, not in these values.
func (Source) GetUpstreams(r *http.Request) ([]*reverseproxy.Upstream, error) {
	v, _ := caddyhttp.GetVar(r.Context(), contract.VarVersion).(*erpapp.Version)
	if v == nil {
		return nil, errNoRoute
	}
	return Upstreams(v.Dials()), nil
}

// Upstreams makes one Upstream per dial address, with no per-upstream allocation.
func Upstreams(dials []string) []*reverseproxy.Upstream {
	ups := make([]reverseproxy.Upstream, len(dials))
	out := make([]*reverseproxy.Upstream, len(dials))
	for i, d := range dials {
		ups[i].Dial = d
		out[i] = &ups[i]
	}
	return out
}

// UnmarshalCaddyfile accepts `dynamic erp` with no arguments and no block.
func (s *Source) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // source name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		return d.Errf("unknown subdirective %q: dynamic erp has no options", d.Val())
	}
	return nil
}

// Interface guards
var (
	_ reverseproxy.UpstreamSource = (*Source)(nil)
	_ caddyfile.Unmarshaler       = (*Source)(nil)
)
