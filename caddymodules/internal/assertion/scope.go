package assertion

// The permission check on a verified scope, shared by erp_authz (a proxied
// request's {backend}:read|write) and erp_graphql (each backend a query
// reads or writes). No Caddy import.

import "strings"

// HasScopeParts is HasScope(scopes, prefix+suffix) without the concatenation.
func HasScopeParts(scopes, prefix, suffix string) bool {
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

// HasScope reports whether the space-separated scopes hold s.
func HasScope(scopes, s string) bool {
	for rest := scopes; rest != ""; {
		var f string
		f, rest, _ = strings.Cut(rest, " ")
		if f == s {
			return true
		}
	}
	return false
}
