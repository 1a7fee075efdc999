// Package webhooks is the erp_webhooks handler: the self-service webhook API
// of a company (`/api/v1/webhooks…`, DESIGN.md "Events"). It owns no state:
// endpoints, secrets, deliveries and the delivery engine are the erp app's
// webhook service (erpapp.App.Webhooks, internal/webhooks), audit records
// go to the in-process auth service's trail. Of caddymodules it imports
// only the erp app and caddyfileutil.
package webhooks

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/erpgate/erpgate/authsvc/store"
	"github.com/erpgate/erpgate/caddymodules/erpapp"
	"github.com/erpgate/erpgate/caddymodules/internal/caddyfileutil"
	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/depfail"
	env "github.com/erpgate/erpgate/internal/envelope"
	"github.com/erpgate/erpgate/internal/events"
	"github.com/erpgate/erpgate/internal/jsonbody"
	core "github.com/erpgate/erpgate/internal/webhooks"
)

func init() {
	caddy.RegisterModule(Handler{})
	httpcaddyfile.RegisterHandlerDirective("erp_webhooks", parseCaddyfile)
	httpcaddyfile.RegisterDirectiveOrder("erp_webhooks", httpcaddyfile.Before, "respond")
}

// Handler serves the calling company's webhook endpoints, in the envelope:
//
//	@webhooks path /api/v1/webhooks /api/v1/webhooks/*
//	handle @webhooks {
//		erp_auth {
//			authenticated_only
//		}
//		erp_webhooks
//	}
//
// placed before `handle /api/*`. The routes (under `prefix`):
//
//	POST   /                                   {url, events, description?} → 201 {id, secret, …endpoint}
//	GET    /                                   the company's endpoints
//	GET    /{id}                               one endpoint
//	PATCH  /{id}                               {url?, events?, description?, enabled?} → the endpoint
//	DELETE /{id}                               {id, deleted: true}
//	POST   /{id}/rotate-secret                 {id, secret}: the old secret signs too for 24 h
//	POST   /{id}/test                          sends erp.webhooks.ping now → the attempt
//	GET    /{id}/deliveries?limit=&cursor=     {deliveries: […newest first], next_cursor?}
//	POST   /{id}/deliveries/{delivery}/retry   sends that delivery's event again now → the attempt
//
// GET needs the scope `webhooks:read`, every other method `webhooks:write`
// (owners and admins hold both), else 403 FORBIDDEN. An endpoint's
// patterns must name only events the caller may read (events.ReadScope:
// `erp.ledger.*` needs `ledger:read`, `erp.auth.*` `webhooks:read`, `*`
// all of them), else 403 FORBIDDEN with field `events`: a webhook carries
// nothing its creator could not read. The secret
// (`whsec_…`) is in the answers of POST / and rotate-secret only: never in
// a read, a log line or an audit record. An id that is malformed or names
// another company's endpoint is 404 NOT_FOUND, as one that does not exist.
// Bodies are strict JSON (internal/jsonbody: unknown members are 400 with
// the member in `field`), at most 16 KiB; invalid values are 400
// VALIDATION_FAILED with `field` (`url`, `events`, `description`, `limit`,
// `cursor`). Creates, changes, deletes and rotations are recorded in the
// auth service's audit trail (`webhook.created`, `webhook.updated`,
// `webhook.deleted`, `webhook.secret_rotated`) with the endpoint id and its
// URL's host, never the URL's path, query or credentials.
type Handler struct {
	// Company is the placeholder naming the caller's company.
	// Default: `{http.auth.user.company_id}`.
	Company string `json:"company,omitempty"`
	// Prefix is the path the routes are under. Default: `/api/v1/webhooks`.
	Prefix string `json:"prefix,omitempty"`

	app    *erpapp.App
	logger *zap.Logger
	// service is the webhook service (tests replace it).
	service func() (Service, error)
	now     func() time.Time
}

// Service is what the handler needs of internal/webhooks' service.
type Service interface {
	Create(ctx context.Context, company string, in core.EndpointInput) (core.Endpoint, string, error)
	List(ctx context.Context, company string) ([]core.Endpoint, error)
	Get(ctx context.Context, company, id string) (core.Endpoint, error)
	Update(ctx context.Context, company, id string, in core.EndpointInput) (core.Endpoint, error)
	Delete(ctx context.Context, company, id string) error
	RotateSecret(ctx context.Context, company, id string) (string, error)
	Test(ctx context.Context, company, id string) (core.Delivery, error)
	Deliveries(ctx context.Context, company, id string, limit int, before string) ([]core.Delivery, error)
	Retry(ctx context.Context, company, id, deliveryID string) (core.Delivery, error)
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.erp_webhooks",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision sets defaults.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	app, err := erpapp.Get(ctx)
	if err != nil {
		return err
	}
	h.app = app
	if h.Company == "" {
		h.Company = "{http.auth.user.company_id}"
	}
	if h.Prefix == "" {
		h.Prefix = "/api/v1/webhooks"
	}
	if h.service == nil {
		h.service = func() (Service, error) { return app.Webhooks() }
	}
	if h.now == nil {
		h.now = time.Now
	}
	return nil
}

// Validate checks the configuration.
func (h *Handler) Validate() error {
	if !strings.HasPrefix(h.Prefix, "/") || strings.HasSuffix(h.Prefix, "/") {
		return errors.New("erp_webhooks: prefix must start with / and not end with one")
	}
	return nil
}

// Bounds of the API's input.
const (
	maxBody           = 16 << 10
	defaultDeliveries = 20
	maxDeliveries     = 100
)

// op is one of the API's operations.
type op int

const (
	opNone op = iota
	opList
	opCreate
	opGet
	opUpdate
	opDelete
	opRotate
	opTest
	opDeliveries
	opRetry
)

// route maps a path under the prefix (segments after it) and a method to an
// operation; allow is the Allow header when the method is wrong, "" when
// the path names nothing.
func route(method string, segs []string) (o op, allow string) {
	is := func(m string) bool { return method == m || (m == http.MethodGet && method == http.MethodHead) }
	switch {
	case len(segs) == 0:
		allow = "GET, HEAD, POST"
		if is(http.MethodGet) {
			return opList, allow
		}
		if is(http.MethodPost) {
			return opCreate, allow
		}
	case len(segs) == 1:
		allow = "GET, HEAD, PATCH, DELETE"
		switch {
		case is(http.MethodGet):
			return opGet, allow
		case is(http.MethodPatch):
			return opUpdate, allow
		case is(http.MethodDelete):
			return opDelete, allow
		}
	case len(segs) == 2 && segs[1] == "rotate-secret":
		allow = "POST"
		if is(http.MethodPost) {
			return opRotate, allow
		}
	case len(segs) == 2 && segs[1] == "test":
		allow = "POST"
		if is(http.MethodPost) {
			return opTest, allow
		}
	case len(segs) == 2 && segs[1] == "deliveries":
		allow = "GET, HEAD"
		if is(http.MethodGet) {
			return opDeliveries, allow
		}
	case len(segs) == 4 && segs[1] == "deliveries" && segs[3] == "retry":
		allow = "POST"
		if is(http.MethodPost) {
			return opRetry, allow
		}
	}
	return opNone, allow
}

// validID reports whether s can be an id with the given prefix ("wh_",
// "whd_"): the prefix, then 1 to 64 of [A-Za-z0-9_-]. Anything else names
// no endpoint or delivery and never reaches the store.
func validID(s, prefix string) bool {
	rest, ok := strings.CutPrefix(s, prefix)
	if !ok || len(rest) == 0 || len(rest) > 64 {
		return false
	}
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// hasScope reports whether the space-separated scope holds want.
func hasScope(scope, want string) bool {
	for scope != "" {
		var sc string
		sc, scope, _ = strings.Cut(scope, " ")
		if sc == want {
			return true
		}
	}
	return false
}

// patternScopes are the scopes a caller must hold for an endpoint of
// theirs to receive the events patterns match: what events.ReadScope asks
// of each type (a business event `<backend>:read`, the rest
// `webhooks:read`), so that a webhook never carries what its creator could
// not read. A pattern open in its first two tokens (`*`, `erp.*`,
// `erp.*.created`) needs all of them: `webhooks:read` and every registered
// backend's `:read`. Invalid patterns add nothing (the service refuses them).
func patternScopes(patterns, backends []string) []string {
	var out []string
	add := func(sc string) {
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	for _, p := range patterns {
		if !events.ValidPattern(p) {
			continue
		}
		first, rest, _ := strings.Cut(p, ".")
		second, _, _ := strings.Cut(rest, ".")
		if first == "*" || (first == "erp" && (second == "*" || second == "")) {
			add(events.ScopeWebhooksRead)
			for _, b := range backends {
				add(b + ":read")
			}
			continue
		}
		add(events.ReadScope(first + "." + second + ".x"))
	}
	return out
}

func refuse(status int, code, msg string) error {
	return caddyhttp.Error(status, contract.NewError(status, code, msg))
}

func invalid(field, msg string) error {
	e := contract.NewError(http.StatusBadRequest, contract.CodeValidationFailed, msg)
	e.Field = field
	return caddyhttp.Error(http.StatusBadRequest, e)
}

var errNotFound = refuse(http.StatusNotFound, contract.CodeNotFound, "no such webhook")

// request is one call: who, for which company, on what.
type request struct {
	w       http.ResponseWriter
	r       *http.Request
	company string
	user    string
	scope   string // the caller's, space-separated
	id      string // endpoint id ("" for the collection)
	segs    []string
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if !ok {
		return refuse(http.StatusInternalServerError, contract.CodeInternal, "internal error")
	}
	company := repl.ReplaceAll(h.Company, "")
	if company == "" {
		return refuse(http.StatusUnauthorized, contract.CodeUnauthenticated, "authentication required")
	}
	rest, ok := strings.CutPrefix(r.URL.Path, h.Prefix)
	if !ok || (rest != "" && rest[0] != '/') || rest == "/" {
		return errNotFound
	}
	var segs []string
	if rest != "" {
		segs = strings.Split(rest[1:], "/")
	}
	o, allow := route(r.Method, segs)
	if o == opNone {
		if allow == "" {
			return errNotFound
		}
		w.Header().Set("Allow", allow)
		return refuse(http.StatusMethodNotAllowed, contract.CodeBadRequest, "method not allowed")
	}
	need := events.ScopeWebhooksWrite
	if o == opList || o == opGet || o == opDeliveries {
		need = events.ScopeWebhooksRead
	}
	scope, _ := caddyhttp.GetVar(r.Context(), contract.VarScope).(string)
	if !hasScope(scope, need) {
		return refuse(http.StatusForbidden, contract.CodeForbidden, "this needs the scope "+need)
	}
	c := &request{w: w, r: r, company: company, scope: scope, segs: segs}
	c.user, _ = repl.GetString("http.auth.user.id")
	if len(segs) > 0 {
		if c.id = segs[0]; !validID(c.id, "wh_") {
			return errNotFound
		}
	}
	svc, err := h.service()
	if err != nil {
		h.logger.Warn("erp_webhooks: the webhook service is not available", zap.Error(err))
		return caddyhttp.Error(http.StatusServiceUnavailable, depfail.Error("webhooks are temporarily unavailable"))
	}
	status, data, err := h.serve(c, o, svc)
	if err != nil {
		return h.fail(c, err)
	}
	caddyhttp.SetVar(r.Context(), contract.VarEnveloped, true)
	id, _ := caddyhttp.GetVar(r.Context(), contract.VarRequestID).(string)
	if id == "" {
		id = env.RequestID(r.Header.Get(contract.HeaderRequestID))
	}
	w.Header().Set(contract.HeaderRequestID, id)
	// a secret may be in the answer; no answer here is for a cache
	w.Header().Set("Cache-Control", "no-store")
	env.WriteSuccess(w, status, data, &env.Meta{Timestamp: h.now(), RequestID: id, CompanyID: company, UserID: c.user}, nil)
	return nil
}

// created is the answer to a create: the endpoint and its secret, once.
type created struct {
	core.Endpoint
	Secret string `json:"secret"`
}

// createInput is POST's body: enabled is not one of its members (a new
// endpoint is enabled).
type createInput struct {
	URL         *string  `json:"url"`
	Events      []string `json:"events"`
	Description *string  `json:"description"`
}

// deliveriesPage is a page of attempts, newest first; next_cursor, on a
// full page, asks for the next (older) page, which may be empty.
type deliveriesPage struct {
	Deliveries []core.Delivery `json:"deliveries"`
	NextCursor string          `json:"next_cursor,omitempty"`
}

func (h *Handler) serve(c *request, o op, svc Service) (int, any, error) {
	ctx := c.r.Context()
	switch o {
	case opList:
		list, err := svc.List(ctx, c.company)
		if list == nil {
			list = []core.Endpoint{}
		}
		return http.StatusOK, list, err
	case opCreate:
		var in createInput
		if err := jsonbody.Decode(c.w, c.r, &in, maxBody, false); err != nil {
			return 0, nil, err
		}
		if in.URL == nil {
			return 0, nil, invalid("url", "url is required")
		}
		if in.Events == nil {
			return 0, nil, invalid("events", `events is required, e.g. ["erp.invoices.*"]`)
		}
		if err := h.mayRead(c, in.Events); err != nil {
			return 0, nil, err
		}
		ep, secret, err := svc.Create(ctx, c.company, core.EndpointInput{URL: in.URL, Events: in.Events, Description: in.Description})
		if err != nil {
			return 0, nil, err
		}
		h.audit(c, "webhook.created", ep)
		c.w.Header().Set("Location", h.Prefix+"/"+ep.ID)
		return http.StatusCreated, created{Endpoint: ep, Secret: secret}, nil
	case opGet:
		ep, err := svc.Get(ctx, c.company, c.id)
		return http.StatusOK, ep, err
	case opUpdate:
		var in core.EndpointInput
		if err := jsonbody.Decode(c.w, c.r, &in, maxBody, false); err != nil {
			return 0, nil, err
		}
		if in.URL == nil && in.Events == nil && in.Description == nil && in.Enabled == nil {
			return 0, nil, refuse(http.StatusBadRequest, contract.CodeBadRequest, "nothing to change: send url, events, description or enabled")
		}
		if err := h.mayRead(c, in.Events); err != nil {
			return 0, nil, err
		}
		ep, err := svc.Update(ctx, c.company, c.id, in)
		if err != nil {
			return 0, nil, err
		}
		h.audit(c, "webhook.updated", ep)
		return http.StatusOK, ep, nil
	case opDelete:
		ep, err := svc.Get(ctx, c.company, c.id)
		if err != nil {
			return 0, nil, err
		}
		if err := svc.Delete(ctx, c.company, c.id); err != nil {
			return 0, nil, err
		}
		h.audit(c, "webhook.deleted", ep)
		return http.StatusOK, map[string]any{"id": c.id, "deleted": true}, nil
	case opRotate:
		secret, err := svc.RotateSecret(ctx, c.company, c.id)
		if err != nil {
			return 0, nil, err
		}
		h.audit(c, "webhook.secret_rotated", core.Endpoint{ID: c.id})
		return http.StatusOK, map[string]any{"id": c.id, "secret": secret}, nil
	case opTest:
		d, err := svc.Test(ctx, c.company, c.id)
		return http.StatusOK, d, err
	case opDeliveries:
		limit, cursor, err := pageQuery(c.r.URL.Query())
		if err != nil {
			return 0, nil, err
		}
		list, err := svc.Deliveries(ctx, c.company, c.id, limit, cursor)
		if err != nil {
			return 0, nil, err
		}
		page := deliveriesPage{Deliveries: list}
		// a full page may have a next one (which may be empty)
		if len(list) >= limit {
			page.Deliveries = list[:limit]
			page.NextCursor = list[limit-1].ID
		}
		if page.Deliveries == nil {
			page.Deliveries = []core.Delivery{}
		}
		return http.StatusOK, page, nil
	case opRetry:
		if !validID(c.segs[2], "whd_") {
			return 0, nil, refuse(http.StatusNotFound, contract.CodeNotFound, "no such delivery")
		}
		d, err := svc.Retry(ctx, c.company, c.id, c.segs[2])
		return http.StatusOK, d, err
	}
	return 0, nil, errNotFound
}

// mayRead refuses patterns whose events the caller's scope can't read
// (403 FORBIDDEN, field events): an API key with webhooks:write and
// invoices:read can subscribe to invoices, not to the ledger.
func (h *Handler) mayRead(c *request, patterns []string) error {
	var backends []string
	if h.app != nil {
		backends = h.app.BackendNames()
	}
	for _, sc := range patternScopes(patterns, backends) {
		if !hasScope(c.scope, sc) {
			e := contract.NewError(http.StatusForbidden, contract.CodeForbidden, "these events need the scope "+sc+", which you don't hold")
			e.Field = "events"
			return caddyhttp.Error(http.StatusForbidden, e)
		}
	}
	return nil
}

// pageQuery reads ?limit= (1…100, default 20) and ?cursor= (a delivery id
// from a previous page's next_cursor).
func pageQuery(q url.Values) (int, string, error) {
	limit := defaultDeliveries
	if v, ok := q["limit"]; ok {
		n, err := strconv.Atoi(v[0])
		if err != nil || len(v) > 1 || n < 1 || n > maxDeliveries {
			return 0, "", invalid("limit", "limit is a number from 1 to "+strconv.Itoa(maxDeliveries))
		}
		limit = n
	}
	cursor := ""
	if v, ok := q["cursor"]; ok {
		if len(v) > 1 || !validID(v[0], "whd_") {
			return 0, "", invalid("cursor", "cursor is the next_cursor of a previous page")
		}
		cursor = v[0]
	}
	return limit, cursor, nil
}

// fail maps the service's errors to the envelope: not found (any company's)
// 404, invalid input 400 with its field, too many endpoints or a retry of an
// event the stream no longer keeps 409, the event engine not started or a
// dependency down 503, the rest 500 (logged, no detail to the caller).
func (h *Handler) fail(c *request, err error) error {
	var herr caddyhttp.HandlerError
	if errors.As(err, &herr) {
		return err
	}
	if e, ok := contract.AsError(err); ok {
		return caddyhttp.Error(e.Status, e)
	}
	var verr *core.ValidationError
	switch {
	case errors.Is(err, core.ErrNotFound):
		if len(c.segs) == 4 {
			return refuse(http.StatusNotFound, contract.CodeNotFound, "no such delivery")
		}
		return errNotFound
	case errors.As(err, &verr):
		return invalid(verr.Field, verr.Message)
	case errors.Is(err, core.ErrLimit):
		return refuse(http.StatusConflict, contract.CodeConflict, "too many webhook endpoints for this company")
	case errors.Is(err, core.ErrEventGone):
		return refuse(http.StatusConflict, contract.CodeConflict, "the event of this delivery is no longer kept")
	case errors.Is(err, core.ErrNotReady):
		return caddyhttp.Error(http.StatusServiceUnavailable, depfail.Error("webhooks are temporarily unavailable"))
	}
	e := depfail.Classify(err, nil)
	lvl := zap.ErrorLevel
	if e.Status == http.StatusServiceUnavailable {
		lvl = zap.WarnLevel
	}
	if ce := h.logger.Check(lvl, "erp_webhooks: request failed"); ce != nil {
		ce.Write(zap.String("company_id", c.company), zap.String("path", c.r.URL.Path), zap.Error(err))
	}
	return caddyhttp.Error(e.Status, e)
}

// audit records a change in the auth service's trail: who, which company,
// which endpoint and its URL's host. A trail that can't be written is
// logged: the change itself is done.
func (h *Handler) audit(c *request, typ string, ep core.Endpoint) {
	svc, err := h.app.AuthService()
	if err != nil {
		h.logger.Warn("erp_webhooks: no auth service to audit with", zap.String("type", typ), zap.Error(err))
		return
	}
	ip, _ := caddyhttp.GetVar(c.r.Context(), caddyhttp.ClientIPVarKey).(string)
	rid, _ := caddyhttp.GetVar(c.r.Context(), contract.VarRequestID).(string)
	details := map[string]string{"endpoint_id": ep.ID}
	if u, err := url.Parse(ep.URL); err == nil && u.Host != "" {
		details["url_host"] = u.Hostname()
	}
	if len(ep.Events) > 0 {
		details["events"] = strings.Join(ep.Events, " ")
	}
	ev := store.Event{Type: typ, ActorID: c.user, CompanyID: c.company, SubjectID: ep.ID,
		IP: ip, UserAgent: c.r.UserAgent(), RequestID: rid, Details: details}
	if err := svc.Record(c.r.Context(), ev); err != nil {
		h.logger.Warn("erp_webhooks: audit record not written", zap.String("type", typ), zap.String("endpoint_id", ep.ID), zap.Error(err))
	}
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	m := new(Handler)
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return m, err
}

// UnmarshalCaddyfile parses:
//
//	erp_webhooks [{
//		company <placeholder>
//		prefix  <path>
//	}]
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return caddyfileutil.Settings(d, func(name, value string) error {
		switch name {
		case "company":
			h.Company = value
		case "prefix":
			h.Prefix = value
		default:
			return d.Errf("unknown subdirective %q", name)
		}
		return nil
	})
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
	_ caddyfile.Unmarshaler       = (*Handler)(nil)
)
