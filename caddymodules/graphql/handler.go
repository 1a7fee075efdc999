// Package graphql is the erp_graphql handler: GraphQL over HTTP at
// /api/graphql, one schema composed from the SDL every backend of the erp
// app declares (its `graphql` block), each operation bounded by the
// caller's plan (depth, cost, aliases, size), charged to the company's rate
// and quota by its cost, and executed by internal/graphql with backend calls
// made through each backend's dialect, with the caller's identity and an
// edge assertion, as erp_version and erp_authz make them for REST.
//
// It owns per config the composed schema, the transport to the backends
// and its assertion cache; the automatic persisted queries live in Redis
// (shared by every instance) when the erp app has a Redis client, else in
// a bounded memory store kept across reloads (erpapp.Keep). The schema and
// the rate limits come from the erp app; of caddymodules it imports only
// the erp app and caddymodules/internal helpers.
package graphql

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/erpgate/erpgate/caddymodules/erpapp"
	"github.com/erpgate/erpgate/caddymodules/internal/assertion"
	"github.com/erpgate/erpgate/contract"
	env "github.com/erpgate/erpgate/internal/envelope"
	"github.com/erpgate/erpgate/internal/graphql"
	"github.com/erpgate/erpgate/internal/graphql/apq"
	"github.com/erpgate/erpgate/internal/refusallog"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler serves GraphQL over HTTP
// (https://graphql.github.io/graphql-over-http/draft/), behind erp_auth:
//
//	handle /api/graphql {
//		erp_auth {
//			authenticated_only
//		}
//		erp_graphql {
//			plan free {
//				max_depth 8
//				max_cost 50
//			}
//		}
//	}
//
// Requests: POST with a JSON body {query, operationName, variables,
// extensions} (another content type: 415), or GET with the query
// parameters query, operationName, variables and extensions (JSON), for
// queries only (a mutation over GET: 405 with `Allow: POST`); other
// methods 405. Answers are {data, errors, extensions: {meta: {request_id,
// timestamp, cost, calls}}} as application/graphql-response+json when the
// Accept header lists it, else application/json, and erp_envelope leaves
// them as they are (contract.VarEnveloped). Status: 200 once execution
// started, even with field errors; 400 for a document that does not parse,
// validate or fit the plan's limits (QUERY_TOO_COMPLEX) — with either media
// type: GraphQL over HTTP allows 200 for application/json, 400 is chosen
// uniformly so that a refused operation is never mistaken for a success;
// 429/503 with Retry-After and RateLimit-* when the company's rate or quota
// refuses the cost; 403 when a persisted-only plan gets anything but a
// manifest hash; 200 with "PersistedQueryNotFound" for an unknown hash
// (Apollo's clients then send the query along).
//
// The plan of a request is its company's quota override plan
// (the erp app's quota_overrides.<company>.plan), else its credential's plan, else
// default_plan. A backend's fields need the scope `{backend}:read`
// (mutations `{backend}:write`); without it the field is null with a
// FORBIDDEN error and the backend is not called.
type Handler struct {
	// Plans are the limits per plan name. Plans not listed keep the
	// built-in limits: free 8/50/20/8KiB (depth, cost, aliases, size),
	// standard 12/5000/50/32KiB, premium 15/20000/100/64KiB, enterprise
	// 20/100000/200/128KiB.
	Plans map[string]*Plan `json:"plans,omitempty"`
	// DefaultPlan is the plan of a request whose credential names none (or
	// one no plan has). Default: free.
	DefaultPlan string `json:"default_plan,omitempty"`
	// PersistedQueries is a trusted-documents manifest: a JSON file holding
	// an object sha256-hex → query text, every hash verified when the
	// config loads. Its documents run by hash on every plan, and they are
	// the only ones a persisted_only plan runs.
	PersistedQueries string `json:"persisted_queries,omitempty"`
	// APQCache is the number of automatic persisted queries kept in memory
	// when the erp app has no Redis. Default: 10000.
	APQCache int `json:"apq_cache,omitempty"`
	// Timeout bounds each backend call. Default: 30s.
	Timeout caddy.Duration `json:"timeout,omitempty"`
	// MaxParallel is the most backend calls in flight for one request.
	// Default: 8.
	MaxParallel int `json:"max_parallel,omitempty"`
	// MaxResponse is the most bytes read from one backend answer; a larger
	// answer fails that call (UPSTREAM_UNAVAILABLE). Default: 8 MiB.
	MaxResponse int64 `json:"max_response,omitempty"`

	app       *erpapp.App
	writes    *erpapp.BackendWrites // mutations announce their writes (erp_cache drops its copies)
	logger    *zap.Logger
	schema    *graphql.Schema
	plans     *plans
	pq        *persisted
	routes    map[string]*backendRoute
	transport *http.Transport
	signer    *assertion.Signer
	refusals  refusallog.Logger // sampled log lines of what clients cause
	now       func() time.Time
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.erp_graphql",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Defaults.
const (
	defaultAPQCache    = 10000
	defaultTimeout     = 30 * time.Second
	defaultMaxParallel = 8
	defaultMaxResponse = 8 << 20
	// apqTTL is how long a registered query stays in Redis unread (each
	// read extends it).
	apqTTL = 24 * time.Hour
)

// Provision composes the schema from the erp app's backends, resolves the
// plans, loads the manifest and picks the persisted-query store. A schema
// that does not compose fails the config (the admin API then keeps the
// running one and answers the error).
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	app, err := erpapp.Get(ctx)
	if err != nil {
		return err
	}
	if err := registerMetrics(ctx.GetMetricsRegistry()); err != nil {
		return err
	}
	return h.setup(app)
}

// setup is Provision on the config's erp app.
func (h *Handler) setup(app *erpapp.App) error {
	h.app = app
	writes, werr := erpapp.Writes(app)
	if werr != nil {
		return werr
	}
	h.writes = writes
	if h.logger == nil {
		h.logger = zap.NewNop()
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.DefaultPlan == "" {
		h.DefaultPlan = "free"
	}
	if h.APQCache == 0 {
		h.APQCache = defaultAPQCache
	}
	if h.Timeout == 0 {
		h.Timeout = caddy.Duration(defaultTimeout)
	}
	if h.MaxParallel == 0 {
		h.MaxParallel = defaultMaxParallel
	}
	if h.MaxResponse == 0 {
		h.MaxResponse = defaultMaxResponse
	}
	if err := h.Validate(); err != nil {
		return err
	}
	var err error
	if h.plans, err = resolvePlans(h.Plans, h.DefaultPlan); err != nil {
		return fmt.Errorf("erp_graphql: %w", err)
	}

	var sources []graphql.Source
	for _, name := range app.BackendNames() {
		if b := app.Backend(name); b != nil && b.GraphQLSDL() != "" {
			sources = append(sources, graphql.Source{Backend: name, SDL: b.GraphQLSDL()})
		}
	}
	schema, warnings, err := graphql.Compose(sources)
	if err != nil {
		return fmt.Errorf("erp_graphql: the backends' GraphQL schemas do not compose: %w", err)
	}
	for _, w := range warnings {
		h.logger.Warn("erp_graphql: schema composition", zap.String("warning", w))
	}
	h.schema = schema
	h.routes = make(map[string]*backendRoute)
	for _, name := range schema.Backends() {
		if b := app.Backend(name); b != nil {
			h.routes[name] = newBackendRoute(b)
		}
	}

	h.pq = &persisted{}
	if h.PersistedQueries != "" {
		if h.pq.manifest, err = apq.LoadManifest(h.PersistedQueries); err != nil {
			return fmt.Errorf("erp_graphql: persisted_queries: %w", err)
		}
	}
	if rdb := app.RedisClient(); rdb != nil {
		h.pq.store = apq.NewRedis(rdb, app.KeyPrefix, apqTTL)
	} else {
		kept, err := erpapp.Keep(app, "apq|"+strconv.Itoa(h.APQCache), func(*erpapp.Lasting) (*memoryStore, error) {
			return &memoryStore{apq.NewMemory(h.APQCache)}, nil
		})
		if err != nil {
			return err
		}
		h.pq.store = kept
	}
	h.transport = newTransport(time.Duration(h.Timeout))
	h.refusals = app.Refusals().For(h.logger)
	h.signer = assertion.New(app, h.logger, h.refusals)
	h.logger.Info("erp_graphql: schema composed", zap.Strings("backends", schema.Backends()))
	return nil
}

// memoryStore is the lasting memory APQ store (erpapp.Keep): the queries
// clients registered survive a reload.
type memoryStore struct{ *apq.Memory }

// Destruct implements caddy.Destructor: the memory is the garbage collector's.
func (*memoryStore) Destruct() error { return nil }

// Validate checks the configuration.
func (h *Handler) Validate() error {
	switch {
	case h.APQCache < 0:
		return errors.New("erp_graphql: apq_cache must be positive")
	case h.Timeout < 0:
		return errors.New("erp_graphql: timeout must be positive")
	case h.MaxParallel < 0 || h.MaxParallel > 256:
		return errors.New("erp_graphql: max_parallel is 1 to 256")
	case h.MaxResponse < 0:
		return errors.New("erp_graphql: max_response must be positive")
	}
	return nil
}

// Cleanup closes the config's idle backend connections.
func (h *Handler) Cleanup() error {
	if h.transport != nil {
		h.transport.CloseIdleConnections()
	}
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	caddyhttp.SetVar(r.Context(), contract.VarEnveloped, true) // the answer is complete: erp_envelope leaves it
	a := h.begin(w, r)
	id := assertion.IdentityOf(r)
	if id.User == "" || id.Company == "" {
		h.refuse(a, refuse(http.StatusUnauthorized, contract.CodeUnauthenticated, "authentication required"))
		return nil
	}
	var overridePlan string
	if o := h.app.QuotaOverrideFor(id.Company); o != nil {
		overridePlan = o.Plan
	}
	p := h.plans.forRequest(overridePlan, id.Plan)
	req, get, ref := decodeRequest(w, r, p.maxBody)
	if ref != nil {
		h.refuse(a, ref)
		return nil
	}
	register, ref := h.pq.resolve(r.Context(), req, p.persistedOnly)
	if ref != nil {
		h.refuse(a, ref)
		return nil
	}
	if req.Query == "" {
		h.refuse(a, fieldRefusal("query", "query is required"))
		return nil
	}
	prep, errs := h.schema.Prepare(req, p.limits)
	if len(errs) > 0 {
		outcomeRefused.Inc()
		h.write(a, http.StatusBadRequest, nil, errs, -1)
		return nil
	}
	if get && prep.Kind() != "query" {
		ref := refuse(http.StatusMethodNotAllowed, contract.CodeBadRequest, "a "+prep.Kind()+" is sent with POST")
		ref.header = http.Header{"Allow": {"POST"}}
		h.refuse(a, ref)
		return nil
	}
	if register != "" {
		// A failed registration costs the client a resend of the query
		// next time, nothing more: logged (sampled: clients choose what
		// they register) and the operation runs.
		if err := h.pq.store.Put(r.Context(), register, req.Query); err != nil {
			if ce := h.refusals.Check(r.Context(), zap.WarnLevel, "erp_graphql: registering a persisted query failed", "apq_put"); ce != nil {
				ce.Write(zap.Error(err), zap.String("request_id", a.requestID))
			}
		}
	}
	cost := prep.Cost()
	if q := h.app.Quota(); q != nil {
		if ce := q.Charge(w, r, int64(max(cost, 1))); ce != nil {
			ref := fromContract(ce)
			a.cost = cost
			h.refuse(a, ref)
			return nil
		}
	}
	metricCost.Observe(float64(cost))
	f := &fetcher{h: h, r: r, id: id, requestID: a.requestID, trace: traceHeaders(r)}
	resp := h.schema.Execute(r.Context(), prep, f, authorizer(id.Scope))
	switch data := resp.Data; {
	case len(resp.Errors) == 0:
		outcomeOK.Inc()
	case len(data) == 0 || string(data) == "null":
		outcomeError.Inc()
	default:
		outcomePartial.Inc()
	}
	a.cost = cost
	a.calls = resp.Calls
	data := resp.Data
	if len(data) == 0 {
		data = []byte("null") // execution started: data is present (null)
	}
	h.write(a, http.StatusOK, data, resp.Errors, cost)
	return nil
}

// authorizer checks each backend a field reads or writes against the
// caller's scope: `{backend}:read`, or `{backend}:write` for mutations.
func authorizer(scope string) graphql.Authorizer {
	return func(backend string, write bool) *graphql.Error {
		action := ":read"
		if write {
			action = ":write"
		}
		backend = strings.ToLower(backend) // as erp_authz derives it
		if assertion.HasScopeParts(scope, backend, action) {
			return nil
		}
		return &graphql.Error{Code: contract.CodeForbidden, Message: "missing permission " + backend + action,
			Context: map[string]any{"required": backend + action}}
	}
}

// answer is what one response needs besides its body.
type answer struct {
	w           http.ResponseWriter
	contentType string
	requestID   string
	started     time.Time
	cost        int
	calls       int
}

// begin settles the request id and the answer's media type.
func (h *Handler) begin(w http.ResponseWriter, r *http.Request) *answer {
	id, _ := caddyhttp.GetVar(r.Context(), contract.VarRequestID).(string)
	if id == "" {
		id = env.RequestID(r.Header.Get(contract.HeaderRequestIDKey))
	}
	return &answer{w: w, contentType: responseType(r.Header["Accept"]), requestID: id, started: h.now(), cost: -1}
}

// refuse answers a refusal before execution.
func (h *Handler) refuse(a *answer, ref *refusal) {
	if ref.status >= 500 {
		outcomeError.Inc()
	} else {
		outcomeRefused.Inc()
	}
	for k, vs := range ref.header {
		for _, v := range vs {
			a.w.Header().Add(k, v)
		}
	}
	h.write(a, ref.status, nil, []*graphql.Error{ref.err}, a.cost)
}

// write writes the GraphQL response.
func (h *Handler) write(a *answer, status int, data []byte, errs []*graphql.Error, cost int) {
	meta := make([]byte, 0, 128)
	meta = append(meta, `{"request_id":`...)
	meta = env.AppendString(meta, a.requestID)
	meta = append(meta, `,"timestamp":"`...)
	meta = a.started.UTC().AppendFormat(meta, "2006-01-02T15:04:05.000Z07:00")
	meta = append(meta, '"')
	if cost >= 0 {
		meta = append(meta, `,"cost":`...)
		meta = strconv.AppendInt(meta, int64(cost), 10)
	}
	meta = append(meta, `,"calls":`...)
	meta = strconv.AppendInt(meta, int64(a.calls), 10)
	meta = append(meta, '}')
	body := graphql.AppendResponse(make([]byte, 0, len(data)+256), data, errs, meta)
	hdr := a.w.Header()
	hdr.Set("Content-Type", a.contentType)
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	hdr.Set("Cache-Control", "no-store")
	hdr.Set(contract.HeaderRequestIDKey, a.requestID)
	hdr.Add("Vary", "Accept")
	a.w.WriteHeader(status)
	_, _ = a.w.Write(body)
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
	_ graphql.Fetcher             = (*fetcher)(nil)
)
