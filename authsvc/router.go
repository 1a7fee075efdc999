package authsvc

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// routeTable is every endpoint of the service as an http.ServeMux pattern
// ("METHOD /path", a {name} segment matching one non-empty path segment)
// with its handler: the core's and each identity feature's own table
// (declared beside its handlers). The OpenAPI document is checked against
// it (openapi_test.go, through Routes).
var routeTable = mergeRoutes(coreRoutes, ssoRoutes, samlRoutes, webauthnRoutes, messagingRoutes, deviceRoutes, pageRoutes, dsrRoutes, cellRoutes)

// mergeRoutes joins route tables; a pattern in two of them is a
// programming error.
func mergeRoutes(tables ...map[string]handlerFunc) map[string]handlerFunc {
	out := make(map[string]handlerFunc)
	for _, t := range tables {
		for pattern, fn := range t {
			if _, dup := out[pattern]; dup {
				panic("authsvc: route " + pattern + " declared twice")
			}
			out[pattern] = fn
		}
	}
	return out
}

// coreRoutes are the password, session, API key, admin and document endpoints.
var coreRoutes = map[string]handlerFunc{
	"POST /api/v1/auth/login":                                 (*Service).handleLogin,
	"POST /api/v1/auth/mfa/verify":                            (*Service).handleMFAVerify,
	"DELETE /api/v1/auth/mfa/totp":                            (*Service).handleTOTPDelete,
	"POST /api/v1/auth/mfa/totp/enroll":                       (*Service).handleTOTPEnroll,
	"POST /api/v1/auth/mfa/totp/confirm":                      (*Service).handleTOTPConfirm,
	"POST /api/v1/auth/select-company":                        (*Service).handleSelectCompany,
	"POST /api/v1/auth/refresh":                               (*Service).handleRefresh,
	"POST /api/v1/auth/switch-company":                        (*Service).handleSwitchCompany,
	"POST /api/v1/auth/logout":                                (*Service).handleLogout,
	"POST /api/v1/auth/password":                              (*Service).handleChangePassword,
	"GET /api/v1/auth/me":                                     (*Service).handleMe,
	"GET /api/v1/auth/sessions":                               (*Service).handleListSessions,
	"DELETE /api/v1/auth/sessions/{id}":                       (*Service).handleRevokeSession,
	"POST /api/v1/auth/api-keys":                              (*Service).handleCreateAPIKey,
	"GET /api/v1/auth/api-keys":                               (*Service).handleListAPIKeys,
	"DELETE /api/v1/auth/api-keys/{id}":                       (*Service).handleRevokeAPIKey,
	"POST /api/v1/auth/api-keys/{id}/rotate":                  (*Service).handleRotateAPIKey,
	"POST /api/v1/auth/introspect":                            (*Service).handleIntrospect,
	"GET /.well-known/jwks.json":                              (*Service).handleJWKS,
	"GET /.well-known/openid-configuration":                   (*Service).handleOpenIDConfiguration,
	"GET /api/v1/openapi.json":                                (*Service).handleOpenAPI,
	"GET /api/v1/docs":                                        (*Service).handleDocs,
	"GET /api/v1/admin/companies":                             (*Service).handleAdminListCompanies,
	"POST /api/v1/admin/companies":                            (*Service).handleAdminCreateCompany,
	"GET /api/v1/admin/companies/{id}":                        (*Service).handleAdminGetCompany,
	"PATCH /api/v1/admin/companies/{id}":                      (*Service).handleAdminUpdateCompany,
	"GET /api/v1/admin/users":                                 (*Service).handleAdminListUsers,
	"POST /api/v1/admin/users":                                (*Service).handleAdminCreateUser,
	"GET /api/v1/admin/users/{id}":                            (*Service).handleAdminGetUser,
	"PATCH /api/v1/admin/users/{id}":                          (*Service).handleAdminUpdateUser,
	"POST /api/v1/admin/users/{id}/reset-password":            (*Service).handleAdminResetPassword,
	"GET /api/v1/admin/memberships":                           (*Service).handleAdminListMemberships,
	"PUT /api/v1/admin/memberships/{company_id}/{user_id}":    (*Service).handleAdminPutMembership,
	"DELETE /api/v1/admin/memberships/{company_id}/{user_id}": (*Service).handleAdminDeleteMembership,
	"GET /api/v1/admin/audit":                                 (*Service).handleAdminAudit,
}

// Routes is the service's router table: every path it serves (a `{name}`
// segment matches one non-empty path segment) with its methods, sorted.
func Routes() map[string][]string {
	out := make(map[string][]string)
	for pattern := range routeTable {
		method, path, _ := strings.Cut(pattern, " ")
		out[path] = append(out[path], method)
	}
	for _, ms := range out {
		slices.Sort(ms)
	}
	return out
}

// Routed reports whether path is one of the service's endpoints, for any
// method.
func Routed(path string) bool {
	if router.literal[path] != nil {
		return true
	}
	q := new(pathProbe)
	q.u = url.URL{Path: path, RawPath: dotEscaped(path)}
	q.r = http.Request{Method: http.MethodGet, URL: &q.u}
	router.byPath.ServeHTTP(&q.p, &q.r)
	return q.p.endpoint != nil
}

// router is routeTable in two http.ServeMuxes built once: by method and
// path (to serve), and by path alone (for Routed and the Allow header).
// The muxes only match: they serve into a probe, which a matched route
// marks. Their own answers (404, 405, redirects to a cleaned path) never
// reach a client, and a catch-all "/" that marks nothing keeps them from
// composing those answers on a miss; the service answers with envelopes.
//
// The hot endpoints (refresh, introspect, the JWK Set) have no {…}: the
// patterns without one are also indexed by their path. The index answers
// as the mux does for them (TestRouterLiteralIndex) but skips the mux's
// cleaning and per-segment unescaping, which cost some 20 times more than
// a map lookup (BenchmarkRouted).
var router = newRouter(routeTable)

type routerMuxes struct {
	byMethod *http.ServeMux               // "METHOD /path" → *route
	byPath   *http.ServeMux               // "/path" → *endpoint
	literal  map[string]map[string]*route // path → method → route, patterns without {…}
}

// route is one endpoint's method: its handler and the names of its {…}
// segments in order.
type route struct {
	fn     handlerFunc
	params []string
	span   string // the flow's span name (spanName)
}

// spanName is a route's span: `authsvc.` and its path below /api/v1/auth
// (or /api/v1; other paths below `web.`), dot-separated, a {…} segment
// kept as it is, and the method when the path has more than one:
// `authsvc.login`, `authsvc.mfa.verify`, `authsvc.sessions.{id}`,
// `authsvc.api-keys.POST`, `authsvc.web.login`. One name per route, from a
// fixed set.
func spanName(pattern string, methods int) string {
	method, path, _ := strings.Cut(pattern, " ")
	rest, ok := strings.CutPrefix(path, "/api/v1/auth/")
	if !ok {
		if rest, ok = strings.CutPrefix(path, "/api/v1/"); !ok {
			rest = "web/" + strings.TrimLeft(path, "/.")
		}
	}
	var parts []string
	for _, seg := range strings.Split(rest, "/") {
		if seg != "" {
			parts = append(parts, seg)
		}
	}
	name := "authsvc." + strings.Join(parts, ".")
	if methods > 1 {
		name += "." + method
	}
	return name
}

// endpoint is one path of the table with its methods, sorted (the Allow
// header of a 405).
type endpoint struct {
	methods []string
}

// probe is the ResponseWriter the muxes serve into.
type probe struct {
	route    *route
	endpoint *endpoint
}

func (p *probe) Header() http.Header         { return http.Header{} }
func (p *probe) Write(b []byte) (int, error) { return len(b), nil }
func (p *probe) WriteHeader(int)             {}

// pathProbe is one Routed question to the byPath mux.
type pathProbe struct {
	r http.Request
	u url.URL
	p probe
}

// ServeHTTP marks the probe the mux serves into.
func (rt *route) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	if p, ok := w.(*probe); ok {
		p.route = rt
	}
}

// ServeHTTP marks the probe the mux serves into.
func (ep *endpoint) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	if p, ok := w.(*probe); ok {
		p.endpoint = ep
	}
}

func newRouter(table map[string]handlerFunc) *routerMuxes {
	rm := &routerMuxes{byMethod: http.NewServeMux(), byPath: http.NewServeMux(), literal: map[string]map[string]*route{}}
	noRoute := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	rm.byMethod.Handle("/", noRoute)
	rm.byPath.Handle("/", noRoute)
	endpoints := map[string]*endpoint{}
	methods := map[string]int{}
	for pattern := range table {
		_, path, _ := strings.Cut(pattern, " ")
		methods[path]++
	}
	for pattern, fn := range table {
		method, path, _ := strings.Cut(pattern, " ")
		rt := &route{fn: fn, span: spanName(pattern, methods[path])}
		for _, seg := range strings.Split(path, "/") {
			if strings.HasPrefix(seg, "{") {
				rt.params = append(rt.params, strings.Trim(seg, "{}"))
			}
		}
		rm.byMethod.Handle(pattern, rt)
		if len(rt.params) == 0 {
			if rm.literal[path] == nil {
				rm.literal[path] = map[string]*route{}
			}
			rm.literal[path][method] = rt
		}
		ep := endpoints[path]
		if ep == nil {
			ep = &endpoint{}
			endpoints[path] = ep
			rm.byPath.Handle(path, ep)
		}
		ep.methods = append(ep.methods, method)
		slices.Sort(ep.methods)
	}
	return rm
}

// find returns r's route, or nil, and the request as the mux read it
// (the one to serve: its PathValue holds the {…} segments). HEAD is not
// GET here: it has no route.
func (rm *routerMuxes) find(r *http.Request, p *probe) (*route, *http.Request) {
	if rt := rm.literal[r.URL.Path][r.Method]; rt != nil {
		return rt, r
	}
	return rm.findByMux(r, p)
}

// findByMux is find without the literal index.
func (rm *routerMuxes) findByMux(r *http.Request, p *probe) (*route, *http.Request) {
	mr := muxRequest(r)
	rm.byMethod.ServeHTTP(p, mr)
	if r.Method == http.MethodHead {
		return nil, mr
	}
	return p.route, mr
}

// allowed returns the methods of mr's path, sorted; none when the path is
// not an endpoint. mr is a request find returned.
func (rm *routerMuxes) allowed(mr *http.Request, p *probe) []string {
	*p = probe{}
	rm.byPath.ServeHTTP(p, mr)
	if p.endpoint == nil {
		return nil
	}
	return p.endpoint.methods
}

// muxRequest is r as the mux must read it to match r.URL.Path, the
// decoded path, segment by segment: a "%2F" inside a segment splits it
// (the mux would keep it in one segment), and a "." or ".." segment is a
// segment that only a {…} can match, not a step the mux cleans away. For
// most requests that is r itself.
func muxRequest(r *http.Request) *http.Request {
	dots := dotEscaped(r.URL.Path)
	if r.URL.RawPath == "" && dots == "" {
		return r
	}
	u := *r.URL
	u.RawPath = dots
	q := new(http.Request)
	*q = *r
	q.URL = &u
	return q
}

// dotEscaped is path escaped with its "." and ".." segments as %2E, or ""
// when it has none.
func dotEscaped(path string) string {
	if !hasDotSegment(path) {
		return ""
	}
	segs := strings.Split(path, "/")
	for i, seg := range segs {
		switch seg {
		case ".":
			segs[i] = "%2E"
		case "..":
			segs[i] = "%2E%2E"
		default:
			segs[i] = url.PathEscape(seg)
		}
	}
	return strings.Join(segs, "/")
}

func hasDotSegment(path string) bool {
	for i := 0; i < len(path); i++ {
		if path[i] != '.' || (i > 0 && path[i-1] != '/') {
			continue
		}
		j := i + 1
		if j < len(path) && path[j] == '.' {
			j++
		}
		if j == len(path) || path[j] == '/' {
			return true
		}
	}
	return false
}
