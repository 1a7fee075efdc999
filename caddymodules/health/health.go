// Package health is the erp_health handler: liveness and readiness of the
// edge and the servers the erp app depends on. It owns no state: it asks
// the erp app (App.Ready) and imports no module package but the erp app.
package health

import (
	"context"
	"net/http"
	"sort"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/erpgate/erpgate/caddymodules/erpapp"
	"github.com/erpgate/erpgate/contract"
	env "github.com/erpgate/erpgate/internal/envelope"
)

func init() {
	caddy.RegisterModule(Handler{})
	httpcaddyfile.RegisterHandlerDirective("erp_health", func(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
		m := new(Handler)
		return m, m.UnmarshalCaddyfile(h.Dispenser)
	})
	httpcaddyfile.RegisterDirectiveOrder("erp_health", httpcaddyfile.Before, "respond")
}

// Handler answers health checks in the envelope. It is terminal.
//
//	handle /health/* {
//		erp_health
//	}
//
// A path ending in `/live` answers 200 as long as the process serves; any
// other path checks readiness: each configured dependency (Postgres, Redis)
// is pinged within the erp app's timeout and the answer is 200 when all
// answered, 503 `SERVICE_UNAVAILABLE` otherwise. On the embedded default
// there is nothing to check and the edge is always ready.
type Handler struct {
	app *erpapp.App
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.erp_health",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision finds the erp app.
func (h *Handler) Provision(ctx caddy.Context) error {
	app, err := erpapp.Get(ctx)
	if err != nil {
		return err
	}
	h.app = app
	return nil
}

type report struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	caddyhttp.SetVar(r.Context(), contract.VarEnveloped, true)
	id, _ := caddyhttp.GetVar(r.Context(), contract.VarRequestID).(string)
	if id == "" {
		id = env.RequestID(r.Header.Get(contract.HeaderRequestID))
	}
	w.Header().Set(contract.HeaderRequestID, id)
	w.Header().Set("Cache-Control", "no-store")
	m := env.Meta{Timestamp: time.Now(), RequestID: id}
	rep := report{Status: "ok", Checks: map[string]string{}}
	if len(r.URL.Path) >= 5 && r.URL.Path[len(r.URL.Path)-5:] == "/live" {
		env.WriteSuccess(w, http.StatusOK, rep, &m, nil)
		return nil
	}
	ctx, cancel := context.WithTimeout(r.Context(), time.Duration(h.app.Timeout)+time.Second)
	defer cancel()
	results := h.app.Ready(ctx)
	names := make([]string, 0, len(results))
	for n := range results {
		names = append(names, n)
	}
	sort.Strings(names)
	var down []string
	for _, n := range names {
		if results[n] != nil {
			rep.Checks[n] = "down"
			down = append(down, n)
		} else {
			rep.Checks[n] = "up"
		}
	}
	if len(down) > 0 {
		env.WriteFailure(w, http.StatusServiceUnavailable, &m, env.Error{
			Code: contract.CodeServiceUnavailable, Message: "a dependency is unreachable",
			Context: map[string]any{"down": down},
		})
		return nil
	}
	rep.Status = "ready"
	env.WriteSuccess(w, http.StatusOK, rep, &m, nil)
	return nil
}

// UnmarshalCaddyfile parses `erp_health` (no arguments, no block).
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next()
	if d.NextArg() {
		return d.ArgErr()
	}
	if d.NextBlock(0) {
		return d.Errf("unknown subdirective %q", d.Val())
	}
	return nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
	_ caddyfile.Unmarshaler       = (*Handler)(nil)
)
