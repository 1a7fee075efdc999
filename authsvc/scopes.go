package authsvc

import (
	mathbits "math/bits"
	"slices"
	"sort"
	"strings"
	"sync"
)

// Roles a membership can hold, most powerful first.
const (
	RoleOwner      = "owner"
	RoleAdmin      = "admin"
	RoleAccountant = "accountant"
	RoleSales      = "sales"
	RoleViewer     = "viewer"
)

// Backends are the ERP services scopes are granted on; a scope is
// `{backend}:read` or `{backend}:write` (the edge derives the permission a
// request needs the same way, DESIGN.md "The request path").
var Backends = []string{"customers", "invoices", "ledger", "products", "inventory", "journal"}

// EdgeResources are what the edge itself serves to a company and guards by
// scope the way it guards backends: `webhooks:read` lets a caller list its
// company's webhook endpoints and their deliveries, `webhooks:write`
// create, change, test and delete them (internal/events' ScopeWebhooksRead
// and ScopeWebhooksWrite; webhooks:read also reads the auth, security,
// webhook and admin event types on the company's event stream).
var EdgeResources = []string{"webhooks"}

// roleScopes is the documented role → scope table (backends, then the
// edge's own resources):
//
//	role        customers  invoices  ledger  products  inventory  webhooks
//	owner       rw         rw        rw      rw        rw         rw
//	admin       rw         rw        rw      rw        rw         rw
//	accountant  r          rw        rw      r         r          -
//	sales       rw         rw        r       r         r          -
//	viewer      r          r         r       r         r          -
//
// and journal (the demo's read-only posting journal, a million computed
// lines for exports) r for every role.
//
// owner and admin also manage the company's API keys (not a scope: a role check).
var roleScopes = map[string]map[string]string{
	RoleOwner:      {"customers": "rw", "invoices": "rw", "ledger": "rw", "products": "rw", "inventory": "rw", "webhooks": "rw", "journal": "r"},
	RoleAdmin:      {"customers": "rw", "invoices": "rw", "ledger": "rw", "products": "rw", "inventory": "rw", "webhooks": "rw", "journal": "r"},
	RoleAccountant: {"customers": "r", "invoices": "rw", "ledger": "rw", "products": "r", "inventory": "r", "journal": "r"},
	RoleSales:      {"customers": "rw", "invoices": "rw", "ledger": "r", "products": "r", "inventory": "r", "journal": "r"},
	RoleViewer:     {"customers": "r", "invoices": "r", "ledger": "r", "products": "r", "inventory": "r", "journal": "r"},
}

// ValidRole reports whether r is a known role.
func ValidRole(r string) bool { _, ok := roleScopes[r]; return ok }

// allScopes is every scope a role can grant, sorted, so that a set of scopes
// is a bit set (bit i: allScopes[i]); roleScopeBits is each role's set. Both
// are derived from roleScopes once.
var allScopes, roleScopeBits = func() ([]string, map[string]uint64) {
	set := map[string]bool{}
	for _, grants := range roleScopes {
		for backend, access := range grants {
			if strings.Contains(access, "r") {
				set[backend+":read"] = true
			}
			if strings.Contains(access, "w") {
				set[backend+":write"] = true
			}
		}
	}
	all := make([]string, 0, len(set))
	for sc := range set {
		all = append(all, sc)
	}
	sort.Strings(all)
	if len(all) > 64 {
		panic("authsvc: more than 64 scopes")
	}
	bits := make(map[string]uint64, len(roleScopes))
	for role, grants := range roleScopes {
		var b uint64
		for backend, access := range grants {
			if strings.Contains(access, "r") {
				b |= 1 << slices.Index(all, backend+":read")
			}
			if strings.Contains(access, "w") {
				b |= 1 << slices.Index(all, backend+":write")
			}
		}
		bits[role] = b
	}
	return all, bits
}()

// scopeBits is the union of the scopes of roles, as a bit set over allScopes.
func scopeBits(roles []string) uint64 {
	var b uint64
	for _, r := range roles {
		b |= roleScopeBits[r]
	}
	return b
}

// ScopesFor is the sorted union of the scopes of roles (unknown roles add nothing).
func ScopesFor(roles []string) []string {
	bits := scopeBits(roles)
	out := make([]string, 0, mathbits.OnesCount64(bits))
	for i, sc := range allScopes {
		if bits&(1<<i) != 0 {
			out = append(out, sc)
		}
	}
	return out
}

// scopeStrings caches the `scope` claim (the space-separated ScopesFor) per
// set of scopes: there are few sets (one per combination of roles in use).
var scopeStrings struct {
	mu sync.RWMutex
	m  map[uint64]string
}

// scopeString is ScopesFor(roles) joined by spaces: the `scope` claim.
func scopeString(roles []string) string {
	bits := scopeBits(roles)
	scopeStrings.mu.RLock()
	s, ok := scopeStrings.m[bits]
	scopeStrings.mu.RUnlock()
	if ok {
		return s
	}
	s = strings.Join(ScopesFor(roles), " ")
	scopeStrings.mu.Lock()
	if scopeStrings.m == nil {
		scopeStrings.m = map[uint64]string{}
	}
	scopeStrings.m[bits] = s
	scopeStrings.mu.Unlock()
	return s
}

// canManageKeys: owners and admins manage a company's API keys.
func canManageKeys(roles []string) bool {
	return slices.Contains(roles, RoleOwner) || slices.Contains(roles, RoleAdmin)
}

// validScope reports whether s is `{resource}:read|write` for a known
// backend or edge resource (what an API key may be granted).
func validScope(s string) bool {
	b, a, ok := strings.Cut(s, ":")
	return ok && (slices.Contains(Backends, b) || slices.Contains(EdgeResources, b)) && (a == "read" || a == "write")
}
