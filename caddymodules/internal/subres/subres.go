// Package subres is the seam between erp_version and the handlers that serve
// a backend's reserved sub-resources itself instead of proxying them:
// `/api/{version}/{backend}/export` (erp_bulk) and
// `/api/{version}/{backend}/import` (erp_import).
//
// erp_version routes such a request like any other (version, backend,
// deprecation, sunset, placeholders) but does not rewrite it for the
// backend: it leaves a *Route in the request variable
// contract.VarSubResource and calls the rest of the chain. The handler named
// by Route.Op claims it (Claim) and builds its own backend requests from
// Route.Dialect and Route.Target, sending each through the rest of its chain
// (reverse_proxy { dynamic erp }). The Caddyfile puts the claiming handlers
// before reverse_proxy; should a request go unclaimed anyway, erp_version's
// translator turns whatever the backend answers into 404 NOT_FOUND and it
// logs a warning.
package subres

import (
	"net/http"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/erpgate/erpgate/backends/dialects"
	"github.com/erpgate/erpgate/contract"
)

// The reserved sub-resource names: a backend's item id can never be one of
// these through the edge (GET /api/v1/{backend}/export is the export, not
// the item "export").
const (
	OpExport = "export"
	OpImport = "import"
)

// Ops lists the reserved sub-resource names.
var Ops = []string{OpExport, OpImport}

// IsOp reports whether seg names a reserved sub-resource.
func IsOp(seg string) bool { return seg == OpExport || seg == OpImport }

// Route is a sub-resource request as erp_version routed it.
type Route struct {
	// Op is OpExport or OpImport.
	Op string
	// Dialect is the backend's dialect: the claiming handler rewrites its
	// own requests with it (a copy of Target each time: Rewrite may keep it).
	Dialect dialects.Dialect
	// Target is the backend's collection (ID and Sub empty).
	Target dialects.Target

	claimed bool
}

// Set leaves rt in r's variables for the handler that serves rt.Op.
func Set(r *http.Request, rt *Route) {
	caddyhttp.SetVar(r.Context(), contract.VarSubResource, rt)
}

// Get returns the sub-resource route of r, or nil for an ordinary request.
func Get(r *http.Request) *Route {
	rt, _ := caddyhttp.GetVar(r.Context(), contract.VarSubResource).(*Route)
	return rt
}

// Claim returns r's route when it is a sub-resource request for op, marking
// it served; nil otherwise (the handler then passes the request on).
func Claim(r *http.Request, op string) *Route {
	rt := Get(r)
	if rt == nil || rt.Op != op {
		return nil
	}
	rt.claimed = true
	return rt
}

// Claimed reports whether a handler claimed the route.
func (rt *Route) Claimed() bool { return rt.claimed }

// CollectionTarget is a fresh copy of the collection's target, for one
// backend request.
func (rt *Route) CollectionTarget() *dialects.Target {
	t := rt.Target
	t.ID, t.Sub = "", nil
	return &t
}
