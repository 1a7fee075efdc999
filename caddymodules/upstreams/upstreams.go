// Package upstreams is the Caddy module http.reverse_proxy.upstreams.erp:
// the upstreams of the backend version erp_version chose for the request,
// those of the company's cell when the version has cells. It owns no
// state: it reads the erp app's *erpapp.Version from the request's
// variables and the company's cell from the app's lasting cell table; it
// imports no module package but the erp app.
package upstreams

import (
	"errors"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp/reverseproxy"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/erpgate/erpgate/caddymodules/erpapp"
	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/celltable"
	"github.com/erpgate/erpgate/internal/tracing"
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
// When the version has cells (`cell eu http://…`), the verified company
// ({http.auth.user.company_id}, set by erp_auth) is looked up in the cell
// table (PUT /api/v1/admin/companies/{id}/cell): its cell's upstreams
// serve it, else the version's default upstreams; a version with cells
// only and no default answers 503 for companies outside them. A company
// moved to another cell has its next request sent there, while requests
// in flight finish where they are.
//
// An upstream URL with the https scheme needs `transport http { tls }` on
// the reverse_proxy: the transport, not the upstream, decides TLS.
type Source struct {
	cells *celltable.Table
}

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
func (s *Source) GetUpstreams(r *http.Request) ([]*reverseproxy.Upstream, error) {
	v, _ := caddyhttp.GetVar(r.Context(), contract.VarVersion).(*erpapp.Version)
	if v == nil {
		return nil, errNoRoute
	}
	if trace.SpanFromContext(r.Context()).IsRecording() {
		startProxySpan(r)
	}
	if !v.HasCells() || s.cells == nil {
		return Upstreams(v.Dials()), nil
	}
	dials := v.DialsFor(s.cells.Of(company(r)))
	if len(dials) == 0 {
		return nil, errNoCell
	}
	return Upstreams(dials), nil
}

// errNoCell: the version has cells only, none of them the company's.
var errNoCell = errors.New("erp upstreams: the version has no upstreams for the company's cell")

// company is the verified company erp_auth published, "" when none.
func company(r *http.Request) string {
	repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if !ok {
		return ""
	}
	c, _ := repl.GetString("http.auth.user.company_id")
	return c
}

// Provision takes the erp app's cell table (it outlives config reloads).
func (s *Source) Provision(ctx caddy.Context) error {
	app, err := erpapp.Get(ctx)
	if err != nil {
		return err
	}
	s.cells = app.Lasting().Cells()
	return nil
}

// startProxySpan starts the request's `erp.proxy` span (once: a retry asks
// for the upstreams again) and puts its W3C trace context in the headers
// the backend receives, in place of the server span's that Caddy's
// `tracing` put there. erp_version ends the span.
func startProxySpan(r *http.Request) {
	if _, started := caddyhttp.GetVar(r.Context(), contract.VarProxySpan).(trace.Span); started {
		return
	}
	ctx, span := tracing.StartClient(r.Context(), "erp.proxy")
	backend, _ := caddyhttp.GetVar(r.Context(), contract.VarBackend).(string)
	version, _ := caddyhttp.GetVar(r.Context(), contract.VarAPIVersion).(string)
	span.SetAttributes(tracing.KeyBackend.String(backend), tracing.KeyVersion.String(version))
	caddyhttp.SetVar(r.Context(), contract.VarProxySpan, span)
	propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(r.Header))
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
	_ caddy.Provisioner           = (*Source)(nil)
	_ caddyfile.Unmarshaler       = (*Source)(nil)
)
