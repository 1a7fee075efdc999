// Package cache is the erp_cache handler: a cache of backend answers per
// company and scope set, in Redis (shared by every edge instance) or in the
// process's memory. The key, the Cache-Control rules, the stores and the
// invalidation by generation are in internal/respcache (no Caddy import);
// this package reads the request's identity, captures the answer and keeps
// the Prometheus counters. Of caddymodules it imports only the erp app and
// caddymodules/internal/caddyfileutil.
package cache

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/erpgate/erpgate/caddymodules/erpapp"
	"github.com/erpgate/erpgate/caddymodules/internal/tee"
	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/respcache"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler caches GET answers of the erp app's backends. It goes after
// erp_version and erp_auth (it needs the backend, the company and the
// scope) and before reverse_proxy:
//
//	handle /api/* {
//		erp_version
//		erp_auth
//		erp_quota
//		erp_cache {
//			ttl 0
//			backend products ttl 30s
//			max_body 1MiB
//		}
//		reverse_proxy { dynamic erp }
//	}
//
// What it stores is the backend's answer as the backend sent it (status
// 200, its headers and body), before erp_envelope translates it, so the
// envelope's meta (request id, timestamp) is fresh on every answer.
//
// Keys: the company, the caller's scope set (sorted), the backend, the
// version, the path, the query with its parameters sorted, and the Accept
// and Accept-Language headers; so no answer crosses companies or
// permissions. Two users of one company with the same scopes share
// entries: a backend whose answer depends on the user must say
// `Cache-Control: private` (see below).
//
// Cache-Control, both ways, for a cache shared by a company's callers:
// a client's `no-store` bypasses the cache (neither read nor stored), its
// `no-cache` (or `max-age=0`, or `Pragma: no-cache`) refreshes it (not
// read, the fresh answer stored); conditional and range requests pass
// through. A backend's `no-store`, `no-cache` and `private` keep the answer
// out, its `s-maxage` (or else `max-age`) shortens the TTL; answers with
// Set-Cookie or a Vary on other headers than the key's are not stored.
//
// Every write (POST, PUT, PATCH, DELETE) answered 2xx through the edge
// invalidates the company's entries of that backend (all versions): a
// generation counter per company and backend is part of every key, so the
// invalidation is one Redis INCR. Writes that do not pass this handler
// invalidate too: a GraphQL mutation of the same config (erp_graphql
// announces it through the erp app), and any business event
// `erp.<resource>.created|updated|deleted` of the company on the event
// stream (another instance's write, or one the ERP or another producer
// published), where <resource> is the backend's event resource (its
// `events { resource … }`, else its name). Each instance hears every
// event, so a memory store is invalidated as well as Redis. Backends with
// a TTL of 0 are neither cached nor invalidated.
//
// Cached GETs get `X-Cache: HIT` (with `Age`) or `X-Cache: MISS`;
// erpgate_cache_requests_total{backend,result} counts hit, miss, refresh,
// bypass and error, so the hit ratio is hit / (hit + miss).
// A store that fails (Redis down) is logged and counted; the request goes
// to the backend as if there were no cache.
type Handler struct {
	// TTL is the default time to keep a backend's answers; 0 leaves
	// backends not listed in Backends uncached. Default: 0.
	TTL caddy.Duration `json:"ttl,omitempty"`

	// Backends overrides the TTL per backend name (0 = off).
	Backends map[string]*BackendConfig `json:"backends,omitempty"`

	// MaxBody is the largest answer body stored, in bytes; larger ones
	// pass through. Default: 1048576 (1 MiB).
	MaxBody int64 `json:"max_body,omitempty"`

	// Store is `redis` or `memory`. Default: redis when the erp app has
	// Redis, else memory.
	Store string `json:"store,omitempty"`

	// MaxEntries and MaxBytes bound the memory store. Default: 10000
	// entries, 64 MiB.
	MaxEntries int `json:"max_entries,omitempty"`
	MaxBytes   int `json:"max_bytes,omitempty"`

	// Timeout bounds each Redis call (within the request's context).
	// Default: 100ms.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	known func(backend string) bool // the erp app has the backend
	store respcache.Store
	// byResource: the cached backends of each event resource, for
	// invalidation by business events
	byResource map[string][]string
	logger     *zap.Logger
	now        func() time.Time
}

// BackendConfig is one backend's cache settings.
type BackendConfig struct {
	// TTL of the backend's answers; 0 turns its cache off.
	TTL caddy.Duration `json:"ttl"`
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.erp_cache",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision sets defaults and picks the store. The memory store is the
// config's (a reload starts it empty, which is safe: it only costs misses).
func (h *Handler) Provision(ctx caddy.Context) error {
	app, err := erpapp.Get(ctx)
	if err != nil {
		return err
	}
	h.known = func(b string) bool { return app.Backend(b) != nil }
	h.logger = ctx.Logger()
	if h.now == nil {
		h.now = time.Now
	}
	if err := registerMetrics(ctx.GetMetricsRegistry()); err != nil {
		return err
	}
	if h.MaxBody == 0 {
		h.MaxBody = 1 << 20
	}
	if h.MaxEntries == 0 {
		h.MaxEntries = 10000
	}
	if h.MaxBytes == 0 {
		h.MaxBytes = 64 << 20
	}
	if h.Timeout <= 0 {
		h.Timeout = caddy.Duration(100 * time.Millisecond)
	}
	if h.Store == "" {
		h.Store = "memory"
		if app.RedisClient() != nil {
			h.Store = "redis"
		}
	}
	switch h.Store {
	case "redis":
		if app.RedisClient() == nil {
			return errors.New("erp_cache: store redis: the erp app has no redis")
		}
		h.store = respcache.NewRedis(app.RedisClient(), app.KeyPrefix)
	case "memory":
		h.store = respcache.NewMemory(h.MaxEntries, h.MaxBytes, h.now)
	default:
		return errors.New("erp_cache: store must be redis or memory")
	}
	h.byResource = make(map[string][]string)
	for _, name := range app.BackendNames() {
		b := app.Backend(name)
		if b == nil || h.ttlFor(name) <= 0 {
			continue
		}
		res := b.EventResource()
		if res == "" { // its events are off here, yet others may publish them
			res = name
		}
		h.byResource[res] = append(h.byResource[res], name)
	}
	if len(h.byResource) > 0 {
		writes, err := erpapp.Writes(app)
		if err != nil {
			return err
		}
		writes.Listen(func(ctx context.Context, company, backend string) {
			if h.ttlFor(backend) > 0 {
				h.invalidate(ctx, company, backend)
			}
		})
		go h.watchEvents(ctx, app.Lasting())
	}
	return nil
}

// Validate checks the numbers.
func (h *Handler) Validate() error {
	if h.TTL < 0 || h.MaxBody < 0 || h.MaxEntries < 0 || h.MaxBytes < 0 {
		return errors.New("erp_cache: negative ttl or size")
	}
	for name, b := range h.Backends {
		if b == nil || b.TTL < 0 {
			return errors.New("erp_cache: backend " + strconv.Quote(name) + ": bad ttl")
		}
	}
	return nil
}

// ttlFor is the backend's TTL (0: not cached).
func (h *Handler) ttlFor(backend string) time.Duration {
	if b, ok := h.Backends[backend]; ok {
		return time.Duration(b.TTL)
	}
	return time.Duration(h.TTL)
}

// ServeHTTP serves a GET from the cache or stores the backend's answer,
// and invalidates on writes.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	backend, _ := caddyhttp.GetVar(r.Context(), contract.VarBackend).(string)
	repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if backend == "" || repl == nil || !h.known(backend) {
		return next.ServeHTTP(w, r)
	}
	company, _ := repl.GetString("http.auth.user.company_id")
	if company == "" {
		return next.ServeHTTP(w, r) // not authenticated: nothing to key on
	}
	switch r.Method {
	case http.MethodGet:
		return h.serveGet(w, r, next, company, backend)
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return h.serveWrite(w, r, next, company, backend)
	}
	return next.ServeHTTP(w, r)
}

func (h *Handler) serveWrite(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, company, backend string) error {
	if h.ttlFor(backend) <= 0 {
		return next.ServeHTTP(w, r) // nothing of it is cached
	}
	sw := &statusWriter{ResponseWriter: w}
	err := next.ServeHTTP(sw, r)
	if err == nil && sw.status >= 200 && sw.status < 300 {
		h.invalidate(context.WithoutCancel(r.Context()), company, backend)
	}
	return err
}

// invalidate bumps the generation of company's entries of backend. A
// failure is logged and counted: the stale entries live until their TTL.
func (h *Handler) invalidate(ctx context.Context, company, backend string) {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(h.Timeout))
	defer cancel()
	if err := h.store.Invalidate(ctx, respcache.GroupFor(company, backend)); err != nil {
		metricErrors.WithLabelValues(backend, "invalidate").Inc()
		h.logger.Error("cache invalidation failed", zap.String("backend", backend),
			zap.String("company", company), zap.Error(err))
		return
	}
	metricInvalidations.WithLabelValues(backend).Inc()
}

func (h *Handler) serveGet(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, company, backend string) error {
	ttl := h.ttlFor(backend)
	if ttl <= 0 {
		return next.ServeHTTP(w, r)
	}
	policy := respcache.PolicyFor(r.Header)
	if policy == respcache.Bypass {
		metricRequests.WithLabelValues(backend, "bypass").Inc()
		return next.ServeHTTP(w, r)
	}
	scope, _ := caddyhttp.GetVar(r.Context(), contract.VarScope).(string)
	version, _ := caddyhttp.GetVar(r.Context(), contract.VarAPIVersion).(string)
	key := respcache.KeyFor(respcache.Request{
		Company: company, Scope: scope, Backend: backend, Version: version,
		Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header,
	})

	ctx, cancel := context.WithTimeout(r.Context(), time.Duration(h.Timeout))
	gen, val, err := h.store.Lookup(ctx, key)
	cancel()
	if err != nil {
		metricRequests.WithLabelValues(backend, "error").Inc()
		h.logger.Warn("cache lookup failed", zap.String("backend", backend), zap.Error(err))
		return next.ServeHTTP(w, r)
	}
	if val != nil && policy == respcache.Use {
		if e, derr := respcache.Decode(val); derr == nil {
			metricRequests.WithLabelValues(backend, "hit").Inc()
			return h.writeHit(w, e)
		}
		h.logger.Warn("cache entry corrupt", zap.String("backend", backend))
	}
	result := "miss"
	if policy == respcache.Refresh {
		result = "refresh"
	}
	metricRequests.WithLabelValues(backend, result).Inc()

	before := make(map[string]struct{}, len(w.Header()))
	for k := range w.Header() {
		before[k] = struct{}{}
	}
	w.Header().Set("X-Cache", "MISS")
	cw := &tee.Writer{ResponseWriter: w, Max: h.MaxBody}
	if err := next.ServeHTTP(cw, r); err != nil {
		return err
	}
	if !cw.Kept() {
		return nil
	}
	stored := make(http.Header)
	for k, v := range cw.Sent() {
		if _, set := before[k]; !set && k != "X-Cache" && !hopByHop(k) {
			stored[k] = v
		}
	}
	life := respcache.StoreTTL(cw.Status(), stored, ttl)
	if life <= 0 {
		return nil
	}
	e := respcache.Entry{Status: cw.Status(), Stored: h.now(), Header: stored, Body: cw.Body()}
	pctx, pcancel := context.WithTimeout(context.WithoutCancel(r.Context()), time.Duration(h.Timeout))
	defer pcancel()
	if perr := h.store.Put(pctx, key, gen, e.Encode(), life); perr != nil {
		metricErrors.WithLabelValues(backend, "put").Inc()
		h.logger.Warn("cache store failed", zap.String("backend", backend), zap.Error(perr))
	}
	return nil
}

// writeHit writes a stored answer as the backend would have.
func (h *Handler) writeHit(w http.ResponseWriter, e *respcache.Entry) error {
	hdr := w.Header()
	for k, v := range e.Header {
		hdr[k] = v
	}
	hdr.Set("X-Cache", "HIT")
	age := int(h.now().Sub(e.Stored) / time.Second)
	if age < 0 {
		age = 0
	}
	hdr.Set("Age", strconv.Itoa(age))
	hdr.Set("Content-Length", strconv.Itoa(len(e.Body)))
	w.WriteHeader(e.Status)
	_, err := w.Write(e.Body)
	if err != nil {
		// the client went away; nothing to render
		return nil
	}
	return nil
}

// hopByHop names the headers a cache never stores (RFC 9110 §7.6.1, plus
// Date and Content-Length, which the hit sets itself).
func hopByHop(k string) bool {
	switch k {
	case "Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding",
		"Upgrade", "Date", "Content-Length", "Age":
		return true
	}
	return false
}

// statusWriter records the status of a write's answer.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 && code >= 200 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the real writer (Flush).
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
