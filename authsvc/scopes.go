package authsvc

import (
	"slices"
	"sort"
	"strings"
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
var Backends = []string{"customers", "invoices", "ledger", "products", "inventory"}

// roleScopes is the documented role → scope table:
//
//	role        customers  invoices  ledger  products  inventory
//	owner       rw         rw        rw      rw        rw
//	admin       rw         rw        rw      rw        rw
//	accountant  r          rw        rw      r         r
//	sales       rw         rw        r       r         r
//	viewer      r          r         r       r         r
//
// owner and admin also manage the company's API keys (not a scope: a role check).
var roleScopes = map[string]map[string]string{
	RoleOwner:      {"customers": "rw", "invoices": "rw", "ledger": "rw", "products": "rw", "inventory": "rw"},
	RoleAdmin:      {"customers": "rw", "invoices": "rw", "ledger": "rw", "products": "rw", "inventory": "rw"},
	RoleAccountant: {"customers": "r", "invoices": "rw", "ledger": "rw", "products": "r", "inventory": "r"},
	RoleSales:      {"customers": "rw", "invoices": "rw", "ledger": "r", "products": "r", "inventory": "r"},
	RoleViewer:     {"customers": "r", "invoices": "r", "ledger": "r", "products": "r", "inventory": "r"},
}

// ValidRole reports whether r is a known role.
func ValidRole(r string) bool { _, ok := roleScopes[r]; return ok }

// ScopesFor is the sorted union of the scopes of roles (unknown roles add nothing).
func ScopesFor(roles []string) []string {
	set := map[string]bool{}
	for _, r := range roles {
		for backend, access := range roleScopes[r] {
			if strings.Contains(access, "r") {
				set[backend+":read"] = true
			}
			if strings.Contains(access, "w") {
				set[backend+":write"] = true
			}
		}
	}
	out := make([]string, 0, len(set))
	for s := range set {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// canManageKeys: owners and admins manage a company's API keys.
func canManageKeys(roles []string) bool {
	return slices.Contains(roles, RoleOwner) || slices.Contains(roles, RoleAdmin)
}

// validScope reports whether s is `{backend}:read|write` for a known backend.
func validScope(s string) bool {
	b, a, ok := strings.Cut(s, ":")
	return ok && slices.Contains(Backends, b) && (a == "read" || a == "write")
}
