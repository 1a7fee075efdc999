package authsvc

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/erpgate/erpgate/authsvc/store"
	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/credential"
	"github.com/erpgate/erpgate/internal/depfail"
	"github.com/erpgate/erpgate/internal/envelope"
	"github.com/erpgate/erpgate/internal/jsonbody"
	"github.com/erpgate/erpgate/internal/tracing"
)

// maxBody bounds every request body the service reads.
const maxBody = 16 << 10

// call is one request being served.
type call struct {
	w      http.ResponseWriter
	r      *http.Request
	ctx    context.Context
	meta   envelope.Meta
	param  string   // the first {…} of the route's path, when it has one
	params []string // every {…} of the route's path, in order
	ip     string
	probe  probe // what the router's mux serves into
}

type handlerFunc func(s *Service, c *call) (status int, data any, err error)

// HTTPOptions adapt the handler to where it is mounted.
type HTTPOptions struct {
	// RequestID returns the request's id (default: the X-Request-ID header
	// normalised by envelope.RequestID).
	RequestID func(*http.Request) string
	// ClientIP returns the client address used for throttling and shown in
	// sessions (default: the host of RemoteAddr).
	ClientIP func(*http.Request) string
}

// Handler returns the service's HTTP handler. Routed reports whether the
// handler serves a request's path; for other paths Handler answers 404.
func (s *Service) Handler(opts HTTPOptions) *Handler {
	if opts.RequestID == nil {
		opts.RequestID = func(r *http.Request) string { return envelope.RequestID(r.Header.Get(contract.HeaderRequestID)) }
	}
	if opts.ClientIP == nil {
		opts.ClientIP = RemoteIP
	}
	return &Handler{s: s, opts: opts}
}

// Handler serves the auth service's endpoints, every answer an envelope.
type Handler struct {
	s    *Service
	opts HTTPOptions
}

// RemoteIP is the host part of r.RemoteAddr.
func RemoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// ServeHTTP serves one request; unknown paths get a 404 envelope.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := h.s
	c := &call{w: w, r: r, meta: envelope.Meta{RequestID: h.opts.RequestID(r)}, ip: h.opts.ClientIP(r)}
	w.Header().Set(contract.HeaderRequestID, c.meta.RequestID)
	w.Header().Set("Cache-Control", "no-store")
	rt, mr := router.find(r, &c.probe)
	c.r = mr
	if rt == nil {
		allow := router.allowed(mr, &c.probe)
		if len(allow) == 0 {
			s.fail(c, contract.NewError(http.StatusNotFound, contract.CodeNotFound, contract.MessageForStatus(http.StatusNotFound)))
			return
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		s.fail(c, contract.NewError(http.StatusMethodNotAllowed, contract.CodeBadRequest, "method not allowed"))
		return
	}
	if len(rt.params) > 0 {
		c.params = make([]string, len(rt.params))
		for i, name := range rt.params {
			c.params[i] = mr.PathValue(name)
		}
		c.param = c.params[0]
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.Timeout)
	defer cancel()
	// the flow's span: its store queries and Redis commands are children
	ctx, span := tracing.Start(ctx, rt.span)
	c.ctx = ctx
	var (
		status int
		data   any
		err    error
	)
	defer func() { endFlowSpan(span, c, status, err) }()
	if err = s.Ready(ctx); err != nil {
		if ce := s.refusals.Check(r.Context(), zap.WarnLevel, "auth service not ready", "not_ready"); ce != nil {
			ce.Write(zap.Error(err))
		}
		s.fail(c, depfail.Error(""))
		return
	}
	status, data, err = rt.fn(s, c)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.meta.Timestamp = s.clock.Now()
	switch d := data.(type) {
	case standardDoc:
		writeStandardDoc(w, d, &c.meta)
		return
	case rawDoc:
		d.write(w)
		return
	case redirect:
		d.write(w)
		return
	case paged:
		envelope.WriteSuccess(w, status, d.data, &c.meta, &envelope.Pagination{Page: d.page, Limit: d.limit, Total: d.total, HasNext: d.hasNext()})
		return
	}
	envelope.WriteSuccess(w, status, data, &c.meta, nil)
}

// endFlowSpan ends a flow's span with its answer: the status (or the
// error's code and status) and, once known, the company. Never a secret:
// the error's code, not its text.
func endFlowSpan(span trace.Span, c *call, status int, err error) {
	if !span.IsRecording() {
		return
	}
	if err != nil {
		status = http.StatusInternalServerError
		code := contract.CodeInternal
		if ce, ok := contract.AsError(err); ok {
			status, code = ce.Status, ce.Code
		} else if depfail.Unavailable(err) {
			status, code = http.StatusServiceUnavailable, contract.CodeServiceUnavailable
		}
		span.SetAttributes(tracing.KeyOutcome.String(strings.ToLower(code)))
		if status >= 500 {
			span.SetStatus(codes.Error, code)
		}
	} else {
		span.SetAttributes(tracing.KeyOutcome.String("ok"))
	}
	span.SetAttributes(tracing.KeyStatus.Int(status))
	if c.meta.CompanyID != "" {
		span.SetAttributes(tracing.KeyCompany.String(c.meta.CompanyID))
	}
	span.End()
}

// standardDoc is a document with a standard shape (a JWK Set, OpenID
// discovery metadata): it is answered as an envelope whose data is the
// document, with the document's members repeated at the top level, so that
// the answer is a complete envelope and also the standard document (both
// RFC 7517 §5 and OpenID Connect Discovery tell readers to ignore members
// they don't know).
type standardDoc []byte

func writeStandardDoc(w http.ResponseWriter, doc standardDoc, m *envelope.Meta) {
	body := envelope.AppendSuccess(make([]byte, 0, 2*len(doc)+256), doc, m, nil)
	inner := strings.TrimSpace(string(doc))
	if len(inner) > 2 && inner[0] == '{' && inner[len(inner)-1] == '}' {
		body = append(body[:len(body)-1], ',')
		body = append(body, inner[1:]...)
	}
	w.Header().Set("Content-Type", envelope.ContentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Header().Set("Cache-Control", "public, max-age=60")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// fail writes err as an error envelope: a *contract.Error as it is; anything
// else through internal/depfail's one mapping: a dependency that dropped or
// did not answer in time (Postgres, Redis) is 503 SERVICE_UNAVAILABLE with
// Retry-After, the rest 500 INTERNAL; logged without details reaching the
// caller.
func (s *Service) fail(c *call, err error) {
	e, ok := contract.AsError(err)
	if !ok {
		e = depfail.Classify(err, nil)
		lvl, msg := zap.ErrorLevel, "auth service request failed"
		if e.Status == http.StatusServiceUnavailable {
			lvl, msg = zap.WarnLevel, "auth service dependency unavailable"
		}
		// sampled: an outage under load must not become a log flood
		if ce := s.refusals.Check(c.r.Context(), lvl, msg, e.Code); ce != nil {
			ce.Write(zap.String("path", c.r.URL.Path), zap.String("request_id", c.meta.RequestID), zap.Error(err))
		}
	} else if e.Status < 500 {
		// A refusal: its access log line is sampled with the others of its
		// code (the flows sample their own lines by reason).
		if ce := s.refusals.Check(c.r.Context(), zap.DebugLevel, "request refused", e.Code); ce != nil {
			ce.Write(zap.String("path", c.r.URL.Path), zap.Int("status", e.Status), zap.String("request_id", c.meta.RequestID))
		}
	}
	for k, vs := range e.Header {
		for _, v := range vs {
			c.w.Header().Add(k, v)
		}
	}
	depfail.SetRetryAfter(c.w.Header(), e.Status)
	c.meta.Timestamp = s.clock.Now()
	envelope.WriteFailure(c.w, e.Status, &c.meta, envelope.Error{Code: e.Code, Message: e.Message, Field: e.Field, Context: e.Context})
}

// decode reads the JSON body into v: one object, no unknown fields, at most maxBody bytes.
// An empty body decodes as {} when allowEmpty (internal/jsonbody's one rule).
func decode(c *call, v any, allowEmpty bool) error {
	return jsonbody.Decode(c.w, c.r, v, maxBody, allowEmpty)
}

func invalid(field, msg string) error {
	e := contract.NewError(http.StatusUnprocessableEntity, contract.CodeValidationFailed, msg)
	e.Field = field
	return e
}

// Authentication failures. The realm-only header answers a failed login;
// invalid_token answers a token that did not pass (RFC 6750 §3).
var (
	hdrLogin        = http.Header{"Www-Authenticate": {`Bearer realm="erpgate"`}}
	hdrInvalidToken = http.Header{"Www-Authenticate": {`Bearer realm="erpgate", error="invalid_token"`}}
)

func unauthenticated(code, msg string, h http.Header) error {
	e := contract.NewError(http.StatusUnauthorized, code, msg)
	e.Header = h
	return e
}

func errInvalidToken() error {
	return unauthenticated(contract.CodeUnauthenticated, "the token is missing or invalid", hdrInvalidToken)
}

func errForbidden(msg string) error {
	return contract.NewError(http.StatusForbidden, contract.CodeForbidden, msg)
}

func errRateLimited(retry time.Duration) error {
	e := contract.NewError(http.StatusTooManyRequests, contract.CodeRateLimited, "too many attempts; try again later")
	secs := int64((retry + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	e.Header = http.Header{"Retry-After": {strconv.FormatInt(secs, 10)}}
	e.Context = map[string]any{"retry_after": secs}
	return e
}

// bearer returns the token of the request's one credential, an
// `Authorization: Bearer …` header. Two credentials (or one under a
// non-standard header name) are refused with 400 by internal/credential's
// rule, the edge's too; none or another kind is an invalid token.
func bearer(r *http.Request) (string, error) {
	cred, err := credential.FromRequest(r)
	if err != nil {
		return "", credential.Refusal(err)
	}
	if cred.Kind != credential.Bearer || cred.Source != credential.FromAuthorization ||
		cred.Value == "" || strings.ContainsAny(cred.Value, " \t") {
		return "", errInvalidToken()
	}
	return cred.Value, nil
}

// authenticate checks the call's access token and, when checkSession, that
// its session is still active in the store.
func (s *Service) authenticate(c *call, checkSession bool) (*AccessClaims, error) {
	tok, err := s.callerToken(c)
	if err != nil {
		reason := ReasonMissing
		var ce *contract.Error
		if errors.As(err, &ce) && ce.Status == http.StatusBadRequest {
			reason = ReasonAmbiguous
		}
		return nil, s.refuse(c, store.EventBearerRefused, reason, err)
	}
	claims, err := s.verifyAccess(c.ctx, tok)
	if err != nil {
		return nil, s.refuse(c, store.EventBearerRefused, bearerReason(err), err)
	}
	c.meta.UserID, c.meta.CompanyID = claims.Subject, claims.CompanyID
	if checkSession {
		sess, err := s.store.GetSession(c.ctx, claims.Subject, claims.SessionID)
		if errors.Is(err, store.ErrNotFound) {
			return nil, s.refuse(c, store.EventBearerRefused, ReasonUnknownSession, errInvalidToken(), "session_id", claims.SessionID)
		}
		if err != nil {
			return nil, err
		}
		if !sess.Active(s.clock.Now()) {
			return nil, s.refuse(c, store.EventBearerRefused, ReasonSessionEnded, unauthenticated(contract.CodeTokenRevoked, "the session has ended", hdrInvalidToken), "session_id", claims.SessionID)
		}
	}
	return claims, nil
}

func (s *Service) handleJWKS(c *call) (int, any, error) {
	return http.StatusOK, standardDoc(s.jwks.Load().json), nil
}

func (s *Service) handleOpenIDConfiguration(c *call) (int, any, error) {
	base := s.cfg.Issuer
	if !strings.HasPrefix(base, "https://") && !strings.HasPrefix(base, "http://") {
		scheme := "http"
		if c.r.TLS != nil {
			scheme = "https"
		}
		base = scheme + "://" + c.r.Host
	}
	base = strings.TrimSuffix(base, "/")
	doc, err := json.Marshal(map[string]any{
		"issuer":                                s.cfg.Issuer,
		"jwks_uri":                              base + "/.well-known/jwks.json",
		"token_endpoint":                        base + "/api/v1/auth/refresh",
		"introspection_endpoint":                base + "/api/v1/auth/introspect",
		"response_types_supported":              []string{"token"},
		"grant_types_supported":                 []string{"password", "refresh_token"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{AlgEdDSA},
		"token_endpoint_auth_methods_supported": []string{"none"},
		"scopes_supported":                      ScopesFor([]string{RoleOwner}),
		"claims_supported":                      []string{"iss", "sub", "aud", "exp", "iat", "nbf", "jti", contract.ClaimSessionID, contract.ClaimCompanyID, contract.ClaimRoles, contract.ClaimScope, contract.ClaimPlan},
	})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, standardDoc(doc), nil
}
