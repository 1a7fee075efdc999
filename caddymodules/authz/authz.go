// Package authz is the erp_authz handler (company binding, permission check,
// trusted identity headers) and the erp_auth directive that puts it behind
// Caddy's authentication handler with the erp_jwt and erp_api_key providers.
// A handler owns its cache of the edge assertions it signed (an
// assertion.Signer from caddymodules/internal/assertion; per config,
// not kept across reloads); the refusal log and the auth service come from
// the erp app. Besides the erp app it imports the provider packages
// companyjwt and apikey, whose configs erp_auth builds, and no other module
// package.
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
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/erpgate/erpgate/caddymodules/erpapp"
	"github.com/erpgate/erpgate/caddymodules/internal/assertion"
	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/credential"
	"github.com/erpgate/erpgate/internal/refusallog"
	"github.com/erpgate/erpgate/internal/reqpath"
	"github.com/erpgate/erpgate/internal/tracing"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler authorises an authenticated request for one company. It must run
// after Caddy's authentication handler (the `erp_auth` directive arranges
// that). For every request it:
//
//  1. refuses a path that is not in canonical form (encoded dots, slashes or
//     unreserved characters, dot or empty segments, backslashes, `;`
//     parameters, double encoding, look-alike Unicode: internal/reqpath's
//     rule, the one erp_version routes by) with 400 `BAD_REQUEST` (414 when
//     too long), so a request is authorised exactly as it is routed;
//  2. removes identity headers (`X-ERP-Company-ID`, `X-ERP-User-ID`,
//     `X-ERP-Roles`, `X-ERP-Scope`) in every spelling (case, underscores,
//     duplicates) and method-override headers;
//  3. binds the request to the caller's company: a company named in the
//     path (`/companies/{id}/…`), the query (`company_id`) or a JSON body's
//     top-level `company_id` that is not the caller's → 403 `COMPANY_MISMATCH`;
//     after the permission check (4), a part erp_version found bound to a
//     company (contract.VarCompanyCheck: a pagination cursor) is checked
//     against it (a cursor of another company → 400 `BAD_REQUEST` naming
//     cursor);
//  4. checks permission: every scope in `require`, or else the scope derived
//     from the backend `erp_version` chose (`{erp.backend}`): `{backend}:read`
//     for GET/HEAD/OPTIONS and `{backend}:write` otherwise → 403 `FORBIDDEN`.
//     With neither, the request is refused (fail closed);
//  5. removes the caller's credential (`Authorization`) and sets the
//     identity headers for the backend from the verified identity;
//  6. vouches for the request with an edge assertion (DESIGN.md "Edge
//     assertion"): `X-ERP-Assertion: <JWT>` signed by the in-process auth
//     service's assertion key (kid `edge-…`, typ `erp-edge+jwt`, published
//     in its JWKS), with `iss` the service's issuer, `aud` the backend
//     (`{erp.backend}` chosen by erp_version, or else `backend`), the
//     verified `sub`, `cid`, `roles`, `scope` and `plan`, `iat`, `exp` (60 s
//     later at most, never after the credential's own expiry) and a unique
//     `jti`. It is cached per credential and backend and reused while it has
//     more than 10 s left (to the end when the credential's expiry bounds
//     it), so signing stays off the per-request path. A client's
//     `X-ERP-Assertion`, in any spelling, is always removed: with no backend
//     named, no in-process auth service (an edge verifying with a remote
//     `jwks_url`: a warning is logged once) or a credential from another
//     provider than erp_jwt and erp_api_key, the request goes on with no
//     assertion, and backends that verify refuse it. An access token the
//     edge still accepts within its leeway past `exp` can get no assertion:
//     401 `TOKEN_EXPIRED`. No assertion key to sign with: 503
//     `SERVICE_UNAVAILABLE`.
//
// Keys rotate with the auth service's access-token keys' schedule (and
// `gateway erp keys rotate --assertion`); a new key is published before it
// signs.
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
	// Backend names the backend this route proxies to, for routes without
	// erp_version (which chooses one per request, and then wins): it is
	// the audience (`aud`) of the edge assertion, and the permission is
	// derived from it (`{backend}:read|write`) unless `require` or
	// `authenticated_only` says otherwise. Empty, with no backend from
	// erp_version: no assertion is sent.
	Backend string `json:"backend,omitempty"`

	logger *zap.Logger
	// signer signs and caches the edge assertions (per handler, with the
	// erp app's in-process auth service).
	signer *assertion.Signer
	// refusals writes the log lines of refusals, sampled (erpapp.RefusalLog).
	refusals refusallog.Logger
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
	app, err := erpapp.Get(ctx)
	if err != nil {
		return err
	}
	h.refusals = app.Refusals().For(h.logger)
	if h.MaxBodyCheck <= 0 {
		h.MaxBodyCheck = 1 << 20
	}
	h.signer = assertion.New(app, h.logger, h.refusals)
	return nil
}

// Validate checks the configuration.
func (h *Handler) Validate() error {
	for _, s := range h.Require {
		if s == "" || strings.ContainsAny(s, " \t") {
			return errors.New("erp_authz: require: scopes are single words")
		}
	}
	if strings.ContainsAny(h.Backend, " \t\r\n") {
		return errors.New("erp_authz: backend: a backend name is a single word")
	}
	return nil
}

// Canonical forms of the identity headers (set directly, without re-canonicalising per request).
var (
	hdrCompanyID = http.CanonicalHeaderKey(contract.HeaderCompanyID)
	hdrUserID    = http.CanonicalHeaderKey(contract.HeaderUserID)
	hdrRoles     = http.CanonicalHeaderKey(contract.HeaderRoles)
	hdrScope     = http.CanonicalHeaderKey(contract.HeaderScope)
	hdrAssertion = http.CanonicalHeaderKey(contract.HeaderAssertion)
)

func deny(status int, code, msg string) error {
	return caddyhttp.Error(status, &contract.Error{Status: status, Code: code, Message: msg})
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	// the span covers the decision only, not what comes after it
	_, span := tracing.Start(r.Context(), "erp.authz")
	err := h.authorize(r)
	endSpan(span, r, err)
	if err != nil {
		return err
	}
	return next.ServeHTTP(w, r)
}

// endSpan ends the `erp.authz` span with the decision: `ok`, or the
// refusal's error code in lower case, and the company.
func endSpan(span trace.Span, r *http.Request, err error) {
	if !span.IsRecording() {
		return
	}
	outcome := "ok"
	if err != nil {
		outcome = "error"
		if ce, ok := contract.AsError(err); ok {
			outcome = strings.ToLower(ce.Code)
		}
		span.SetStatus(codes.Error, outcome)
	}
	span.SetAttributes(tracing.KeyOutcome.String(outcome))
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		span.SetAttributes(tracing.KeyCompany.String(replString(repl, "http.auth.user.company_id")))
	}
	span.End()
}

// authorize decides the request and, when it may pass, sets the identity
// headers for the backend.
func (h *Handler) authorize(r *http.Request) error {
	stripHeaders(r.Header) // X-ERP-Assertion too: it is in clientheaders.Edge, which no config can drop
	// Judge the request the client sent: erp_version and dialects may have
	// rewritten path and method for the backend (a JSON-RPC read is a POST).
	method, path := r.Method, r.URL.EscapedPath()
	if orig, ok := r.Context().Value(caddyhttp.OriginalRequestCtxKey).(http.Request); ok && orig.URL != nil {
		method, path = orig.Method, orig.URL.EscapedPath()
	}
	if p := reqpath.Check(path); p != reqpath.OK {
		h.refused(r, "request with a non-canonical path refused", "bad_path")
		return deny(p.Status(), contract.CodeBadRequest, p.Message())
	}
	repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if repl == nil {
		return deny(http.StatusInternalServerError, contract.CodeInternal, "internal error")
	}
	user := replString(repl, "http.auth.user.id")
	company := replString(repl, "http.auth.user.company_id")
	if user == "" || company == "" {
		h.refused(r, "unauthenticated request refused", "unauthenticated")
		return deny(http.StatusUnauthorized, contract.CodeUnauthenticated, "authentication required")
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
	scope, _ := caddyhttp.GetVar(r.Context(), contract.VarScope).(string)
	backend, _ := caddyhttp.GetVar(r.Context(), contract.VarBackend).(string)
	if backend == "" {
		backend = h.Backend
	}
	required := h.Require
	if len(required) == 0 && !h.AuthenticatedOnly {
		if backend == "" {
			h.refused(r, "request to a route without permissions refused", "no_permission_defined")
			return deny(http.StatusForbidden, contract.CodeForbidden, "no permission is defined for this route")
		}
		// the derived permission, checked without building its name
		b, action := strings.ToLower(backend), derivedAction(method)
		if !assertion.HasScopeParts(scope, b, action) {
			h.refused(r, "request without the permission refused", "forbidden")
			return missingPermission(b + action)
		}
	}
	for _, s := range required {
		if !assertion.HasScope(scope, s) {
			h.refused(r, "request without the permission refused", "forbidden")
			return missingPermission(s)
		}
	}
	// what else the request carries bound to a company (a pagination cursor)
	if check, ok := caddyhttp.GetVar(r.Context(), contract.VarCompanyCheck).(contract.CompanyCheck); ok {
		if err := check(company); err != nil {
			if ce, ok := contract.AsError(err); ok {
				return caddyhttp.Error(ce.Status, ce)
			}
			return deny(http.StatusBadRequest, contract.CodeBadRequest, "the request is bound to another company")
		}
	}
	roles := replString(repl, "http.auth.user.roles")
	var asserted string
	if backend != "" {
		var err error
		id := assertion.Identity{User: user, Company: company, Roles: roles, Scope: scope, Plan: replString(repl, "http.auth.user.plan")}
		if asserted, err = h.signer.Of(r, backend, id); err != nil {
			return err
		}
	}
	// The backend learns the caller from the edge alone: the credential itself stays here.
	r.Header.Del("Authorization")
	credential.RemoveCookies(r.Header) // cookie mode's tokens too
	vals := [...]string{company, user, roles, scope, asserted}
	vs := vals[:] // one allocation for the five headers
	r.Header[hdrCompanyID] = vs[0:1:1]
	r.Header[hdrUserID] = vs[1:2:2]
	r.Header[hdrRoles] = vs[2:3:3]
	r.Header[hdrScope] = vs[3:4:4]
	if asserted != "" {
		r.Header[hdrAssertion] = vs[4:5:5]
	}
	return nil
}

func missingPermission(s string) error {
	return caddyhttp.Error(http.StatusForbidden, &contract.Error{
		Status: http.StatusForbidden, Code: contract.CodeForbidden,
		Message: "missing permission " + s, Context: map[string]any{"required": s},
	})
}

func (h *Handler) mismatch(r *http.Request, company, where string) error {
	if ce := h.refusals.Check(r.Context(), zap.WarnLevel, "cross-company request refused", where); ce != nil {
		ce.Write(zap.String("company_id", company), zap.String("where", where), zap.String("request_id", requestID(r)))
	}
	return deny(http.StatusForbidden, contract.CodeCompanyMismatch, "the request names another company")
}

// refused counts a refusal that has no line of its own at info level: its
// access log line is sampled with the other refusals.
func (h *Handler) refused(r *http.Request, msg, reason string) {
	if ce := h.refusals.Check(r.Context(), zap.DebugLevel, msg, reason); ce != nil {
		ce.Write(zap.String("request_id", requestID(r)))
	}
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
	id, _ := caddyhttp.GetVar(r.Context(), contract.VarRequestID).(string)
	return id
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
