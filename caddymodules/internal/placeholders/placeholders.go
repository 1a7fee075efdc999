// Package placeholders publishes the edge's per-request values
// ({erp.request_id}, {erp.api_version}, {erp.backend}) as Caddy
// placeholders. It owns no state (the values live in each request's
// variables); of ours it imports only contract, and no module package.
//
// They are read from the request's variables (where erp_envelope and
// erp_version keep them) by one replacer provider per request, instead of
// one static replacer entry each. The replacer's static map starts empty and
// grows in steps (8, 16, 32, 64 slots, each step a new table and a rehash);
// Caddy's reverse_proxy alone puts sixteen entries in it plus one per
// header of the upstream's answer, and the authentication handler one per
// identity field. Every entry the edge does not add is one step further
// from the next growth.
package placeholders

import (
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/erpgate/erpgate/contract"
)

// Publish makes the edge's placeholders resolve for r. Call it once per
// request: erp_envelope does when it settles the request id (and sets
// contract.VarRequestID with it); other handlers call Ensure.
func Publish(r *http.Request) {
	repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	vars, _ := r.Context().Value(caddyhttp.VarsCtxKey).(map[string]any)
	if repl == nil || vars == nil {
		return
	}
	repl.Map(func(key string) (any, bool) {
		switch key {
		case contract.VarRequestID, contract.VarAPIVersion, contract.VarBackend:
			v, ok := vars[key]
			return v, ok
		}
		return nil, false
	})
}

// Ensure publishes unless erp_envelope already has: it publishes together
// with setting the request id, so the id's presence says it is done.
func Ensure(r *http.Request) {
	if _, done := caddyhttp.GetVar(r.Context(), contract.VarRequestID).(string); done {
		return
	}
	Publish(r)
}
