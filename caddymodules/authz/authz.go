// Package authz is the erp_authz handler (company binding, permission check,
// trusted identity headers) and the erp_auth directive that puts it behind
// Caddy's authentication handler with the erp_jwt and erp_api_key providers.
package authz

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/erpgate/erpgate/config"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler authorises an authenticated request for one company. It must run
// after Caddy's authentication handler (the `erp_auth` directive arranges
// that). For every request it:
//
//  1. refuses a path that is not in canonical form (encoded dots, slashes or
//     unreserved characters, dot or empty segments, backslashes) with 400
//     `BAD_REQUEST`, so a request is authorised exactly as it is routed;
//  2. removes identity headers (`X-ERP-Company-ID`, `X-ERP-User-ID`,
//     `X-ERP-Roles`, `X-ERP-Scope`) in every spelling (case, underscores,
//     duplicates) and method-override headers;
//  3. binds the request to the caller's company: a company named in the
//     path (`/companies/{id}/…`), the query (`company_id`) or a JSON body's
//     top-level `company_id` that is not the caller's → 403 `COMPANY_MISMATCH`;
//  4. checks permission: every scope in `require`, or else the scope derived
//     from the backend `erp_version` chose (`{erp.backend}`): `{backend}:read`
//     for GET/HEAD/OPTIONS and `{backend}:write` otherwise → 403 `FORBIDDEN`.
//     With neither, the request is refused (fail closed);
//  5. removes the caller's credential (`Authorization`) and sets the
//     identity headers for the backend from the verified identity.
type Handler struct {
	// Require lists scopes the caller must all hold. Empty: derived from the backend.
	Require []string `json:"require,omitempty"`
	// AuthenticatedOnly skips the permission check: any verified identity of
	// a company may pass (for edge endpoints about the caller itself, such as
	// `/api/v1/usage`). Company binding still applies.
	AuthenticatedOnly bool `json:"authenticated_only,omitempty"`
	// MaxBodyCheck is the largest JSON body, in bytes, whose top-level
	// `company_id` is checked. Larger bodies pass unchecked (the backend
	// still gets the verified X-ERP-Company-ID). Default: 1 MiB.
	MaxBodyCheck int64 `json:"max_body_check,omitempty"`

	logger *zap.Logger
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.erp_authz",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision sets defaults.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	if h.MaxBodyCheck <= 0 {
		h.MaxBodyCheck = 1 << 20
	}
	return nil
}

// Validate checks the configuration.
func (h *Handler) Validate() error {
	for _, s := range h.Require {
		if s == "" || strings.ContainsAny(s, " \t") {
			return errors.New("erp_authz: require: scopes are single words")
		}
	}
	return nil
}

// Canonical forms of the identity headers (set directly, without re-canonicalising per request).
var (
	hdrCompanyID = http.CanonicalHeaderKey(config.HeaderCompanyID)
	hdrUserID    = http.CanonicalHeaderKey(config.HeaderUserID)
	hdrRoles     = http.CanonicalHeaderKey(config.HeaderRoles)
	hdrScope     = http.CanonicalHeaderKey(config.HeaderScope)
)

func deny(status int, code, msg string) error {
	return caddyhttp.Error(status, &config.Error{Status: status, Code: code, Message: msg})
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	stripHeaders(r.Header)
	// Judge the request the client sent: erp_version and dialects may have
	// rewritten path and method for the backend (a JSON-RPC read is a POST).
	method, path := r.Method, r.URL.EscapedPath()
	if orig, ok := r.Context().Value(caddyhttp.OriginalRequestCtxKey).(http.Request); ok && orig.URL != nil {
		method, path = orig.Method, orig.URL.EscapedPath()
	}
	if !canonicalPath(path) {
		return deny(http.StatusBadRequest, config.CodeBadRequest, "the path is not in canonical form")
	}
	repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if repl == nil {
		return deny(http.StatusInternalServerError, config.CodeInternal, "internal error")
	}
	user := replString(repl, "http.auth.user.id")
	company := replString(repl, "http.auth.user.company_id")
	if user == "" || company == "" {
		return deny(http.StatusUnauthorized, config.CodeUnauthenticated, "authentication required")
	}
	for _, c := range companyInPath(path) {
		if c != company {
			return h.mismatch(r, company, "path")
		}
	}
	// Parse the query only when it may name a company or a method (an
	// escaped key could spell either, so any escape means parse).
	if rq := r.URL.RawQuery; rq != "" && (containsFold(rq, "compan") || containsFold(rq, "_method") || strings.IndexByte(rq, '%') >= 0) {
		q := r.URL.Query()
		for _, c := range companyInQuery(q) {
			if c != company {
				return h.mismatch(r, company, "query")
			}
		}
		if q.Has("_method") { // a method override in the query
			q.Del("_method")
			r.URL.RawQuery = q.Encode()
		}
	}
	if err := h.checkBody(r, company); err != nil {
		return err
	}
	scope, _ := caddyhttp.GetVar(r.Context(), config.VarScope).(string)
	required := h.Require
	if len(required) == 0 && !h.AuthenticatedOnly {
		backend, _ := caddyhttp.GetVar(r.Context(), config.VarBackend).(string)
		if backend == "" {
			return deny(http.StatusForbidden, config.CodeForbidden, "no permission is defined for this route")
		}
		// the derived permission, checked without building its name
		b, action := strings.ToLower(backend), derivedAction(method)
		if !hasScopeParts(scope, b, action) {
			return missingPermission(b + action)
		}
	}
	for _, s := range required {
		if !hasScope(scope, s) {
			return missingPermission(s)
		}
	}
	// The backend learns the caller from the edge alone: the credential itself stays here.
	r.Header.Del("Authorization")
	vals := [...]string{company, user, replString(repl, "http.auth.user.roles"), scope}
	vs := vals[:] // one allocation for the four headers
	r.Header[hdrCompanyID] = vs[0:1:1]
	r.Header[hdrUserID] = vs[1:2:2]
	r.Header[hdrRoles] = vs[2:3:3]
	r.Header[hdrScope] = vs[3:4:4]
	return next.ServeHTTP(w, r)
}

func missingPermission(s string) error {
	return caddyhttp.Error(http.StatusForbidden, &config.Error{
		Status: http.StatusForbidden, Code: config.CodeForbidden,
		Message: "missing permission " + s, Context: map[string]any{"required": s},
	})
}

func (h *Handler) mismatch(r *http.Request, company, where string) error {
	h.logger.Warn("cross-company request refused",
		zap.String("company_id", company), zap.String("where", where),
		zap.String("request_id", requestID(r)))
	return deny(http.StatusForbidden, config.CodeCompanyMismatch, "the request names another company")
}

// checkBody reads a small JSON body's top-level company_id.
func (h *Handler) checkBody(r *http.Request, company string) error {
	if r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	ct := r.Header.Get("Content-Type")
	if !strings.Contains(strings.ToLower(ct), "json") {
		return nil
	}
	if r.ContentLength > h.MaxBodyCheck {
		return nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, h.MaxBodyCheck+1))
	if err != nil {
		return caddyhttp.Error(http.StatusBadRequest, err) // keeps a MaxBytesError for the envelope's 413
	}
	rest := r.Body
	r.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(body), rest), rest}
	if int64(len(body)) > h.MaxBodyCheck {
		return nil
	}
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) != nil {
		return nil // not an object: nothing names a company; the backend judges the body
	}
	for k, v := range top {
		if !strings.EqualFold(k, "company_id") && !strings.EqualFold(k, "companyId") {
			continue
		}
		var s string
		if json.Unmarshal(v, &s) != nil || s != company {
			return h.mismatch(r, company, "body")
		}
	}
	return nil
}

func replString(repl *caddy.Replacer, key string) string {
	v, ok := repl.Get(key)
	if !ok {
		return ""
	}
	s, _ := v.(string)
	return s
}

func requestID(r *http.Request) string {
	id, _ := caddyhttp.GetVar(r.Context(), config.VarRequestID).(string)
	return id
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
