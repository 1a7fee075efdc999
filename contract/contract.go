// Package contract holds the contract shared by the edge and the auth service:
// error codes, header, claim and placeholder names, and Redis key names.
// These names are user-facing (see DESIGN.md); changing one is a breaking change.
// It owns the names and no state. Every layer imports it, so it imports only
// the standard library: nothing of ours, no viper, no Caddy.
package contract

import (
	"errors"
	"net/http"
	"time"
)

// Error codes carried in the envelope's errors[].code.
const (
	CodeBadRequest          = "BAD_REQUEST"
	CodeValidationFailed    = "VALIDATION_FAILED"
	CodeUnauthenticated     = "UNAUTHENTICATED"
	CodeTokenExpired        = "TOKEN_EXPIRED"
	CodeTokenRevoked        = "TOKEN_REVOKED"
	CodeMFARequired         = "MFA_REQUIRED"
	CodeForbidden           = "FORBIDDEN"
	CodeCompanyMismatch     = "COMPANY_MISMATCH"
	CodeNotFound            = "NOT_FOUND"
	CodeConflict            = "CONFLICT"
	CodeRateLimited         = "RATE_LIMITED"
	CodeQuotaExceeded       = "QUOTA_EXCEEDED"
	CodeVersionUnsupported  = "VERSION_UNSUPPORTED"
	CodeVersionSunset       = "VERSION_SUNSET"
	CodePayloadTooLarge     = "PAYLOAD_TOO_LARGE"
	CodeUpstreamUnavailable = "UPSTREAM_UNAVAILABLE"
	CodeUpstreamTimeout     = "UPSTREAM_TIMEOUT"
	CodeServiceUnavailable  = "SERVICE_UNAVAILABLE"
	CodeInternal            = "INTERNAL"
	// CodeQueryTooComplex: a GraphQL operation over a plan's depth, cost,
	// alias or size limit, refused before any backend call.
	CodeQueryTooComplex = "QUERY_TOO_COMPLEX"
	// CodeFailedDependency is a batch item's code (status 424) when an
	// item it depends on did not succeed: it was not run.
	CodeFailedDependency = "FAILED_DEPENDENCY"
)

// Identity headers the edge sets towards upstreams. A client's copy of any of
// them is removed before anything reads it.
const (
	HeaderCompanyID = "X-ERP-Company-ID"
	HeaderUserID    = "X-ERP-User-ID"
	HeaderRoles     = "X-ERP-Roles"
	HeaderScope     = "X-ERP-Scope"
	HeaderRequestID = "X-Request-ID"
)

// HeaderRequestIDKey is HeaderRequestID in Go's canonical form (what
// http.Header keys are): using it spares the canonicalisation per call.
const HeaderRequestIDKey = "X-Request-Id"

// IdentityHeaders lists the headers only the edge may set.
var IdentityHeaders = []string{HeaderCompanyID, HeaderUserID, HeaderRoles, HeaderScope}

// The edge assertion (DESIGN.md "Edge assertion"): a JWT the edge signs for
// each proxied request, naming the backend it is for and the identity the
// edge verified. A client's copy of the header never reaches a backend.
const (
	HeaderAssertion = "X-ERP-Assertion"
	// TypAssertion is the assertion's JOSE typ.
	TypAssertion = "erp-edge+jwt"
	// AssertionKIDPrefix starts the kid of every assertion key and of no
	// other key: keys are not interchangeable, so a verifier of access
	// tokens refuses a kid with it and a verifier of assertions accepts
	// only such kids.
	AssertionKIDPrefix = "edge-"
)

// Access-token claim names beyond the registered ones (iss, sub, aud, exp, iat, nbf, jti).
const (
	ClaimSessionID = "sid"
	ClaimCompanyID = "cid"
	ClaimRoles     = "roles"
	ClaimScope     = "scope"
	ClaimPlan      = "plan"
)

// Credential is a verified credential as erp_authz sees it.
type Credential struct {
	// ID identifies the credential: the access token itself, or a digest
	// of an API key. Never logged.
	ID string
	// Expiry is when the credential stops being valid (zero: never); no
	// assertion made for it outlives it.
	Expiry time.Time
	// Revocable is the id under which the edge's revocation set announces
	// this credential's revocation: the access token's session id (`sid`),
	// or `apikey:<key id>` for an API key. Long-lived connections (event
	// streams) end when it is revoked. Empty: nothing revokes it early.
	Revocable string
}

// Redis key names, each under the configured key prefix.
const (
	RedisKeyRevokedSession = "revoked:sid:" // + session id
	RedisChannelRevocation = "revocations"  // pub/sub channel
	RedisChannelFleet      = "fleet"        // pub/sub channel: runtime config and company cell changes (erp app)
	RedisKeyLoginAttempts  = "attempts:login:"
	RedisKeyTOTPAttempts   = "attempts:totp:"
	RedisKeyTOTPReplay     = "totp:used:"
	RedisKeyRateLimit      = "rl:"
	RedisKeyQuota          = "quota:"
	RedisKeyAPQ            = "gql:apq:" // + sha256 hex: a persisted GraphQL query's text
	RedisKeyIdempotency    = "idem:"    // + company + ":" + Idempotency-Key: a lock or a stored answer (erp_idempotency)
)

// Error is an error with an envelope code. Middleware returns it wrapped in
// caddyhttp.Error(status, err); the envelope renders it.
type Error struct {
	Status  int            // HTTP status
	Code    string         // one of the Code* constants
	Message string         // safe to show to the caller
	Field   string         // optional: the offending input field
	Context map[string]any // optional: machine-readable details
	Header  http.Header    // optional: headers to add to the answer (e.g. WWW-Authenticate)
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// NewError builds an *Error.
func NewError(status int, code, message string) *Error {
	return &Error{Status: status, Code: code, Message: message}
}

// AsError finds an *Error in err's chain.
func AsError(err error) (*Error, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e, true
	}
	return nil, false
}

// CodeForStatus is the code of an edge error that carries no *Error.
func CodeForStatus(status int) string {
	switch status {
	case http.StatusBadRequest:
		return CodeBadRequest
	case http.StatusUnauthorized:
		return CodeUnauthenticated
	case http.StatusForbidden:
		return CodeForbidden
	case http.StatusNotFound:
		return CodeNotFound
	case http.StatusConflict, http.StatusPreconditionFailed: // 412: a failed If-Match (#18)
		return CodeConflict
	case http.StatusGone:
		return CodeVersionSunset
	case http.StatusRequestEntityTooLarge:
		return CodePayloadTooLarge
	case http.StatusUnprocessableEntity:
		return CodeValidationFailed
	case http.StatusTooManyRequests:
		return CodeRateLimited
	case http.StatusBadGateway:
		return CodeUpstreamUnavailable
	case http.StatusServiceUnavailable:
		return CodeServiceUnavailable
	case http.StatusGatewayTimeout:
		return CodeUpstreamTimeout
	}
	if status >= 500 {
		return CodeInternal
	}
	return CodeBadRequest
}

// MessageForStatus is a safe default message for an edge error.
func MessageForStatus(status int) string {
	switch status {
	case http.StatusNotFound:
		return "no such resource"
	case http.StatusRequestEntityTooLarge:
		return "request body too large"
	case http.StatusBadGateway:
		return "the backend is unavailable"
	case http.StatusGatewayTimeout:
		return "the backend did not answer in time"
	case http.StatusServiceUnavailable:
		return "the service is temporarily unavailable"
	case http.StatusUnauthorized:
		return "authentication required"
	case http.StatusForbidden:
		return "not allowed"
	case http.StatusMethodNotAllowed:
		return "method not allowed"
	}
	if status >= 500 {
		return "internal error"
	}
	if t := http.StatusText(status); t != "" {
		return t
	}
	return "request failed"
}

// EventSink takes the outcome of a write through a backend: erp_envelope
// calls Emit once, with the status of a 2xx answer and the answer's `data`
// as JSON (nil when there is none, or when the answer was streamed). Emit
// must not keep data after it returns.
type EventSink interface {
	Emit(status int, data []byte)
}
