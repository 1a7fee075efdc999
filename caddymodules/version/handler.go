// Package version is the erp_version handler: it reads the API version and
// the backend of a request, routes it to the backend's upstreams for that
// version (through `reverse_proxy { dynamic erp }`), applies the backend's
// dialect, and answers for deprecated and sunset versions.
//
// The backend registry is the erp app's (App.Backend), and so is the count of
// calls to deprecated versions (erpapp.Lasting.Deprecations, kept across
// reloads, read by erp_usage); this package owns its Prometheus collectors
// (registered with internal/promreg). Of caddymodules it
// imports only the erp app and the internal helpers caddyfileutil and
// placeholders.
package version

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/erpgate/erpgate/backends/dialects"
	"github.com/erpgate/erpgate/caddymodules/erpapp"
	"github.com/erpgate/erpgate/caddymodules/internal/placeholders"
	"github.com/erpgate/erpgate/caddymodules/internal/subres"
	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/cursor"
	"github.com/erpgate/erpgate/internal/deprecations"
	"github.com/erpgate/erpgate/internal/envelope"
	"github.com/erpgate/erpgate/internal/reqpath"
	"github.com/erpgate/erpgate/internal/tracing"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler routes `/api/{version}/{backend}/…` (or `/api/{backend}/…` with
// the version from an `API-Version: v2` header, an
// `Accept: application/vnd.erp.v2+json` media range, or else the backend's
// default version) to a backend registered in the erp app:
//
//	route {
//		erp_envelope
//		handle /api/* {
//			erp_version
//			erp_auth
//			erp_quota …
//			reverse_proxy {
//				dynamic erp
//			}
//		}
//	}
//
// It
//   - refuses a path that is not canonical (internal/reqpath's rule, the
//     one erp_authz authorises by: empty, "." or ".." segments, encoded
//     dots, slashes, backslashes or unreserved characters, double encoding,
//     `;` parameters, control characters, look-alike Unicode) with 400
//     BAD_REQUEST (414 when too long), whether or not it is below the
//     prefix: what is routed and authorised is exactly what was sent;
//   - answers 404 NOT_FOUND for an unknown backend, 400 VERSION_UNSUPPORTED
//     (listing the supported versions in context.supported) for an unknown
//     version, 400 BAD_REQUEST when the path's, the API-Version header's and
//     the Accept header's versions disagree;
//   - after a version's sunset answers 410 VERSION_SUNSET; before it, a
//     deprecated version's answers carry `Deprecation: @<unix>` (RFC 9745),
//     `Sunset: <HTTP-date>` (RFC 8594) and `Link: <…>; rel="successor-version"`;
//   - counts calls to deprecated versions per company (in the erp app's
//     lasting internal/deprecations counter, shown by erp_usage) and
//     logs each; the company is read after the rest of the chain ran, so
//     only calls that passed authentication are counted;
//   - rewrites the request for the backend: the path becomes the version's
//     upstream path + the backend's path + the rest (/api/v1/invoices/inv_1
//     → /v1/invoices/inv_1), the query and (JSON-RPC) method and body are
//     mapped by the backend's dialect, and method-override headers
//     (X-HTTP-Method-Override, X-HTTP-Method, X-Method-Override) are removed;
//   - reads a collection GET's `?cursor=` (signed by the edge, bound to the
//     company, the backend, version and collection, and the query but page
//     and limit): a bad, tampered or foreign cursor, or page with cursor,
//     is 400 BAD_REQUEST naming cursor before any backend call (the company
//     binding is checked by erp_authz through contract.VarCompanyCheck); the
//     dialect continues from the cursor's position, and each collection
//     answer with a next page gets `pagination.next_cursor`;
//   - publishes `{erp.api_version}` and `{erp.backend}` (placeholders and
//     request variables), and the dialect's reader of the answer for
//     erp_envelope. The client's method stays in `{http.request.orig_method}`;
//   - records erpgate_backend_requests_total, _request_duration_seconds and
//     _upstream_errors_total per backend and version.
//
// Errors are returned to Caddy (`handle_errors { erp_envelope }` renders them).
type Handler struct {
	// Prefix is the path under which backends are served. Default: `/api`.
	Prefix string `json:"prefix,omitempty"`

	// Company is the placeholder that names the caller's company, read
	// after the chain ran, for the deprecated-call counter. Default:
	// `{http.auth.user.company_id}` (set by erp_auth).
	Company string `json:"company,omitempty"`

	routes map[string]*backendRoute

	deprecations *deprecations.Counter // the erp app's lasting count of deprecated calls
	lasting      *erpapp.Lasting       // its event engine publishes business events
	cursors      *cursor.Codec         // seals and opens ?cursor= (the erp app's key); nil: no cursors
	now          func() time.Time
	logger       *zap.Logger
}

// backendRoute is a backend as erp_version serves it, precomputed per contract.
type backendRoute struct {
	name     string
	nameAny  any // boxed once: publishing it costs no allocation
	backend  *erpapp.Backend
	dialect  dialects.Dialect
	resource string
	events   *backendEvents // nil: the backend's events are off
	public   string         // the client's collection path without a version: prefix + "/" + name
	versions map[string]*versionRoute
	ordered  []*versionRoute
	def      *versionRoute
}

type versionRoute struct {
	name       string
	nameAny    any
	v          *erpapp.Version
	deprecated bool
	depSince   time.Time // zero: deprecated only through a sunset date
	sunsetAt   time.Time
	successor  string // the Link target, or ""
	public     string // the client's collection path with this version in it
	headers    http.Header
	metrics    versionMetrics
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.erp_version",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision builds the routing table from the erp app's backends.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	if h.now == nil {
		h.now = time.Now
	}
	if h.Prefix == "" {
		h.Prefix = "/api"
	}
	h.Prefix = strings.TrimSuffix(h.Prefix, "/")
	if h.Company == "" {
		h.Company = "{http.auth.user.company_id}"
	}
	app, err := erpapp.Get(ctx)
	if err != nil {
		return err
	}
	if err := registerMetrics(ctx.GetMetricsRegistry()); err != nil {
		return err
	}
	h.routes = buildRoutes(app, h.Prefix)
	h.deprecations = app.Lasting().Deprecations()
	h.lasting = app.Lasting()
	if h.cursors, err = app.CursorCodec(); err != nil {
		return err
	}
	return nil
}

func buildRoutes(app *erpapp.App, prefix string) map[string]*backendRoute {
	routes := make(map[string]*backendRoute)
	for _, name := range app.BackendNames() {
		b := app.Backend(name)
		if b == nil {
			continue
		}
		br := &backendRoute{name: name, nameAny: name, backend: b, dialect: b.Dialect(),
			resource: b.Resource(), events: newBackendEvents(b), public: prefix + "/" + name, versions: map[string]*versionRoute{}}
		for _, v := range b.Ordered() {
			vr := &versionRoute{name: v.Name(), nameAny: v.Name(), v: v,
				deprecated: v.IsDeprecated(), depSince: v.DeprecatedAt(), sunsetAt: v.SunsetAt(),
				metrics: newVersionMetrics(name, v.Name()), public: prefix + "/" + v.Name() + "/" + name}
			switch ref := v.SuccessorRef(); {
			case v.SuccessorVersion() != nil:
				vr.successor = prefix + "/" + ref + "/" + name
			default:
				vr.successor = ref
			}
			if vr.deprecated {
				vr.headers = http.Header{}
				if !vr.depSince.IsZero() {
					vr.headers["Deprecation"] = []string{deprecationValue(vr.depSince)}
				}
				if !vr.sunsetAt.IsZero() {
					vr.headers["Sunset"] = []string{sunsetValue(vr.sunsetAt)}
				}
				if vr.successor != "" {
					vr.headers["Link"] = []string{successorLink(vr.successor)}
				}
			}
			br.versions[v.Name()] = vr
			br.ordered = append(br.ordered, vr)
		}
		br.def = br.versions[b.Default().Name()]
		routes[name] = br
	}
	return routes
}

// Validate checks the configuration.
func (h *Handler) Validate() error {
	if h.Prefix != "" && (!strings.HasPrefix(h.Prefix, "/") || strings.Contains(h.Prefix, "//")) {
		return errors.New("erp_version: prefix must be a path starting with /")
	}
	return nil
}

// methodOverrideHeaders are removed so that no backend (or framework in
// front of it) runs a method other than the one the edge authorised.
var methodOverrideHeaders = []string{"X-Http-Method-Override", "X-Http-Method", "X-Method-Override"}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	// the span covers the routing and the dialect's rewrite; route ends it
	// before the request goes on
	ctx, span := tracing.Start(r.Context(), "erp.version")
	err := h.route(ctx, span, w, r, next)
	if span.IsRecording() { // refused before it went on
		tracing.Fail(span, err)
		span.End()
	}
	return err
}

// routed ends the `erp.version` span of a request that goes on to the
// backend br's version vr.
func routed(span trace.Span, br *backendRoute, vr *versionRoute) {
	if span.IsRecording() {
		span.SetAttributes(tracing.KeyBackend.String(br.name), tracing.KeyVersion.String(vr.name))
		span.End()
	}
}

// endProxySpan ends the request's `erp.proxy` span (caddymodules/upstreams
// started it when reverse_proxy asked for the upstreams) with the backend's
// status.
func endProxySpan(r *http.Request, repl *caddy.Replacer, failed bool) {
	span, ok := caddyhttp.GetVar(r.Context(), contract.VarProxySpan).(trace.Span)
	if !ok {
		return
	}
	if repl != nil {
		if v, ok := repl.Get("http.reverse_proxy.status_code"); ok {
			if code, ok := v.(int); ok {
				span.SetAttributes(tracing.KeyStatus.Int(code))
			}
		}
	}
	if failed {
		span.SetStatus(codes.Error, "upstream failed")
	}
	span.End()
}

// route routes the request (see ServeHTTP), its span the `erp.version`
// span in ctx.
func (h *Handler) route(ctx context.Context, span trace.Span, w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	now := h.now()
	var buf [reqpath.MaxSegments]string
	segs, res := reqpath.Split(r.URL.EscapedPath(), h.Prefix, buf[:])
	switch res {
	case reqpath.OK:
	case reqpath.NotBelow:
		return caddyhttp.Error(http.StatusNotFound, contract.NewError(http.StatusNotFound, contract.CodeNotFound, "no such resource"))
	default:
		return caddyhttp.Error(res.Status(), contract.NewError(res.Status(), contract.CodeBadRequest, res.Message()))
	}
	hv, conflict := headerVersion(r.Header)
	if conflict {
		return caddyhttp.Error(http.StatusBadRequest, &contract.Error{Status: http.StatusBadRequest, Code: contract.CodeBadRequest,
			Message: "the API-Version and Accept headers ask for different versions"})
	}
	var (
		br      *backendRoute
		vname   string
		rest    []string
		inPath  bool
		vr      *versionRoute
		pathVer string
	)
	if b, ok := h.routes[segs[0]]; ok {
		br, rest, vname = b, segs[1:], hv
	} else {
		if len(segs) < 2 || !looksLikeVersion(segs[0]) {
			return caddyhttp.Error(http.StatusNotFound, contract.NewError(http.StatusNotFound, contract.CodeNotFound, "no such resource"))
		}
		if br = h.routes[segs[1]]; br == nil {
			return caddyhttp.Error(http.StatusNotFound, contract.NewError(http.StatusNotFound, contract.CodeNotFound, "no such backend"))
		}
		pathVer, rest, inPath = segs[0], segs[2:], true
		vname = pathVer
		if hv != "" && hv != pathVer {
			return caddyhttp.Error(http.StatusBadRequest, &contract.Error{Status: http.StatusBadRequest, Code: contract.CodeBadRequest,
				Message: "the path asks for " + pathVer + " but a header asks for " + hv})
		}
	}
	if vname == "" {
		vr = br.def
	} else if vr = br.versions[vname]; vr == nil {
		return unsupported(br, vname, now)
	}
	if !vr.sunsetAt.IsZero() && !now.Before(vr.sunsetAt) {
		return h.sunset(br, vr)
	}

	// routed: publish, then rewrite for the backend
	repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	placeholders.Ensure(r)
	caddyhttp.SetVar(r.Context(), contract.VarAPIVersion, vr.nameAny)
	caddyhttp.SetVar(r.Context(), contract.VarBackend, br.nameAny)
	caddyhttp.SetVar(r.Context(), contract.VarVersion, vr.v)
	hdr := w.Header()
	for k, v := range vr.headers { // copied: later handlers may edit values in place
		hdr[k] = append([]string(nil), v...)
	}
	if !inPath {
		hdr["Vary"] = append(hdr["Vary"], "API-Version", "Accept")
	}
	for _, k := range methodOverrideHeaders {
		if _, ok := r.Header[k]; ok {
			delete(r.Header, k)
		}
	}
	public := br.public
	if inPath {
		public = vr.public
	}
	t := dialects.Target{Backend: br.name, Version: vr.name, BasePath: vr.v.BasePath(), Resource: br.resource, Public: public}
	if len(rest) == 1 && subres.IsOp(rest[0]) {
		routed(span, br, vr)
		return h.serveSubResource(w, r, next, rest[0], br, vr, &t, now)
	}
	if len(rest) > 0 {
		t.ID = rest[0]
		if len(rest) > 1 {
			t.Sub = slices.Clone(rest[1:])
		}
	}
	method := r.Method // the client's: a dialect may rewrite it (JSON-RPC reads are POSTs)
	var pager *dialects.Pager
	if h.cursors != nil && t.ID == "" && (method == http.MethodGet || method == http.MethodHead) {
		p, err := dialects.StartPage(h.cursors, r, &t)
		if err != nil {
			return rewriteError(err)
		}
		pager = p
		caddyhttp.SetVar(r.Context(), contract.VarCompanyCheck, contract.CompanyCheck(p.Bind))
	}
	_, rs := tracing.Start(ctx, "erp.dialect.rewrite")
	tr, err := br.dialect.Rewrite(r, &t)
	tracing.Fail(rs, err)
	rs.End()
	if err != nil {
		return rewriteError(err)
	}
	if pager != nil {
		tr = pager.Wrap(tr)
	}
	caddyhttp.SetVar(r.Context(), contract.VarTranslator, tr)
	if method != http.MethodGet && method != http.MethodHead {
		h.setEventSink(r, br, method, t.ID, repl)
	}

	routed(span, br, vr)
	vr.metrics.requests.Inc()
	err = next.ServeHTTP(w, r)
	vr.metrics.duration.Observe(h.now().Sub(now).Seconds())
	failed := upstreamFailed(err, repl)
	if failed {
		vr.metrics.upstreamErrors.Inc()
	}
	if trace.SpanFromContext(r.Context()).IsRecording() {
		endProxySpan(r, repl, failed)
	}
	if vr.deprecated && (vr.depSince.IsZero() || !now.Before(vr.depSince)) && repl != nil {
		h.countDeprecated(repl, br, vr, now)
	}
	return err
}

// rewriteError is a dialect's refusal as Caddy's error.
func rewriteError(err error) error {
	if ce, ok := contract.AsError(err); ok {
		return caddyhttp.Error(ce.Status, ce)
	}
	return caddyhttp.Error(http.StatusBadRequest, err)
}

// serveSubResource hands a request for a backend's reserved sub-resource
// (export, import) to the handler that claims it (caddymodules/internal/subres):
// the request is not rewritten for the backend. Should no handler claim it
// and the request reach the proxy as it is, the backend's answer is replaced
// by 404 NOT_FOUND (the translator below), so nothing untranslated is served.
func (h *Handler) serveSubResource(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler, op string,
	br *backendRoute, vr *versionRoute, t *dialects.Target, now time.Time) error {
	rt := &subres.Route{Op: op, Dialect: br.dialect, Target: *t}
	subres.Set(r, rt)
	caddyhttp.SetVar(r.Context(), contract.VarTranslator, unclaimed)
	vr.metrics.requests.Inc()
	err := next.ServeHTTP(w, r)
	vr.metrics.duration.Observe(h.now().Sub(now).Seconds())
	if trace.SpanFromContext(r.Context()).IsRecording() { // an export's pages went through the proxy
		repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
		endProxySpan(r, repl, upstreamFailed(err, repl))
	}
	if !rt.Claimed() && err == nil {
		h.logger.Warn("sub-resource request not claimed by any handler: put erp_bulk / erp_import before reverse_proxy",
			zap.String("backend", br.name), zap.String("op", op))
	}
	if vr.deprecated && (vr.depSince.IsZero() || !now.Before(vr.depSince)) {
		if repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); repl != nil {
			h.countDeprecated(repl, br, vr, now)
		}
	}
	return err
}

// unclaimed reads any backend answer to an unclaimed sub-resource request as 404.
var unclaimed = envelope.TranslatorFunc(func(*envelope.Answer) envelope.Result {
	return envelope.Result{Status: http.StatusNotFound, Errors: []envelope.Error{{Code: contract.CodeNotFound, Message: "no such resource"}}}
})

// upstreamFailed: the proxy could not get an answer (502/503/504 from
// reverse_proxy) or the backend answered 5xx.
func upstreamFailed(err error, repl *caddy.Replacer) bool {
	if err != nil {
		var he caddyhttp.HandlerError
		if errors.As(err, &he) {
			switch he.StatusCode {
			case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
				return true
			}
		}
		return false
	}
	if repl == nil {
		return false
	}
	if v, ok := repl.Get("http.reverse_proxy.status_code"); ok {
		if code, ok := v.(int); ok && code >= 500 {
			return true
		}
	}
	return false
}

func (h *Handler) countDeprecated(repl *caddy.Replacer, br *backendRoute, vr *versionRoute, now time.Time) {
	company := repl.ReplaceKnown(h.Company, "")
	if company == "" || company == h.Company {
		return
	}
	counted := h.deprecations.Add(company, br.name, vr.name, now.UTC(), vr.sunsetAt, vr.successor)
	if c := h.logger.Check(zapcore.InfoLevel, "call to a deprecated API version"); c != nil {
		fields := []zap.Field{zap.String("company_id", company), zap.String("backend", br.name),
			zap.String("version", vr.name), zap.String("successor", vr.successor)}
		if !vr.sunsetAt.IsZero() {
			fields = append(fields, zap.Time("sunset", vr.sunsetAt))
		}
		if !counted {
			fields = append(fields, zap.Bool("counter_full", true))
		}
		c.Write(fields...)
	}
}

// unsupported is the VERSION_UNSUPPORTED error listing the versions served.
func unsupported(br *backendRoute, asked string, now time.Time) error {
	supported := make([]string, 0, len(br.ordered))
	for _, v := range br.ordered {
		if v.sunsetAt.IsZero() || now.Before(v.sunsetAt) {
			supported = append(supported, v.name)
		}
	}
	if len(asked) > 16 {
		asked = asked[:16] + "…"
	}
	return caddyhttp.Error(http.StatusBadRequest, &contract.Error{
		Status:  http.StatusBadRequest,
		Code:    contract.CodeVersionUnsupported,
		Message: "version " + quoteSafe(asked) + " of " + br.name + " is not supported; supported: " + strings.Join(supported, ", "),
		Context: map[string]any{"supported": supported, "backend": br.name},
	})
}

// sunset is the 410 VERSION_SUNSET error, with the successor link.
func (h *Handler) sunset(br *backendRoute, vr *versionRoute) error {
	e := &contract.Error{
		Status:  http.StatusGone,
		Code:    contract.CodeVersionSunset,
		Message: "version " + vr.name + " of " + br.name + " was retired on " + vr.sunsetAt.UTC().Format(time.DateOnly),
		Context: map[string]any{"sunset": vr.sunsetAt.UTC().Format(time.RFC3339), "backend": br.name, "version": vr.name},
		Header:  http.Header{"Sunset": {sunsetValue(vr.sunsetAt)}},
	}
	if vr.successor != "" {
		e.Message += "; use " + vr.successor
		e.Context["successor"] = vr.successor
		e.Header["Link"] = []string{successorLink(vr.successor)}
	}
	return caddyhttp.Error(http.StatusGone, e)
}

// quoteSafe keeps a client-supplied version printable in a message.
func quoteSafe(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == '"' || r == '\\' {
			b.WriteByte('?')
			continue
		}
		b.WriteRune(r)
	}
	b.WriteByte('"')
	return b.String()
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
