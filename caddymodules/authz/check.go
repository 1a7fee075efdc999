package authz

// This file has no Caddy import: the header and company checks test and
// benchmark alone. Whether a path is canonical is internal/reqpath's rule.

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/erpgate/erpgate/internal/clientheaders"
)

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
