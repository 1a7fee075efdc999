package version

// This file has no Caddy import: version negotiation, tested and
// benchmarked alone. The path is split by internal/reqpath's rule.

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// looksLikeVersion reports whether s has version syntax: v<digits>[.<digits>].
func looksLikeVersion(s string) bool {
	if len(s) < 2 || len(s) > 10 || s[0] != 'v' {
		return false
	}
	dot := false
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
		case c == '.' && !dot && i > 1 && i < len(s)-1:
			dot = true
		default:
			return false
		}
	}
	return true
}

// headerVersion reads the version a request asks for by header: API-Version
// (v2 or 2), else the first application/vnd.erp.{version}+json media range
// of Accept. conflict is true when both are given and disagree.
func headerVersion(h http.Header) (v string, conflict bool) {
	if vals := h["Api-Version"]; len(vals) > 0 {
		v = strings.TrimSpace(vals[0])
		if v != "" && v[0] >= '0' && v[0] <= '9' {
			v = "v" + v
		}
		if len(vals) > 1 {
			return v, true
		}
	}
	for _, a := range h["Accept"] {
		if !containsFold(a, "vnd.erp.") {
			continue
		}
		for part := range strings.SplitSeq(a, ",") {
			mt, _, _ := strings.Cut(part, ";")
			mt = strings.TrimSpace(mt)
			rest, ok := strings.CutPrefix(strings.ToLower(mt), "application/vnd.erp.")
			if !ok {
				continue
			}
			av, ok := strings.CutSuffix(rest, "+json")
			if !ok || av == "" {
				continue
			}
			if v != "" && v != av {
				return v, true
			}
			return av, false
		}
	}
	return v, false
}

// deprecationValue is RFC 9745's structured-field date: "@" + Unix seconds.
func deprecationValue(t time.Time) string {
	return "@" + strconv.FormatInt(t.Unix(), 10)
}

// sunsetValue is RFC 8594's HTTP-date (IMF-fixdate).
func sunsetValue(t time.Time) string {
	return t.UTC().Format(http.TimeFormat)
}

// successorLink is an RFC 8288 Link value with rel="successor-version".
func successorLink(target string) string {
	return "<" + target + `>; rel="successor-version"`
}

// containsFold is strings.Contains ignoring ASCII case, without allocating.
func containsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}
