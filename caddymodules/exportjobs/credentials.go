package exportjobs

import (
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/erpgate/erpgate/caddymodules/internal/caddyfileutil"
	"github.com/erpgate/erpgate/caddymodules/internal/keepcred"
)

func init() {
	caddy.RegisterModule(Credentials{})
	httpcaddyfile.RegisterHandlerDirective("erp_export_credentials", parseCredentials)
	// before erp_auth (itself after basic_auth): its providers remove the
	// credential headers once verified
	httpcaddyfile.RegisterDirectiveOrder("erp_export_credentials", httpcaddyfile.Before, "basic_auth")
}

// Credentials keeps the request's credential headers, before erp_auth
// verifies and removes them, for erp_export_jobs: a job's export re-enters
// the server with them, so it passes authentication, the {backend}:read
// scope and the plan's quota exactly as GET …/export does. The copy lives
// in the request's context (and, for a running job, in the process's
// memory), never in a variable, placeholder or store.
//
//	handle @exports {
//		erp_export_credentials
//		erp_auth @exports_api {
//			authenticated_only
//		}
//		erp_export_jobs
//	}
type Credentials struct{}

// CaddyModule returns the Caddy module information.
func (Credentials) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.erp_export_credentials",
		New: func() caddy.Module { return new(Credentials) },
	}
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (Credentials) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	return next.ServeHTTP(w, keepcred.Keep(r))
}

func parseCredentials(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	if err := caddyfileutil.NoArgs(h.Dispenser); err != nil {
		return nil, err
	}
	if h.NextBlock(0) {
		return nil, h.Errf("erp_export_credentials takes no block")
	}
	return new(Credentials), nil
}

// Interface guards
var _ caddyhttp.MiddlewareHandler = (*Credentials)(nil)
