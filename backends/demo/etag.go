package demo

import (
	"encoding/json"
	"hash/fnv"
	"net/http"
	"strconv"
	"strings"
)

// Record versions. The demo versions a record as a real ERP does: every
// item answer carries a strong ETag, the FNV-64a hash of the representation
// it sends (so v1 and v2 of one record have their own validators, as RFC
// 9110 wants of a strong validator); If-Match on PUT, PATCH and DELETE and
// If-None-Match on GET and HEAD are evaluated as RFC 9110 section 13 says.

// etagOf is the strong entity tag of a rendered body, quotes included.
func etagOf(body []byte) string {
	h := fnv.New64a()
	_, _ = h.Write(body)
	var b [18]byte
	out := append(b[:0], '"')
	out = strconv.AppendUint(out, h.Sum64(), 16)
	return string(append(out, '"'))
}

// renderETag renders v and returns the JSON body and its ETag.
func renderETag(v any) ([]byte, string, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return nil, "", err
	}
	return body, etagOf(body), nil
}

// opaque strips a weak prefix; ok is false for a malformed tag.
func opaque(tag string) (string, bool, bool) {
	weak := false
	if t, ok := strings.CutPrefix(tag, "W/"); ok {
		tag, weak = t, true
	}
	if len(tag) < 2 || tag[0] != '"' || tag[len(tag)-1] != '"' {
		return "", weak, false
	}
	return tag, weak, true
}

// matchList evaluates an If-Match (strong comparison) or If-None-Match
// (weak comparison) field against the current tag: true when one member
// matches or the field is "*" (the record exists: callers only ask then).
func matchList(values []string, current string, strong bool) bool {
	for _, v := range values {
		for part := range strings.SplitSeq(v, ",") {
			part = strings.TrimSpace(part)
			if part == "*" {
				return true
			}
			tag, weak, ok := opaque(part)
			if !ok || (strong && weak) {
				continue
			}
			if tag == current {
				return true
			}
		}
	}
	return false
}

// ifMatchFails reports whether r's If-Match excludes the current version.
func ifMatchFails(r *http.Request, current string) bool {
	vals := r.Header.Values("If-Match")
	return len(vals) > 0 && !matchList(vals, current, true)
}

// ifNoneMatchHits reports whether r's If-None-Match names the current version.
func ifNoneMatchHits(r *http.Request, current string) bool {
	vals := r.Header.Values("If-None-Match")
	return len(vals) > 0 && matchList(vals, current, false)
}

// preconditionFailed is the 412 answer to a stale If-Match.
func preconditionFailed(w http.ResponseWriter, name, id, current string) {
	w.Header().Set("ETag", current)
	writeProblem(w, newProblem(http.StatusPreconditionFailed, "precondition-failed",
		"%s %q has changed: its current version is %s", name, id, current))
}

// writeTagged answers a rendered record with its ETag.
func writeTagged(w http.ResponseWriter, status int, body []byte, tag string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("ETag", tag)
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
