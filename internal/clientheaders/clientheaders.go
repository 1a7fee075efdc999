// Package clientheaders removes identity-like headers a client sent, so that
// nothing behind the edge (its own handlers, the auth service, a backend)
// can take them for a statement of the edge. It owns those lists of names
// and the matching rule, no state; of ours it imports only contract, and it
// must not import Caddy or anything under caddymodules/.
//
// Names are compared case-insensitively and with `_` and `-` alike: Go keeps
// `X_User_ID` as a header distinct from `X-User-Id`, but many frameworks
// (CGI, WSGI, Rack, PHP) read both as HTTP_X_USER_ID. A name ending in `*`
// is a prefix (`X-Auth-Request-*`).
package clientheaders

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/erpgate/erpgate/contract"
)

// Edge lists the headers only the edge sets (its verified identity and the
// edge assertion): they are always removed from what a client sent.
var Edge = []string{
	contract.HeaderCompanyID, contract.HeaderUserID, contract.HeaderRoles, contract.HeaderScope, contract.HeaderAssertion,
}

// Default lists the identity-like headers removed unless the configuration
// says otherwise: what authenticating proxies (oauth2-proxy, Authelia,
// Apache, nginx auth_request) and frameworks behind them commonly trust.
var Default = []string{
	"X-User-ID", "X-User", "X-Roles", "X-Company-ID", "X-Tenant-ID",
	"X-Forwarded-User", "X-Forwarded-Email", "X-Forwarded-Groups", "X-Forwarded-Preferred-Username",
	"X-Remote-User", "Remote-User", "Remote-Groups", "Remote-Email", "Remote-Name",
	"X-Auth-Request-*",
}

// DefaultWord in a configured list stands for Default.
const DefaultWord = "default"

// Matcher recognises the header names of a list.
type Matcher struct {
	first    [256]bool  // the normalised first byte of every name and prefix
	byLen    [][]string // normalised exact names by length
	prefixes []string   // normalised prefixes
}

// Expand replaces DefaultWord in names by Default.
func Expand(names []string) []string {
	out := make([]string, 0, len(names)+len(Default))
	for _, n := range names {
		if n == DefaultWord {
			out = append(out, Default...)
			continue
		}
		out = append(out, n)
	}
	return out
}

// Check reports the first name that is not a header name (or a prefix of
// one ending in `*`).
func Check(names []string) error {
	for _, n := range names {
		if n == DefaultWord {
			continue
		}
		base := strings.TrimSuffix(n, "*")
		if base == "" {
			return errors.New("an empty header name")
		}
		for i := 0; i < len(base); i++ {
			if !isTokenByte(base[i]) {
				return fmt.Errorf("%q is not a header name (a trailing * makes a prefix)", n)
			}
		}
	}
	return nil
}

func isTokenByte(c byte) bool {
	return c > ' ' && c < 0x7f && !strings.ContainsRune(`"(),/:;<=>?@[\]{}*`, rune(c))
}

// New builds a Matcher of names (DefaultWord expanded).
func New(names ...[]string) (*Matcher, error) {
	m := &Matcher{}
	for _, list := range names {
		if err := Check(list); err != nil {
			return nil, err
		}
		for _, n := range Expand(list) {
			norm := normalise(n)
			if p, ok := strings.CutSuffix(norm, "*"); ok {
				m.prefixes = append(m.prefixes, p)
			} else {
				for len(m.byLen) <= len(norm) {
					m.byLen = append(m.byLen, nil)
				}
				m.byLen[len(norm)] = append(m.byLen[len(norm)], norm)
			}
			m.first[norm[0]] = true
			m.first[upper(norm[0])] = true
			if norm[0] == '-' {
				m.first['_'] = true
			}
		}
	}
	return m, nil
}

// Match reports whether the header name k is in the list.
func (m *Matcher) Match(k string) bool {
	if k == "" || !m.first[k[0]] {
		return false
	}
	if len(k) < len(m.byLen) {
		for _, n := range m.byLen[len(k)] {
			if sameNorm(k, n) {
				return true
			}
		}
	}
	for _, p := range m.prefixes {
		if len(k) >= len(p) && sameNorm(k[:len(p)], p) {
			return true
		}
	}
	return false
}

// Strip removes from h every header of the list, in any spelling. It
// allocates nothing.
func (m *Matcher) Strip(h http.Header) {
	for k := range h {
		if m.Match(k) {
			delete(h, k)
		}
	}
}

// normalise lower-cases a name and spells `_` as `-`.
func normalise(s string) string {
	b := []byte(s)
	for i, c := range b {
		b[i] = lower(c)
	}
	return string(b)
}

func lower(c byte) byte {
	if c == '_' {
		return '-'
	}
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func upper(c byte) byte {
	if 'a' <= c && c <= 'z' {
		return c - ('a' - 'A')
	}
	return c
}

// sameNorm compares k with a normalised name of the same length.
func sameNorm(k, norm string) bool {
	for i := 0; i < len(k); i++ {
		if lower(k[i]) != norm[i] {
			return false
		}
	}
	return true
}
