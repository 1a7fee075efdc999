package batch

import (
	"context"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/erpgate/erpgate/caddymodules/internal/caddyfileutil"
)

func init() {
	caddy.RegisterModule(Credentials{})
	httpcaddyfile.RegisterHandlerDirective("erp_batch_credentials", parseCredentials)
	// before erp_auth (itself after basic_auth): its providers remove the
	// credential headers once verified
	httpcaddyfile.RegisterDirectiveOrder("erp_batch_credentials", httpcaddyfile.Before, "basic_auth")
}

// credentialHeaders are the headers that carry the caller's credential:
// erp_auth removes them from the request once verified (a backend never
// sees them), so erp_batch_credentials keeps a copy for the sub-requests.
var credentialHeaders = []string{"Authorization", "X-Api-Key", "Cookie"}

// credentialsKey is the context key of the kept credential headers.
type credentialsKey struct{}

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
	kept := make(http.Header, len(credentialHeaders))
	for _, name := range credentialHeaders {
		if v, ok := r.Header[name]; ok {
			kept[name] = append([]string(nil), v...)
		}
	}
	return next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), credentialsKey{}, kept)))
}

// keptCredentials are the headers erp_batch_credentials kept, or nil when
// it did not run.
func keptCredentials(r *http.Request) http.Header {
	h, _ := r.Context().Value(credentialsKey{}).(http.Header)
	return h
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
