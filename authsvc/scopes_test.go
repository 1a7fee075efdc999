package authsvc

import (
	"slices"
	"testing"
)

// TestWebhookScopes: owners and admins manage their company's webhooks
// (webhooks:read and webhooks:write), no other role does, and an API key
// may be granted them.
func TestWebhookScopes(t *testing.T) {
	t.Parallel()
	for _, role := range []string{RoleOwner, RoleAdmin} {
		sc := ScopesFor([]string{role})
		if !slices.Contains(sc, "webhooks:read") || !slices.Contains(sc, "webhooks:write") {
			t.Errorf("%s: %v, want webhooks:read and webhooks:write", role, sc)
		}
	}
	for _, role := range []string{RoleAccountant, RoleSales, RoleViewer} {
		for _, sc := range ScopesFor([]string{role}) {
			if sc == "webhooks:read" || sc == "webhooks:write" {
				t.Errorf("%s has %s", role, sc)
			}
		}
	}
	if got := scopeString([]string{RoleViewer, RoleAdmin}); got != "customers:read customers:write inventory:read inventory:write invoices:read invoices:write journal:read ledger:read ledger:write products:read products:write webhooks:read webhooks:write" {
		t.Errorf("admin's scope claim: %q", got)
	}
	for s, want := range map[string]bool{
		"webhooks:read": true, "webhooks:write": true, "invoices:read": true,
		"webhooks:admin": false, "webhooks": false, "events:read": false, ":read": false, "Webhooks:read": false,
	} {
		if validScope(s) != want {
			t.Errorf("validScope(%q) = %v", s, !want)
		}
	}
}
