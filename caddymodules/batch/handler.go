// Package batch is the erp_batch handler: `POST /api/v1/batch` runs up to a
// plan's number of sub-requests, each through the whole edge (envelope, IP
// block, version, auth, scopes, quota, dialect, backend) by re-entering the
// Caddy server that received the batch, and answers their statuses and
// envelopes in request order. The batch's checks and its runner are the
// Caddy-free internal/batch; this package builds the sub-requests and
// records their answers. Of caddymodules it imports only the erp app,
// caddyfileutil and assertion (the caller's verified identity and plan).
package batch

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/erpgate/erpgate/caddymodules/internal/keepcred"
	"io"
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
	core "github.com/erpgate/erpgate/internal/batch"
	env "github.com/erpgate/erpgate/internal/envelope"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Plan is one plan's batch limit.
type Plan struct {
	// MaxItems is the most sub-requests one batch may carry.
	MaxItems int `json:"max_items,omitempty"`
}

// builtinPlans are the plans a config need not list.
var builtinPlans = map[string]int{"free": 10, "standard": 50, "premium": 100, "enterprise": 200}

// Defaults and bounds.
const (
	defaultParallel    = 4
	maxParallelLimit   = 64
	defaultMaxBody     = 1 << 20 // 1 MiB of batch body
	defaultMaxResponse = 1 << 20 // 1 MiB per sub-answer
	maxItemsLimit      = 1000
)

// refusedNames are the names (first segment after /api/ or /api/{version}/)
// a sub-request may not target: the batch itself (no recursion), the auth
// service's routes (auth, admin, its documents) and the event streams
// (a stream never ends, so it cannot be recorded into one answer).
var refusedNames = []string{"batch", "auth", "admin", "openapi.json", "docs", "events"}

// Handler serves `POST /api/v1/batch`:
//
//	handle /api/v1/batch {
//		erp_batch_credentials
//		erp_auth {
//			authenticated_only
//		}
//		erp_batch
//	}
//
// placed before `handle /api/*`. The body is
// `{"requests": [{"id", "method", "path", "headers"?, "body"?, "dependsOn"?: [ids]}]}`;
// the answer's data is `[{"id", "status", "body"}]` in request order, body
// being the sub-answer's JSON envelope. Each sub-request carries the
// caller's credential (Authorization, X-API-Key, Cookie with the CSRF
// header and Origin) and goes through the whole server again, so the
// permission checks and the quota (one unit per item) are those of a
// direct call. Refused before anything runs: a body that is not such a
// JSON object (400), more items than the plan allows (413), no items,
// missing or duplicate ids, unknown ids or cycles in dependsOn (400). An
// item with a bad method, path or header answers its own 400; an item
// whose dependency did not answer 2xx answers 424 without running.
type Handler struct {
	// Plans are the batch limits by plan name; free, standard, premium
	// and enterprise exist with 10, 50, 100 and 200 items unless set.
	Plans map[string]*Plan `json:"plans,omitempty"`
	// DefaultPlan is the plan of a caller whose credential names none (or
	// names no plan here). Default: free.
	DefaultPlan string `json:"default_plan,omitempty"`
	// MaxParallel is how many items of one batch run at once. Default 4.
	MaxParallel int `json:"max_parallel,omitempty"`
	// MaxBody bounds the batch's body in bytes. Default 1 MiB.
	MaxBody int64 `json:"max_body,omitempty"`
	// MaxResponse bounds one sub-answer's body in bytes; an item whose
	// answer is longer answers 413 instead. Default 1 MiB.
	MaxResponse int64 `json:"max_response,omitempty"`

	app      *erpapp.App
	logger   *zap.Logger
	maxItems map[string]int
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.erp_batch",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision resolves the plans and sets defaults.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	app, err := erpapp.Get(ctx)
	if err != nil {
		return err
	}
	h.app = app
	return h.setup()
}

// setup is Provision without the erp app: defaults and the plans' limits.
func (h *Handler) setup() error {
	if h.DefaultPlan == "" {
		h.DefaultPlan = "free"
	}
	if h.MaxParallel == 0 {
		h.MaxParallel = defaultParallel
	}
	if h.MaxBody == 0 {
		h.MaxBody = defaultMaxBody
	}
	if h.MaxResponse == 0 {
		h.MaxResponse = defaultMaxResponse
	}
	if err := h.Validate(); err != nil {
		return err
	}
	h.maxItems = make(map[string]int, len(builtinPlans)+len(h.Plans))
	for name, n := range builtinPlans {
		h.maxItems[name] = n
	}
	for name, p := range h.Plans {
		if p != nil && p.MaxItems > 0 {
			h.maxItems[name] = p.MaxItems
		} else if _, ok := h.maxItems[name]; !ok {
			h.maxItems[name] = builtinPlans["free"]
		}
	}
	if _, ok := h.maxItems[h.DefaultPlan]; !ok {
		return fmt.Errorf("erp_batch: default_plan %q is not a plan", h.DefaultPlan)
	}
	return nil
}

// Validate checks the configuration.
func (h *Handler) Validate() error {
	for name, p := range h.Plans {
		if name == "" {
			return errors.New("erp_batch: a plan needs a name")
		}
		if p != nil && (p.MaxItems < 0 || p.MaxItems > maxItemsLimit) {
			return fmt.Errorf("erp_batch: plan %s: max_items is 1 to %d", name, maxItemsLimit)
		}
	}
	if h.MaxParallel < 0 || h.MaxParallel > maxParallelLimit {
		return fmt.Errorf("erp_batch: max_parallel is 1 to %d", maxParallelLimit)
	}
	if h.MaxBody < 0 || h.MaxResponse < 0 {
		return errors.New("erp_batch: sizes are positive")
	}
	return nil
}

// planFor is the plan name and item limit of a caller: the company's
// quota override plan when set, else the credential's, else the default.
func (h *Handler) planFor(company, credentialPlan string) (string, int) {
	name := credentialPlan
	if h.app != nil {
		if o := h.app.QuotaOverrideFor(company); o != nil && o.Plan != "" {
			name = o.Plan
		}
	}
	if n, ok := h.maxItems[name]; ok {
		return name, n
	}
	return h.DefaultPlan, h.maxItems[h.DefaultPlan]
}

func fail(status int, code, field, msg string) error {
	e := contract.NewError(status, code, msg)
	e.Field = field
	return caddyhttp.Error(status, e)
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		return fail(http.StatusMethodNotAllowed, contract.CodeBadRequest, "", "a batch is sent with POST")
	}
	if r.Context().Value(inBatch) != nil {
		return fail(http.StatusBadRequest, contract.CodeBadRequest, "path", "a batch cannot contain a batch")
	}
	id := assertion.IdentityOf(r)
	if id.User == "" || id.Company == "" {
		return fail(http.StatusUnauthorized, contract.CodeUnauthenticated, "", "authentication required")
	}
	srv, ok := r.Context().Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server)
	if !ok {
		return fail(http.StatusInternalServerError, contract.CodeInternal, "", "internal error")
	}
	creds := keepcred.Kept(r)
	if creds == nil {
		h.logger.Error("erp_batch: erp_batch_credentials must come before erp_auth in the batch's route")
		return fail(http.StatusInternalServerError, contract.CodeInternal, "", "internal error")
	}
	planName, limit := h.planFor(id.Company, id.Plan)
	req, err := h.decode(w, r)
	if err != nil {
		return err
	}
	if len(req.Requests) > limit {
		e := contract.NewError(http.StatusRequestEntityTooLarge, contract.CodePayloadTooLarge,
			fmt.Sprintf("a batch of plan %s holds at most %d requests, this one has %d", planName, limit, len(req.Requests)))
		e.Field = "requests"
		e.Context = map[string]any{"plan": planName, "max_items": limit, "items": len(req.Requests)}
		return caddyhttp.Error(http.StatusRequestEntityTooLarge, e)
	}
	if p := core.Check(req.Requests); p != nil {
		return fail(http.StatusBadRequest, contract.CodeValidationFailed, p.Field, p.Message)
	}

	requestID, _ := caddyhttp.GetVar(r.Context(), contract.VarRequestID).(string)
	if requestID == "" {
		requestID = env.RequestID(r.Header.Get(contract.HeaderRequestIDKey))
	}
	meta := env.Meta{RequestID: requestID, CompanyID: id.Company, UserID: id.User}
	sub := &dispatcher{h: h, srv: srv, parent: r, meta: &meta, index: make(map[string]int, len(req.Requests)), creds: creds}
	for i := range req.Requests {
		sub.index[req.Requests[i].ID] = i
	}
	results := core.Run(r.Context(), req.Requests, h.MaxParallel, sub.do, sub.failed)

	caddyhttp.SetVar(r.Context(), contract.VarEnveloped, true)
	w.Header().Set(contract.HeaderRequestIDKey, requestID)
	w.Header().Set("Cache-Control", "no-store")
	meta.Timestamp = time.Now()
	env.WriteSuccess(w, http.StatusOK, results, &meta, nil)
	return nil
}

// decode reads the batch's body (at most MaxBody bytes).
func (h *Handler) decode(w http.ResponseWriter, r *http.Request) (*core.Request, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(strings.ToLower(strings.TrimSpace(ct)), "application/json") {
		return nil, fail(http.StatusUnsupportedMediaType, contract.CodeBadRequest, "", "a batch is application/json")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, fail(http.StatusRequestEntityTooLarge, contract.CodePayloadTooLarge, "", "a batch's body is at most "+strconv.FormatInt(h.MaxBody, 10)+" bytes")
		}
		return nil, fail(http.StatusBadRequest, contract.CodeBadRequest, "", "cannot read the body")
	}
	var req core.Request
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || dec.More() {
		return nil, fail(http.StatusBadRequest, contract.CodeBadRequest, "", `the body must be {"requests": [{"id", "method", "path", "headers"?, "body"?, "dependsOn"?}]}`)
	}
	if req.Requests == nil {
		return nil, fail(http.StatusBadRequest, contract.CodeValidationFailed, "requests", "requests is required")
	}
	return &req, nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)

// contextKey is unexported so no other package can mark a request.
type contextKey struct{}

// inBatch marks a sub-request's context: a batch inside a batch is refused
// even if a route let one through.
var inBatch = contextKey{}
