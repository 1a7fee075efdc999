// Package demo is the Caddy module erp_demo: the demo ERP backend of
// backends/demo served by Caddy, so Caddyfile.example runs the edge and its
// backend in one process. Its assertion verifier is a lasting value kept by
// the erp app (erpapp.Keep); the data is the backends/demo server's. Of
// caddymodules it imports only the erp app.
package demo

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"go.uber.org/zap"

	erpdemo "github.com/erpgate/erpgate/backends/demo"
	"github.com/erpgate/erpgate/backends/edgeassert"
	"github.com/erpgate/erpgate/caddymodules/erpapp"
)

func init() {
	caddy.RegisterModule(Handler{})
	httpcaddyfile.RegisterHandlerDirective("erp_demo", parseCaddyfile)
	httpcaddyfile.RegisterDirectiveOrder("erp_demo", httpcaddyfile.Before, "respond")
}

// Handler serves the demo ERP: companies acme and globex, customers, invoices
// and products in API versions v1 and v2 (REST), a general ledger (OData v4 at
// /odata/v1) and a product catalogue (JSON-RPC at /jsonrpc), plus
// diagnostics under /_demo/ (see package backends/demo for every route and
// shape).
//
// Like any ERP service behind the edge, it answers a request only when it
// carries a valid edge assertion (X-ERP-Assertion, checked with
// backends/edgeassert) for the backend the service is registered as, and it
// takes the company from that assertion alone: a request without one, with
// a client's access token in its place, with an assertion for another
// backend or an expired one gets 401, and an X-ERP-Company-ID header is
// never read. Diagnostics under /_demo/ need no assertion: they hold no
// company's data and change nothing, and tests read through the edge what
// a backend receives (/_demo/echo-headers).
//
// The assertion keys come from the auth service running in this process
// (its published key set, no network) or, with `jwks_url`, from the edge's
// JWKS. Nothing is fetched before the first request.
//
// It is terminal: it answers every request it gets and never calls the next
// handler. It stands for an ERP service behind the edge, so it writes its own
// answers, errors included, as application/problem+json, like a real backend
// would; the edge's envelope is not involved.
//
// The data lives in memory and is seeded afresh, identically, every time the
// config is loaded; changes made through the API are lost on reload.
//
// JSON: `{"handler": "erp_demo"}`, with the options below.
type Handler struct {
	// JWKSURL is the edge's key set, e.g.
	// https://edge.example/.well-known/jwks.json. Default: the key set the
	// auth service in this process publishes.
	JWKSURL string `json:"jwks_url,omitempty"`
	// Issuer is the exact iss of the edge's assertions. Default: the
	// in-process auth service's issuer; required with jwks_url.
	Issuer string `json:"issuer,omitempty"`
	// Backends names the edge backend each demo service is registered as:
	// the aud its requests' assertions must carry. Services: invoices,
	// customers, products (the REST collections, v1 and v2), odata (the
	// ledger at /odata/v1), jsonrpc (the catalogue at /jsonrpc). Given
	// names replace the defaults, which are Caddyfile.example's:
	// invoices, customers, products, ledger, inventory.
	Backends map[string]string `json:"backends,omitempty"`
	// InsecureSkipAssertion turns the assertion check off: the company then
	// comes from the X-ERP-Company-ID header of whoever connects. Only for
	// benchmarks (and tests of the edge without authentication), on an
	// address nobody else reaches; a warning is logged. Default: false.
	InsecureSkipAssertion bool `json:"insecure_skip_assertion,omitempty"`

	server   *erpdemo.Server
	logger   *zap.Logger
	backends erpdemo.Backends
	shared   *sharedVerifier
}

// sharedVerifier is the handler's lasting value (erpapp.Keep), one per key
// source, issuer and backend names: Caddy cleans up an old config while its
// last requests are still being served, so a config's verifier (its keys,
// its cache of verified assertions, its background refresh) outlives it;
// the next config with the same settings takes it over, and a reload
// fetches nothing. It is built at the first ERP request of any config
// using it.
type sharedVerifier struct {
	lasting *erpapp.Lasting
	ctx     context.Context // lives as long as the entry
	cancel  context.CancelFunc
	mu      sync.Mutex
	v       atomic.Pointer[edgeassert.Verifier]
}

func (s *sharedVerifier) Destruct() error { s.cancel(); return nil }

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.erp_demo",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision seeds a fresh demo ERP for this config; the assertion verifier
// is built at the first ERP request (no I/O here).
func (h *Handler) Provision(ctx caddy.Context) error {
	app, err := erpapp.Get(ctx)
	if err != nil {
		return err
	}
	return h.provision(ctx, app)
}

func (h *Handler) provision(ctx caddy.Context, app *erpapp.App) error {
	h.logger = ctx.Logger()
	if h.InsecureSkipAssertion {
		h.logger.Warn("demo ERP backend does not verify the edge assertion: it trusts X-ERP-Company-ID from whoever connects (insecure_skip_assertion, for benchmarks only)")
		h.server = erpdemo.New()
	} else {
		h.backends = erpdemo.DefaultBackends.With(h.Backends)
		names := make([]string, 0, len(h.backends))
		for svc, name := range h.backends {
			names = append(names, svc+"="+name)
		}
		sort.Strings(names)
		key := h.JWKSURL + "|" + h.Issuer + "|" + strings.Join(names, ",")
		sh, err := erpapp.Keep(app, key, func(l *erpapp.Lasting) (*sharedVerifier, error) {
			ctx, cancel := context.WithCancel(l.Context())
			return &sharedVerifier{lasting: l, ctx: ctx, cancel: cancel}, nil
		})
		if err != nil {
			return err
		}
		h.shared = sh
		h.server = erpdemo.New(erpdemo.WithGuard(h.guard))
	}
	h.logger.Info("demo ERP backend provisioned",
		zap.Strings("companies", h.server.Companies()),
		zap.Bool("verifies_assertion", !h.InsecureSkipAssertion))
	return nil
}

// services a Backends key may name.
var services = map[string]bool{"customers": true, "invoices": true, "jsonrpc": true, "odata": true, "products": true}

// Validate checks the configuration.
func (h *Handler) Validate() error {
	for svc, name := range h.Backends {
		if !services[svc] {
			return fmt.Errorf("erp_demo: backends: unknown service %q (known: customers, invoices, jsonrpc, odata, products)", svc)
		}
		if name == "" {
			return fmt.Errorf("erp_demo: backends: service %q has no backend name", svc)
		}
	}
	if h.JWKSURL != "" {
		if !strings.HasPrefix(h.JWKSURL, "https://") && !strings.HasPrefix(h.JWKSURL, "http://") {
			return errors.New("erp_demo: jwks_url must be an http(s) URL")
		}
		if h.Issuer == "" {
			return errors.New("erp_demo: issuer is required with jwks_url")
		}
	}
	if h.InsecureSkipAssertion && (h.JWKSURL != "" || h.Issuer != "" || len(h.Backends) > 0) {
		return errors.New("erp_demo: insecure_skip_assertion leaves jwks_url, issuer and backends unused")
	}
	return nil
}

// guard wraps the demo's ERP services: each request is checked by the
// verifier, built at the first one.
func (h *Handler) guard(next http.Handler) http.Handler {
	var mw atomic.Pointer[http.Handler]
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := mw.Load(); p != nil {
			(*p).ServeHTTP(w, r)
			return
		}
		v, err := h.verifierFor()
		if err != nil {
			h.logger.Error("edge assertion verification unavailable", zap.Error(err))
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"type":"about:blank","title":"Service Unavailable","status":503,"detail":"the edge assertion cannot be verified now"}` + "\n"))
			return
		}
		m := v.Middleware(next)
		mw.Store(&m)
		m.ServeHTTP(w, r)
	})
}

// verifierFor builds the verifier on first use: by then the config's auth
// service is provisioned.
func (h *Handler) verifierFor() (*edgeassert.Verifier, error) {
	sh := h.shared
	if v := sh.v.Load(); v != nil {
		return v, nil
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if v := sh.v.Load(); v != nil {
		return v, nil
	}
	logger := h.logger
	cfg := edgeassert.Config{
		JWKSURL: h.JWKSURL, Issuer: h.Issuer, AudienceFor: h.backends.For,
		OnFetch: func(err error) {
			if err != nil {
				logger.Warn("edge key set fetch failed; keeping the last good keys", zap.Error(err))
			}
		},
		OnRefuse: func(r *http.Request, err error) {
			if ce := logger.Check(zap.InfoLevel, "request without a valid edge assertion refused"); ce != nil {
				ce.Write(zap.String("reason", err.Error()), zap.String("method", r.Method),
					zap.String("path", r.URL.Path), zap.String("remote_addr", r.RemoteAddr))
			}
		},
	}
	if h.JWKSURL == "" {
		lasting := sh.lasting
		svc, err := lasting.AuthService()
		if err != nil {
			return nil, fmt.Errorf("no jwks_url and %w", err)
		}
		if cfg.Issuer == "" {
			cfg.Issuer = svc.Issuer()
		}
		// a look-up in this process (a copy of a few keys), never a network
		// fetch: an unknown kid asks again at once, so that a key published
		// by a rotation or another instance verifies from its first assertion
		cfg.MinRefetch = time.Millisecond
		cfg.Keys = func(ctx context.Context) (jwk.Set, error) {
			svc, err := lasting.AuthService() // the newest config's auth service
			if err != nil {
				return nil, err
			}
			return svc.PublicKeys(ctx)
		}
	}
	v, err := edgeassert.New(sh.ctx, cfg)
	if err != nil {
		return nil, err
	}
	sh.v.Store(v)
	return v, nil
}

// ServeHTTP answers the request; next is never called.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	h.server.ServeHTTP(w, r)
	return nil
}

// Cleanup closes the WebSocket echo connections this config's server still
// holds, so a reload does not leave them behind (the erp app gives the
// shared verifier back).
func (h *Handler) Cleanup() error {
	if h.server == nil {
		return nil
	}
	return h.server.Close()
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
