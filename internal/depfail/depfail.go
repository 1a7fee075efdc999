// Package depfail is the one mapping from dependency failures to answers,
// shared by the edge and the auth service: an error that says a dependency
// (Postgres, Redis, the auth service, a JWKS endpoint) could not be reached
// or did not answer in time is "dependency unavailable", answered 503
// SERVICE_UNAVAILABLE with `Retry-After: RetryAfterSeconds`; every other
// error keeps the status its caller gives it (a 500 stays a 500, a 401 a
// 401).
//
// A 503 says "this request was not refused, it could not be decided": the
// client retries the same request later, unchanged, and it succeeds once the
// dependency is back (pools reconnect by themselves; no restart). A 401
// would tell it to throw its token away, a 500 that the server is broken.
package depfail

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"syscall"

	"github.com/erpgate/erpgate/config"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/redis/go-redis/v9"
)

// RetryAfterSeconds is the `Retry-After` of every 503 this package builds:
// long enough for a pool to dial again, short enough that a client
// retrying after it does not notice a brief cut.
const RetryAfterSeconds = 2

// RetryAfter is the header value of RetryAfterSeconds.
var RetryAfter = strconv.Itoa(RetryAfterSeconds)

// Unavailable reports whether err says that a dependency could not be
// reached or did not answer in time, rather than that it refused or that
// our own code failed. A *config.Error is never one: it is already an
// answer.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	if _, ok := config.AsError(err); ok {
		return false
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded), // a dependency call ran out of its time
		errors.Is(err, context.Canceled),  // the request's context ended while waiting on one
		errors.Is(err, io.EOF),            // the peer closed the connection
		errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, net.ErrClosed),
		errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE),
		errors.Is(err, redis.ErrPoolTimeout),
		errors.Is(err, redis.ErrPoolExhausted),
		errors.Is(err, redis.ErrClosed):
		return true
	}
	var opErr *net.OpError
	var dnsErr *net.DNSError
	var connectErr *pgconn.ConnectError
	if errors.As(err, &opErr) || errors.As(err, &dnsErr) || errors.As(err, &connectErr) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return unavailableSQLState(pgErr.Code)
	}
	if pgconn.SafeToRetry(err) || pgconn.Timeout(err) {
		return true
	}
	for _, p := range redisUnavailable {
		if redis.HasErrorPrefix(err, p) {
			return true
		}
	}
	return false
}

// unavailableSQLState: connection exceptions (class 08), the server
// shutting down or starting (57P01–57P03), too many connections (53300).
func unavailableSQLState(code string) bool {
	if len(code) == 5 && code[:2] == "08" {
		return true
	}
	switch code {
	case "57P01", "57P02", "57P03", "53300":
		return true
	}
	return false
}

// Redis error replies of a server that is up but cannot serve yet.
var redisUnavailable = []string{"LOADING", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN", "READONLY"}

// Error is the answer to a request a dependency failure kept from being
// decided: 503 SERVICE_UNAVAILABLE with `Retry-After`. msg is safe to show
// (no error text of the dependency).
func Error(msg string) *config.Error {
	if msg == "" {
		msg = config.MessageForStatus(http.StatusServiceUnavailable)
	}
	return &config.Error{
		Status: http.StatusServiceUnavailable, Code: config.CodeServiceUnavailable, Message: msg,
		Header: http.Header{"Retry-After": {RetryAfter}},
	}
}

// Classify maps err to the answer it deserves: a *config.Error in its
// chain as it is, a dependency failure to Error, anything else to
// fallback (the caller's own status for it; nil means 500 INTERNAL).
func Classify(err error, fallback *config.Error) *config.Error {
	if e, ok := config.AsError(err); ok {
		return e
	}
	if Unavailable(err) {
		return Error("")
	}
	if fallback != nil {
		return fallback
	}
	return config.NewError(http.StatusInternalServerError, config.CodeInternal, config.MessageForStatus(http.StatusInternalServerError))
}

// SetRetryAfter gives a 503 answer the package's `Retry-After` when it has
// none: whoever built the 503, the client learns when to retry.
func SetRetryAfter(h http.Header, status int) {
	if status == http.StatusServiceUnavailable && h.Get("Retry-After") == "" {
		h.Set("Retry-After", RetryAfter)
	}
}
