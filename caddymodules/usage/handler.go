// Package usage is the erp_usage handler: `GET /api/v1/usage`, the calling
// company's current rate window, quota use and calls to deprecated versions.
// It owns no state: the limits are read through the erp app
// (erpapp.App.Quota), never by importing erp_quota's package, and the
// deprecated-version calls from the erp app's lasting counter
// (erpapp.Lasting.Deprecations). Of caddymodules it imports only the erp app
// and caddyfileutil.
package usage

import (
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/erpgate/erpgate/caddymodules/erpapp"
	"github.com/erpgate/erpgate/caddymodules/internal/caddyfileutil"
	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/depfail"
	"github.com/erpgate/erpgate/internal/deprecations"
	env "github.com/erpgate/erpgate/internal/envelope"
)

func init() {
	caddy.RegisterModule(Handler{})
	httpcaddyfile.RegisterHandlerDirective("erp_usage", parseCaddyfile)
	httpcaddyfile.RegisterDirectiveOrder("erp_usage", httpcaddyfile.Before, "respond")
}

// Handler answers the caller's company's usage, in the envelope:
//
//	handle /api/v1/usage {
//		erp_auth {
//			authenticated_only
//		}
//		erp_usage
//	}
//
// placed before `handle /api/*`. The data:
//
//	{"company_id": "globex", "plan": "free", "unlimited": false, "store": "redis",
//	 "rate":  {"policy": "free", "limit": 60, "window_seconds": 60, "used": 12, "remaining": 48, "reset": "…"},
//	 "client_rate": {…},              // when the plan has a per-user / per-API-key sub-limit
//	 "quota": {"policy": "free-month", "limit": 10000, "used": 123, "remaining": 9877,
//	           "period_start": "…", "period_end": "…"},
//	 "deprecated_calls": [{"backend": "invoices", "version": "v1", "calls": 3, …}]}
//
// The limits are those of the config's first erp_quota handler, read
// without counting (this call does not count against them). Only GET and
// HEAD are answered (else 405); a request without a verified company is
// 401; when the counters cannot be read (Redis down, policy not local) 503.
type Handler struct {
	// Company is the placeholder naming the caller's company.
	// Default: `{http.auth.user.company_id}`.
	Company string `json:"company,omitempty"`

	app    *erpapp.App
	logger *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.erp_usage",
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
	return nil
}

type report struct {
	CompanyID string `json:"company_id"`
	*erpapp.QuotaUsage
	DeprecatedCalls []deprecations.Usage `json:"deprecated_calls"`
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		return caddyhttp.Error(http.StatusMethodNotAllowed, contract.NewError(http.StatusMethodNotAllowed, contract.CodeBadRequest, "method not allowed"))
	}
	repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if !ok {
		return caddyhttp.Error(http.StatusInternalServerError, contract.NewError(http.StatusInternalServerError, contract.CodeInternal, "internal error"))
	}
	company := repl.ReplaceAll(h.Company, "")
	if company == "" {
		return caddyhttp.Error(http.StatusUnauthorized, contract.NewError(http.StatusUnauthorized, contract.CodeUnauthenticated, "authentication required"))
	}
	u := &erpapp.QuotaUsage{Unlimited: true, Store: "none"} // no erp_quota: no limits
	if q := h.app.Quota(); q != nil {
		var err error
		if u, err = q.Usage(r); err != nil {
			h.logger.Warn("erp_usage: cannot read the counters", zap.Error(err))
			return caddyhttp.Error(http.StatusServiceUnavailable, depfail.Error("usage is temporarily unavailable"))
		}
	}
	rep := report{CompanyID: company, QuotaUsage: u, DeprecatedCalls: h.app.Lasting().Deprecations().List(company)}
	caddyhttp.SetVar(r.Context(), contract.VarEnveloped, true)
	id, _ := caddyhttp.GetVar(r.Context(), contract.VarRequestID).(string)
	if id == "" {
		id = env.RequestID(r.Header.Get(contract.HeaderRequestID))
	}
	w.Header().Set(contract.HeaderRequestID, id)
	w.Header().Set("Cache-Control", "no-store")
	m := env.Meta{Timestamp: time.Now(), RequestID: id, CompanyID: company}
	m.UserID, _ = repl.GetString("http.auth.user.id")
	env.WriteSuccess(w, http.StatusOK, rep, &m, nil)
	return nil
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	m := new(Handler)
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return m, err
}

// UnmarshalCaddyfile parses:
//
//	erp_usage [{
//		company <placeholder>
//	}]
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	if err := caddyfileutil.NoArgs(d); err != nil {
		return err
	}
	return caddyfileutil.EachSubdirective(d, 0, nil, func(name string) error {
		switch name {
		case "company":
			args := d.RemainingArgs()
			if len(args) != 1 {
				return d.ArgErr()
			}
			h.Company = args[0]
		default:
			return d.Errf("unknown subdirective %q", name)
		}
		return nil
	})
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
	_ caddyfile.Unmarshaler       = (*Handler)(nil)
)
