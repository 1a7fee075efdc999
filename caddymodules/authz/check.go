package authz

// This file has no Caddy import: the path, header and company checks test
// and benchmark alone.

import (
	"github.com/erpgate/erpgate/internal/clientheaders"
	"net/http"
	"net/url"
	"strings"
)

// canonicalPath reports whether an escaped path is in canonical form: no dot
// segments, no empty segments, no backslashes or NUL, and no percent-encoding
// of a character that needs none (RFC 3986 §6.2.2) — in particular no
// encoded dot, slash or backslash. A request is authorised only in its
// canonical form; anything else is refused rather than reinterpreted.
func canonicalPath(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch c {
		case '\\', 0:
			return false
		case '/':
			if i+1 < len(p) && p[i+1] == '/' {
				return false
			}
			rest := p[i+1:]
			if rest == "." || rest == ".." || strings.HasPrefix(rest, "./") || strings.HasPrefix(rest, "../") {
				return false
			}
		case '%':
			if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
				return false
			}
			d := unhex(p[i+1])<<4 | unhex(p[i+2])
			if isUnreserved(d) || d == '/' || d == '\\' || d == 0 || d == '%' {
				return false
			}
		}
	}
	return true
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

func isUnreserved(c byte) bool {
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~'
}

// stripped recognises the headers removed from every client request, in
// any spelling (case, `_` for `-`): the identity only the edge may state
// (erp_envelope removes them first, with the configured identity-like
// headers; this is the same rule again for configs without it), and
// method overrides that would make a backend act on another method than the
// one authorised.
var stripped = func() *clientheaders.Matcher {
	m, err := clientheaders.New(clientheaders.Edge, []string{"X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override"})
	if err != nil {
		panic(err) // a constant list
	}
	return m
}()

// stripHeaders removes the stripped headers in every spelling.
func stripHeaders(h http.Header) { stripped.Strip(h) }

// companyInPath returns the ids that follow a `companies` segment of an
// escaped path (unescaped), for comparison with the caller's company.
func companyInPath(p string) []string {
	var out []string
	for rest := p; ; {
		i := strings.IndexByte(rest, '/')
		if i < 0 {
			return out
		}
		if strings.EqualFold(rest[:i], "companies") {
			next := rest[i+1:]
			if j := strings.IndexByte(next, '/'); j >= 0 {
				next = next[:j]
			}
			v, err := url.PathUnescape(next)
			if err != nil {
				v = next
			}
			out = append(out, v)
		}
		rest = rest[i+1:]
	}
}

// companyQueryKeys are query parameters that name a company.
var companyQueryKeys = []string{"company_id", "companyid", "company"}

// companyInQuery returns every company named by the query (any key case).
func companyInQuery(q url.Values) []string {
	var out []string
	for k, vs := range q {
		for _, ck := range companyQueryKeys {
			if strings.EqualFold(k, ck) {
				out = append(out, vs...)
			}
		}
	}
	return out
}

// derivedAction is the suffix of the permission a request needs when the
// route names none (`{backend}:read` for GET, HEAD and OPTIONS,
// `{backend}:write` otherwise).
func derivedAction(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return ":read"
	}
	return ":write"
}

// hasScopeParts is hasScope(scopes, prefix+suffix) without the concatenation.
func hasScopeParts(scopes, prefix, suffix string) bool {
	n := len(prefix) + len(suffix)
	for rest := scopes; rest != ""; {
		var f string
		f, rest, _ = strings.Cut(rest, " ")
		if len(f) == n && f[:len(prefix)] == prefix && f[len(prefix):] == suffix {
			return true
		}
	}
	return false
}

// hasScope reports whether the space-separated scopes hold s.
func hasScope(scopes, s string) bool {
	for rest := scopes; rest != ""; {
		var f string
		f, rest, _ = strings.Cut(rest, " ")
		if f == s {
			return true
		}
	}
	return false
}

// containsFold reports whether s contains the lower-case ASCII sub, ignoring case.
func containsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		j := 0
		for ; j < len(sub); j++ {
			c := s[i+j]
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != sub[j] {
				break
			}
		}
		if j == len(sub) {
			return true
		}
	}
	return false
}
