package eventstream

import (
	"errors"
	"strconv"
	"strings"

	"github.com/erpgate/erpgate/internal/events"
)

// Bounds of a stream request.
const (
	MaxPatterns = 32
	maxIDLen    = 20 // digits of a uint64
)

// Errors of ParseTypes and ParseLastEventID.
var (
	ErrBadTypes       = errors.New("types must be comma-separated event type patterns such as erp.invoices.* (at most 32)")
	ErrBadLastEventID = errors.New("the last event id must be the decimal sequence of an event the stream sent")
)

// ParseTypes reads `?types=` (comma-separated patterns, events.ValidPattern).
// Empty: nil (every type the caller may read). Duplicates are dropped.
func ParseTypes(raw string) ([]string, error) {
	if raw == "" {
		return nil, nil
	}
	if strings.Count(raw, ",") >= MaxPatterns {
		return nil, ErrBadTypes
	}
	var out []string
	for p := range strings.SplitSeq(raw, ",") {
		p = strings.TrimSpace(p)
		if !events.ValidPattern(p) {
			return nil, ErrBadTypes
		}
		dup := false
		for _, q := range out {
			dup = dup || q == p
		}
		if !dup {
			out = append(out, p)
		}
	}
	for _, p := range out {
		if p == "*" {
			return nil, nil // every type: the same as none
		}
	}
	return out, nil
}

// ParseLastEventID reads a Last-Event-ID: empty is no resume.
func ParseLastEventID(s string) (after uint64, resume bool, err error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, false, nil
	}
	if len(s) > maxIDLen {
		return 0, false, ErrBadLastEventID
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, false, ErrBadLastEventID
	}
	return n, true, nil
}

// SplitScope splits a space-separated scope.
func SplitScope(scope string) []string {
	return strings.Fields(scope)
}

// Unreadable returns the first pattern no type of which the scopes may read
// (events.ReadScope), or "". A pattern naming the kind of event
// (`erp.invoices.*`, `erp.auth.login.*`) needs that kind's scope; one that
// leaves it open (`*`, `erp.*`, `erp.*.created`) may match something the
// caller reads, and the stream filters each event by the caller's scope.
func Unreadable(patterns, scopes []string) string {
	for _, p := range patterns {
		if need := PatternScope(p); need != "" && !hasScope(scopes, need) {
			return p
		}
	}
	return ""
}

// PatternScope is the scope every type matching pattern needs, or "" when
// the pattern leaves the kind of event open.
func PatternScope(pattern string) string {
	first, rest, more := strings.Cut(pattern, ".")
	switch {
	case first == "*":
		return ""
	case first != "erp":
		return events.ReadScope(pattern) // not a business event
	case !more:
		return events.ReadScope("erp")
	}
	kind, _, _ := strings.Cut(rest, ".")
	if kind == "*" {
		return ""
	}
	return events.ReadScope("erp." + kind)
}
