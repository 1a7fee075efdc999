// Package dialects is the pure (Caddy-free) core of erpgate's backend
// dialects: the one query syntax clients use against every backend, and the
// Dialect interface each backend protocol (packages rest, odata, jsonrpc)
// implements to rewrite a request on the way in and to read the answer on the
// way out. It owns that syntax and that contract, and no state. Public and
// Caddy-free, it must not import Caddy or anything under caddymodules/; of
// ours it imports only contract, internal/envelope and internal/cursor (the
// cursor format, which Pager reads and seals).
//
// # The envelope's query
//
// Every list request through the edge takes the same parameters, whatever the
// backend speaks:
//
//	page=N                 1-based page; default 1
//	limit=N                page size, 1..200; default 50
//	sort=f1,-f2            ascending f1, then descending f2 (at most 3 keys)
//	filter=field:op:value  repeatable; all filters must hold (AND)
//	cursor=X               the page after the one whose pagination.next_cursor
//	                       X is (not with page; see Pager)
//
// Field names are identifiers ([A-Za-z_][A-Za-z0-9_]*, at most 64 bytes);
// they are the backend's own field names, as they appear in `data`. Operators:
//
//	eq ne gt ge lt le      comparisons
//	contains startswith    substring / prefix match on text (case-sensitive)
//	in                     any of a list: field:in:v1,v2,… (1..100 values)
//
// The value is everything after the second colon (it may contain colons). It
// is typed so that every backend language gets the same literal:
//
//	"text"        a string, JSON-quoted (the way to send a string that looks like a number or a date)
//	true false    a boolean
//	null          null
//	-12.5 3e2     a number (JSON number syntax)
//	2026-01-31    a date
//	anything else a string
//
// contains and startswith always take the value as text. The value of in is
// a comma-separated list of such values, each typed alone
// (id:in:"cus_1","cus_2" or qty:in:1,2,3); a quoted value may hold commas
// and escaped quotes ("a,b","say \"hi\""); empty values and null are
// refused, and the whole list is at most 8 KiB (other values: 256 bytes).
// Backends get it in their own form: repeated parameters (REST), OData
// 4.01's `field in (…)`, an Odoo domain term [field, "in", […]].
//
// A query a dialect cannot express exactly is refused with 400 BAD_REQUEST
// naming the parameter, never silently run as a different query.
package dialects

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/envelope"
)

// Target is where erp_version routes a request: the backend, the version, and
// the pieces of the upstream path. All path parts are decoded and have been
// checked to be canonical (no empty, "." or ".." segments, no slashes inside
// a segment).
type Target struct {
	Backend string // registered backend name, e.g. "invoices"
	Version string // e.g. "v1"
	// BasePath is the path of the version's upstream URL without a trailing
	// slash, e.g. "/v1" or "/odata/v1" or "".
	BasePath string
	// Resource is the backend's path below BasePath, e.g. "/invoices" (by
	// default "/" + Backend).
	Resource string
	// Public is the client's path of the collection, e.g. "/api/v1/invoices":
	// what the backend's own collection path stands for in links.
	Public string
	// ID is the item id (the first segment after the backend), "" for the collection.
	ID string
	// Sub holds any further segments after the id.
	Sub []string
	// Cursor is where a collection page starts when the client continued
	// with ?cursor= (the cursor is verified and removed from the query by
	// StartPage); nil otherwise. A dialect that cannot continue from a
	// position of its kind answers BadCursor.
	Cursor *envelope.Position
}

// Dialect maps requests and answers between the envelope's conventions and a
// backend protocol. Implementations are immutable after construction and
// safe for concurrent use.
type Dialect interface {
	// Rewrite turns the client's request into the backend's, in place
	// (path, query, and for some protocols method and body), and returns
	// the Translator that reads the backend's answer. An error is a
	// *contract.Error with status 400 (or 405) saying what cannot be expressed.
	Rewrite(r *http.Request, t *Target) (envelope.Translator, error)
}

// BadQuery is the 400 error for a query parameter a dialect refuses.
func BadQuery(field, msg string) *contract.Error {
	return &contract.Error{Status: http.StatusBadRequest, Code: contract.CodeBadRequest, Message: msg, Field: field}
}

// MethodNotAllowed is the 405 error for a method a dialect cannot map.
func MethodNotAllowed(backend, dialect, allowed string) *contract.Error {
	return &contract.Error{
		Status:  http.StatusMethodNotAllowed,
		Code:    contract.CodeBadRequest,
		Message: "the " + backend + " backend (" + dialect + ") accepts only " + allowed + " through the edge",
		Header:  http.Header{"Allow": {allowed}},
	}
}

// NotFound is the 404 error for a path the dialect has no mapping for.
func NotFound(msg string) *contract.Error {
	return &contract.Error{Status: http.StatusNotFound, Code: contract.CodeNotFound, Message: msg}
}

// SetPath sets u's path to the concatenation of the given decoded parts;
// segments are escaped individually, so a decoded "/" inside an id can never
// become a path separator upstream. prefix is an already-canonical path
// (e.g. "/odata/v1/Products") that is escaped segment by segment as well.
func SetPath(u *url.URL, prefix string, segs ...string) {
	var b strings.Builder
	n := len(prefix)
	for _, s := range segs {
		n += len(s) + 1
	}
	b.Grow(n + 8)
	raw := false
	for seg := range strings.SplitSeq(strings.TrimPrefix(prefix, "/"), "/") {
		if seg == "" {
			continue
		}
		b.WriteByte('/')
		esc := url.PathEscape(seg)
		raw = raw || esc != seg
		b.WriteString(esc)
	}
	for _, s := range segs {
		b.WriteByte('/')
		esc := url.PathEscape(s)
		raw = raw || esc != s
		b.WriteString(esc)
	}
	if b.Len() == 0 {
		b.WriteByte('/')
	}
	if !raw {
		u.Path, u.RawPath = b.String(), ""
		return
	}
	u.RawPath = b.String()
	p, err := url.PathUnescape(u.RawPath)
	if err != nil { // cannot happen: we escaped it
		p = u.RawPath
	}
	u.Path = p
}

// JoinPath is base + resource, the collection path of a target (decoded).
func (t *Target) JoinPath() string { return t.BasePath + t.Resource }

// Factory makes the Dialect of one backend from a dialect's configuration;
// the Caddy modules of namespace erp.dialects implement it.
type Factory interface {
	ForBackend(name string) Dialect
}
