// Package keepcred keeps a request's credential headers before erp_auth
// verifies and removes them (a backend never sees them), for the handlers
// that re-enter the server on the caller's behalf: erp_batch's
// sub-requests and erp_export_jobs' exports, each authenticated again
// through the whole chain. The copy lives in the request's context only,
// never in a variable or placeholder a log could print.
package keepcred

import (
	"context"
	"net/http"
)

// Headers are the headers that carry the caller's credential.
var Headers = []string{"Authorization", "X-Api-Key", "Cookie"}

type key struct{}

// Keep returns r with a copy of its credential headers in its context.
func Keep(r *http.Request) *http.Request {
	kept := make(http.Header, len(Headers))
	for _, name := range Headers {
		if v, ok := r.Header[name]; ok {
			kept[name] = append([]string(nil), v...)
		}
	}
	return r.WithContext(context.WithValue(r.Context(), key{}, kept))
}

// Kept is the copy Keep made, or nil when it did not run.
func Kept(r *http.Request) http.Header {
	h, _ := r.Context().Value(key{}).(http.Header)
	return h
}
