// Package envelope is the erp_envelope handler: it wraps every JSON answer the
// edge returns — backend answers and the edge's own errors — in erpgate's
// envelope, and gives every request an id. It owns nothing across requests
// (only pooled buffers); the envelope's shape is internal/envelope's. It
// does not use the erp app and imports no module package, only
// caddymodules/internal helpers (caddyfileutil, placeholders).
package envelope

import (
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/erpgate/erpgate/caddymodules/internal/placeholders"
	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/clientheaders"
	"github.com/erpgate/erpgate/internal/depfail"
	env "github.com/erpgate/erpgate/internal/envelope"
	"github.com/erpgate/erpgate/internal/graphql"
)

func init() {
	caddy.RegisterModule(Handler{})
}

// Handler wraps answers in the envelope. Place it first in a route, and again
// alone in `handle_errors`, where it renders the error that ended the request:
//
//	route {
//		erp_envelope
//		…
//	}
//	handle_errors {
//		erp_envelope
//	}
//
// In a route it:
//   - first removes identity-like headers the client sent (`strip_headers`,
//     plus the edge's own `X-ERP-Company-ID`, `-User-ID`, `-Roles`,
//     `-Scope` and `X-ERP-Assertion`), in any case and `_`/`-` spelling, so
//     that no later handler, the auth service or a backend reads them — on
//     every route, with or without erp_auth;
//   - takes the client's `X-Request-ID` when it is a valid UUID, else makes a
//     UUIDv7; sends it upstream, echoes it in the answer and publishes it as
//     `{erp.request_id}`;
//   - wraps JSON answers (`application/json`, `*/*+json`): answers up to
//     `max_buffer` are validated and wrapped whole (a backend's invalid JSON
//     becomes a 502 envelope); larger ones are streamed through a validating
//     copier, so memory per request stays bounded and the client still gets
//     valid JSON (with `success:false` if the backend's JSON broke mid-way);
//   - passes everything else through untouched: non-JSON, HEAD, 1xx, 204,
//     206, 304 and protocol upgrades;
//   - asks the backend for an uncompressed answer (compress to clients with
//     `encode` placed before erp_envelope);
//   - turns a panic further down the chain into a 500 `INTERNAL` error.
//
// In handle_errors it writes `{"success":false,…,"errors":[…]}` with the
// status and code of the error (a contract.Error's own code, else one derived
// from the status: 404 NOT_FOUND, 413 PAYLOAD_TOO_LARGE, 502
// UPSTREAM_UNAVAILABLE, 504 UPSTREAM_TIMEOUT, 500 INTERNAL, …). Every 503
// it writes carries `Retry-After` (internal/depfail's, unless the error set
// its own), and an error with no status of its own that internal/depfail
// classifies as a dependency failure (a dropped connection, a timeout) is
// 503 SERVICE_UNAVAILABLE, not 500.
type Handler struct {
	// MaxBuffer is the largest JSON answer, in bytes, that is buffered and
	// validated before it is sent. Larger answers are streamed. Default: 4 MiB.
	MaxBuffer int64 `json:"max_buffer,omitempty"`

	// StripHeaders are client request headers removed before any other
	// handler runs: names compared case-insensitively with `_` and `-`
	// alike, a trailing `*` making a prefix. The word `default` stands for
	// the default list, so `["default", "X-Employee-ID"]` extends it and a
	// list without `default` replaces it. The edge's own identity headers
	// (`X-ERP-Company-ID`, `X-ERP-User-ID`, `X-ERP-Roles`, `X-ERP-Scope`,
	// `X-ERP-Assertion`) are removed whatever the list says.
	// Default: `["default"]`, that is `X-User-ID`, `X-User`, `X-Roles`,
	// `X-Company-ID`, `X-Tenant-ID`, `X-Forwarded-User`,
	// `X-Forwarded-Email`, `X-Forwarded-Groups`,
	// `X-Forwarded-Preferred-Username`, `X-Remote-User`, `Remote-User`,
	// `Remote-Groups`, `Remote-Email`, `Remote-Name`, `X-Auth-Request-*`.
	StripHeaders []string `json:"strip_headers,omitempty"`

	// GraphQLPath is the path of the GraphQL endpoint (erp_graphql): the
	// errors of requests to exactly this path that end before erp_graphql
	// answers (erp_auth's 401, erp_authz's 403, …) are written in GraphQL's
	// shape, {"errors":[{"message","extensions":{"code","field"?,"context"?}}],
	// "extensions":{"meta":{…}}}, with the same status and headers, so that
	// GraphQL clients read every answer of the endpoint alike. `off`: none.
	// Default: `/api/graphql`.
	GraphQLPath string `json:"graphql_path,omitempty"`

	logger      *zap.Logger
	strip       *clientheaders.Matcher
	graphqlPath string // "" when off
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.erp_envelope",
		New: func() caddy.Module { return new(Handler) },
	}
}

// Provision sets defaults.
func (h *Handler) Provision(ctx caddy.Context) error {
	h.logger = ctx.Logger()
	if h.MaxBuffer <= 0 {
		h.MaxBuffer = 4 << 20
	}
	list := h.StripHeaders
	if len(list) == 0 {
		list = []string{clientheaders.DefaultWord}
	}
	switch h.GraphQLPath {
	case "":
		h.graphqlPath = "/api/graphql"
	case "off":
		h.graphqlPath = ""
	default:
		h.graphqlPath = h.GraphQLPath
	}
	var err error
	if h.strip, err = clientheaders.New(clientheaders.Edge, list); err != nil {
		return fmt.Errorf("erp_envelope: strip_headers: %w", err)
	}
	return nil
}

// Validate checks the configuration.
func (h *Handler) Validate() error {
	if h.MaxBuffer < 1024 {
		return errors.New("erp_envelope: max_buffer must be at least 1024 bytes")
	}
	if err := clientheaders.Check(h.StripHeaders); err != nil {
		return fmt.Errorf("erp_envelope: strip_headers: %w", err)
	}
	if p := h.GraphQLPath; p != "" && p != "off" && (!strings.HasPrefix(p, "/") || strings.ContainsAny(p, " \t?#")) {
		return errors.New("erp_envelope: graphql_path is a path starting with /, or off")
	}
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) (err error) {
	if cause, ok := r.Context().Value(caddyhttp.ErrorCtxKey).(error); ok {
		h.renderError(w, r, cause)
		return nil
	}
	h.strip.Strip(r.Header) // before anything reads them
	id := requestID(r)
	if isUpgrade(r) {
		return next.ServeHTTP(w, r)
	}
	r.Header.Del("Accept-Encoding")

	rec := getRecorder(w, r, h.MaxBuffer)
	defer putRecorder(rec)
	rec.body = follow(r)
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			h.logger.Error("panic in handler chain",
				zap.String("request_id", id),
				zap.String("panic", fmt.Sprint(p)),
				zap.ByteString("stack", debug.Stack()))
			if rec.started {
				panic(http.ErrAbortHandler)
			}
			rec.discard()
			err = caddyhttp.Error(http.StatusInternalServerError, errors.New("panic in handler chain"))
		}
	}()
	err = next.ServeHTTP(rec, r)
	if err != nil {
		if rec.mode == modeStream {
			_ = rec.finish(id) // close the document: the client keeps valid JSON
		}
		if rec.started {
			caddyhttp.SetVar(r.Context(), contract.VarResponseStarted, true)
		} else {
			rec.discard()
		}
		return err
	}
	return rec.finish(id)
}

// requestID settles the request's id and publishes it.
func requestID(r *http.Request) string {
	if v, ok := caddyhttp.GetVar(r.Context(), contract.VarRequestID).(string); ok && v != "" {
		return v
	}
	id := env.RequestID(r.Header.Get(contract.HeaderRequestIDKey))
	r.Header.Set(contract.HeaderRequestIDKey, id)
	caddyhttp.SetVar(r.Context(), contract.VarRequestID, id)
	placeholders.Publish(r)
	return id
}

func isUpgrade(r *http.Request) bool {
	return r.Header.Get("Upgrade") != "" && headerHasToken(r.Header.Values("Connection"), "upgrade")
}

// meta builds the envelope's meta for r.
func meta(r *http.Request, id string) env.Meta {
	m := env.Meta{Timestamp: time.Now(), RequestID: id}
	if repl, ok := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer); ok {
		m.CompanyID = replString(repl, "http.auth.user.company_id")
		m.UserID = replString(repl, "http.auth.user.id")
	}
	m.APIVersion, _ = caddyhttp.GetVar(r.Context(), contract.VarAPIVersion).(string)
	m.Merged, _ = caddyhttp.GetVar(r.Context(), contract.VarMerged).(bool)
	return m
}

func replString(repl *caddy.Replacer, key string) string {
	v, ok := repl.Get(key)
	if !ok {
		return ""
	}
	s, _ := v.(string)
	return s
}

// renderError writes the envelope of the error that ended the request.
func (h *Handler) renderError(w http.ResponseWriter, r *http.Request, cause error) {
	if started, _ := caddyhttp.GetVar(r.Context(), contract.VarResponseStarted).(bool); started {
		return
	}
	id := requestID(r)
	status, e, hdr := describe(cause)
	if status == http.StatusUnauthorized {
		if af, ok := caddyhttp.GetVar(r.Context(), contract.VarAuthFailure).(*contract.Error); ok {
			e = env.Error{Code: af.Code, Message: af.Message, Field: af.Field, Context: af.Context}
			hdr = af.Header
			if af.Status > 0 {
				status = af.Status // a refusal that is not a 401: 400 for an ambiguous credential, 503
			}
		}
		if status == http.StatusUnauthorized && hdr.Get("Www-Authenticate") == "" && w.Header().Get("Www-Authenticate") == "" {
			w.Header().Set("Www-Authenticate", `Bearer realm="erpgate"`)
		}
	}
	for k, vs := range hdr {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	// Every 503 of the chain (a token that could not be checked, a store
	// that dropped) tells the client when to retry.
	depfail.SetRetryAfter(w.Header(), status)
	w.Header().Set(contract.HeaderRequestIDKey, id)
	endIfCut(w.Header(), followed(r)) // r.Body may be another handler's by now
	m := meta(r, id)
	if h.graphqlPath != "" && requestPath(r) == h.graphqlPath {
		writeGraphQLError(w, r, status, &m, e)
		return
	}
	env.WriteFailure(w, status, &m, e)
}

// requestPath is the path the client asked for (handle_errors may see a
// rewritten request).
func requestPath(r *http.Request) string {
	if orig, ok := r.Context().Value(caddyhttp.OriginalRequestCtxKey).(http.Request); ok && orig.URL != nil {
		return orig.URL.Path
	}
	return r.URL.Path
}

// writeGraphQLError writes e as a GraphQL response (internal/graphql's
// shape) with the envelope's meta in its extensions: the media type the
// client accepts, as erp_graphql answers.
func writeGraphQLError(w http.ResponseWriter, r *http.Request, status int, m *env.Meta, e env.Error) {
	meta := env.AppendMeta(make([]byte, 0, 160), m)
	errs := []*graphql.Error{{Message: e.Message, Code: e.Code, Field: e.Field, Context: e.Context}}
	body := graphql.AppendResponse(make([]byte, 0, 256+len(meta)), nil, errs, meta)
	hdr := w.Header()
	ct := env.ContentType
	for _, a := range r.Header["Accept"] {
		if strings.Contains(a, "application/graphql-response+json") {
			ct = "application/graphql-response+json; charset=utf-8"
			break
		}
	}
	hdr.Set("Content-Type", ct)
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	hdr.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// describe turns a handler error into a status, an envelope error and extra headers.
func describe(cause error) (int, env.Error, http.Header) {
	status := http.StatusInternalServerError
	var he caddyhttp.HandlerError
	if errors.As(cause, &he) && he.StatusCode > 0 {
		status = he.StatusCode
	}
	if ce, ok := contract.AsError(cause); ok {
		if ce.Status > 0 {
			status = ce.Status
		}
		return status, env.Error{Code: ce.Code, Message: ce.Message, Field: ce.Field, Context: ce.Context}, ce.Header
	}
	var mbe *http.MaxBytesError
	if errors.As(cause, &mbe) {
		status = http.StatusRequestEntityTooLarge
		return status, env.Error{
			Code:    contract.CodePayloadTooLarge,
			Message: contract.MessageForStatus(status),
			Context: map[string]any{"limit_bytes": mbe.Limit},
		}, nil
	}
	if status < 400 || status > 599 {
		status = http.StatusInternalServerError
	}
	if status == http.StatusInternalServerError && depfail.Unavailable(cause) {
		status = http.StatusServiceUnavailable // a dependency dropped: internal/depfail's one mapping
	}
	return status, env.Error{Code: contract.CodeForStatus(status), Message: contract.MessageForStatus(status)}, nil
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
)
