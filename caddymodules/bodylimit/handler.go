// Package bodylimit is the erp_body_limit handler: the largest request body
// each plan may send to a backend. Bodies are never read here: a
// Content-Length over the limit is refused before the backend is called,
// and a body of unknown length (chunked) is counted as it streams to the
// backend and cut off when it crosses the limit, so uploads (multipart or
// any other type) stream through in constant memory and a backend never
// receives a complete over-limit body. Of caddymodules it imports only the
// erp app and caddymodules/internal/caddyfileutil.
package bodylimit

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"

	"github.com/erpgate/erpgate/caddymodules/erpapp"
	"github.com/erpgate/erpgate/contract"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler bounds request bodies per plan. It goes after erp_auth (it needs
// the plan) and before anything that reads the body (erp_idempotency,
// erp_merge, the proxy); the directive sorts itself there:
//
//	handle /api/* {
//		erp_version
//		erp_auth
//		erp_body_limit {
//			plan free     10MiB
//			plan standard 1GiB
//			default       10MiB
//		}
//		erp_quota { … }
//		reverse_proxy { dynamic erp }
//	}
//
// The plan is the company's quota-override plan (the erp app's
// quota_overrides) when set, else the credential's `{http.auth.user.plan}`;
// a plan not listed, or a request without one, gets Default. An over-limit
// body is 413 PAYLOAD_TOO_LARGE with context {limit, plan}: at once when
// Content-Length says so, or when a chunked body crosses the limit (the
// backend's half-sent request is abandoned). Caddy's `request_body
// max_size` can still cap every route of a site.
type Handler struct {
	// Plans maps a plan name to its largest body, in bytes.
	Plans map[string]int64 `json:"plans,omitempty"`
	// Default is the largest body of plans not listed. Default: 10485760
	// (10 MiB).
	Default int64 `json:"default,omitempty"`

	app *erpapp.App
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.erp_body_limit",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision sets the default.
func (h *Handler) Provision(ctx caddy.Context) error {
	app, err := erpapp.Get(ctx)
	if err != nil {
		return err
	}
	h.app = app
	if h.Default == 0 {
		h.Default = 10 << 20
	}
	return nil
}

// Validate checks the sizes.
func (h *Handler) Validate() error {
	if h.Default < 0 {
		return errors.New("erp_body_limit: default must be positive")
	}
	for name, n := range h.Plans {
		if n <= 0 {
			return errors.New("erp_body_limit: plan " + strconv.Quote(name) + ": the size must be positive")
		}
	}
	return nil
}

// limitFor is the plan a request runs under and its limit.
func (h *Handler) limitFor(r *http.Request) (string, int64) {
	repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	var plan string
	if repl != nil {
		plan, _ = repl.GetString("http.auth.user.plan")
		if h.app != nil {
			company, _ := repl.GetString("http.auth.user.company_id")
			if o := h.app.QuotaOverrideFor(company); o != nil && o.Plan != "" {
				plan = o.Plan
			}
		}
	}
	if n, ok := h.Plans[plan]; ok {
		return plan, n
	}
	return plan, h.Default
}

// tooLarge is the 413 answer.
func tooLarge(plan string, limit int64) error {
	msg := "the request body is larger than " + humanize.IBytes(uint64(limit))
	if plan != "" {
		msg += ", the limit of the " + plan + " plan"
	}
	e := contract.NewError(http.StatusRequestEntityTooLarge, contract.CodePayloadTooLarge, msg)
	e.Context = map[string]any{"limit": limit}
	if plan != "" {
		e.Context["plan"] = plan
	}
	return caddyhttp.Error(http.StatusRequestEntityTooLarge, e)
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return next.ServeHTTP(w, r)
	}
	plan, limit := h.limitFor(r)
	if r.ContentLength > limit {
		return tooLarge(plan, limit)
	}
	if r.ContentLength > 0 {
		// the server reads no more than Content-Length
		return next.ServeHTTP(w, r)
	}
	// http.MaxBytesReader under the count, on the server's own writer:
	// when the body crosses the limit it tells net/http, which then ends
	// the connection gracefully (half-close, a pause, close) so that a
	// client still sending reads the 413 instead of a reset. Through
	// Caddy's wrappers it could not tell it.
	lb := &limitedBody{body: http.MaxBytesReader(innermost(w), r.Body, limit), left: limit}
	r.Body = lb
	err := next.ServeHTTP(w, r)
	if lb.tripped {
		// Whatever the proxy made of the cut-off body (a 502), the cause is
		// this. The rest of the body is never read: erp_envelope's answer
		// ends the connection (a body left in the middle), and
		// MaxBytesReader has told net/http to end it gracefully.
		return tooLarge(plan, limit)
	}
	return err
}

// innermost is the writer under w's wrappers (each with Unwrap): the
// server's own.
func innermost(w http.ResponseWriter) http.ResponseWriter {
	for {
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return w
		}
		w = u.Unwrap()
	}
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
