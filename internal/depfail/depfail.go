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
//
// It owns that mapping and no state; of ours it imports only contract, and
// it must not import Caddy or anything under caddymodules/.
package depfail

import (
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"

	"github.com/erpgate/erpgate/contract"
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
// our own code failed. A *contract.Error is never one: it is already an
// answer.
//
// It walks err's chain once with type switches (no errors.As per type):
// the edge asks it for every refused token, so it must stay cheap.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	v := classify(err)
	return v == verdictUnavailable
}

type verdict uint8

const (
	verdictNone        verdict = iota // nothing in this chain says either
	verdictUnavailable                // a dependency failure
	verdictAnswer                     // a *contract.Error: already an answer, wins over the rest
)

func classify(err error) verdict {
	found := verdictNone
	for err != nil {
		switch e := err.(type) {
		case *contract.Error:
			return verdictAnswer
		case *net.OpError, *net.DNSError, *pgconn.ConnectError:
			found = verdictUnavailable
		case *pgconn.PgError:
			if unavailableSQLState(e.Code) {
				found = verdictUnavailable
			}
		case syscall.Errno:
			if e == syscall.ECONNREFUSED || e == syscall.ECONNRESET || e == syscall.EPIPE {
				found = verdictUnavailable
			}
		case redis.Error:
			if redisUnavailableReply(e.Error()) {
				found = verdictUnavailable
			}
		case interface{ SafeToRetry() bool }: // pgconn: the query never reached the server
			if e.SafeToRetry() {
				found = verdictUnavailable
			}
		}
		switch err {
		case context.DeadlineExceeded, // a dependency call ran out of its time
			context.Canceled, // the request's context ended while waiting on one
			io.EOF,           // the peer closed the connection
			io.ErrUnexpectedEOF,
			net.ErrClosed,
			redis.ErrPoolTimeout,
			redis.ErrPoolExhausted,
			redis.ErrClosed:
			found = verdictUnavailable
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				switch classify(e) {
				case verdictAnswer:
					return verdictAnswer
				case verdictUnavailable:
					found = verdictUnavailable
				}
			}
			return found
		default:
			err = nil
		}
	}
	return found
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

// redisUnavailableReply: error replies of a Redis that is up but cannot
// serve yet (loading its data, a replica without its master, a cluster
// resharding or failing over).
func redisUnavailableReply(msg string) bool {
	for _, p := range []string{"LOADING ", "MASTERDOWN ", "TRYAGAIN ", "CLUSTERDOWN ", "READONLY "} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

// Error is the answer to a request a dependency failure kept from being
// decided: 503 SERVICE_UNAVAILABLE with `Retry-After`. msg is safe to show
// (no error text of the dependency).
func Error(msg string) *contract.Error {
	if msg == "" {
		msg = contract.MessageForStatus(http.StatusServiceUnavailable)
	}
	return &contract.Error{
		Status: http.StatusServiceUnavailable, Code: contract.CodeServiceUnavailable, Message: msg,
		Header: http.Header{"Retry-After": {RetryAfter}},
	}
}

// Classify maps err to the answer it deserves: a *contract.Error in its
// chain as it is, a dependency failure to Error, anything else to
// fallback (the caller's own status for it; nil means 500 INTERNAL).
func Classify(err error, fallback *contract.Error) *contract.Error {
	if e, ok := contract.AsError(err); ok {
		return e
	}
	if Unavailable(err) {
		return Error("")
	}
	if fallback != nil {
		return fallback
	}
	return contract.NewError(http.StatusInternalServerError, contract.CodeInternal, contract.MessageForStatus(http.StatusInternalServerError))
}

// SetRetryAfter gives a 503 answer the package's `Retry-After` when it has
// none: whoever built the 503, the client learns when to retry.
func SetRetryAfter(h http.Header, status int) {
	if status == http.StatusServiceUnavailable && h.Get("Retry-After") == "" {
		h.Set("Retry-After", RetryAfter)
	}
}
