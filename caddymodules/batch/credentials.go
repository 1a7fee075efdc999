package batch

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
	httpcaddyfile.RegisterHandlerDirective("erp_batch_credentials", parseCredentials)
	// before erp_auth (itself after basic_auth): its providers remove the
	// credential headers once verified
	httpcaddyfile.RegisterDirectiveOrder("erp_batch_credentials", httpcaddyfile.Before, "basic_auth")
}

// Credentials keeps the batch request's credential headers, before erp_auth
// verifies and removes them, for erp_batch to send with each sub-request
// (each sub-request is authenticated again, through the whole chain). The
// copy lives in the request's context only, never in a variable or
// placeholder a log could print.
//
//	handle /api/v1/batch {
//		erp_batch_credentials
//		erp_auth {
//			authenticated_only
//		}
//		erp_batch
//	}
type Credentials struct{}

// CaddyModule returns the Caddy module information.
func (Credentials) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.erp_batch_credentials",
		New: func() caddy.Module { return new(Credentials) },
	}
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (Credentials) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	return next.ServeHTTP(w, keepcred.Keep(r))
}

func parseCredentials(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	c := new(Credentials)
	if err := caddyfileutil.NoArgs(h.Dispenser); err != nil {
		return nil, err
	}
	if h.NextBlock(0) {
		return nil, h.Errf("erp_batch_credentials takes no block")
	}
	return c, nil
}

// Interface guards
var _ caddyhttp.MiddlewareHandler = (*Credentials)(nil)
