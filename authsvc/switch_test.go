package authsvc_test

import (
	"context"
	"slices"
	"testing"

	"github.com/erpgate/erpgate/authsvc/store"
)

// Switch-company reads the access, checks it and switches in one step:
// every refusal answers as before, and a switch is audited.
func TestSwitchCompanyChecks(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, external bool) {
		e := newEnv(t, envOpts{external: external})
		ctx := context.Background()
		sw := func(bearer, company string) answer {
			t.Helper()
			return e.do(t, req{method: "POST", path: "/api/v1/auth/switch-company", bearer: bearer, body: map[string]any{"company_id": company}})
		}

		// A platform admin switches to any company, with no roles.
		root := e.session(t, "root@erpgate.local", "acme")
		a := sw(root.str("access_token"), "globex")
		if a.Status != 200 {
			t.Fatalf("platform admin's switch: %d %s", a.Status, a.Raw)
		}
		claims, _ := e.verify(t, a.str("access_token"))
		if claims["cid"] != "globex" || len(toStrings(claims["roles"])) != 0 || claims["scope"] != "" || claims["plan"] != "free" {
			t.Fatalf("platform admin's claims: %v", claims)
		}
		if a := sw(a.str("access_token"), "no-such-company"); a.Status != 403 || a.code() != "FORBIDDEN" {
			t.Fatalf("switch to a missing company: %d %s", a.Status, a.Raw)
		}

		// A member's switch is audited: who, from where to where, which session.
		alice := e.session(t, "alice@acme.test", "acme")
		a = sw(alice.str("access_token"), "globex")
		if a.Status != 200 {
			t.Fatalf("switch: %d %s", a.Status, a.Raw)
		}
		claims, _ = e.verify(t, a.str("access_token"))
		events, _, err := e.svc.Store().ListAudit(ctx, store.AuditFilter{Types: []string{store.EventCompanySwitched}}, store.Page{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(events) != 2 {
			t.Fatalf("%d switch events, want 2", len(events))
		}
		i := slices.IndexFunc(events, func(ev store.Event) bool { return ev.SubjectID == alice.str("session_id") })
		if i < 0 {
			t.Fatalf("no switch event of the session: %+v", events)
		}
		if ev := events[i]; ev.ActorID != claims["sub"] || ev.CompanyID != "globex" || ev.Details["from_company_id"] != "acme" {
			t.Fatalf("switch event: %+v", ev)
		}
		if check, err := e.svc.VerifyAudit(ctx); err != nil || !check.OK {
			t.Fatalf("audit trail: %v %v", check, err)
		}
		back := a.str("access_token")

		// A disabled company is refused; nothing is recorded.
		off := true
		if _, _, err := e.svc.Store().UpdateCompany(ctx, "acme", store.CompanyUpdate{Disabled: &off}, e.clock.Now(), store.Event{Type: store.EventCompanyUpdated}); err != nil {
			t.Fatal(err)
		}
		if a := sw(back, "acme"); a.Status != 403 || a.code() != "FORBIDDEN" {
			t.Fatalf("switch to a disabled company: %d %s", a.Status, a.Raw)
		}
		on := false
		if _, _, err := e.svc.Store().UpdateCompany(ctx, "acme", store.CompanyUpdate{Disabled: &on}, e.clock.Now(), store.Event{Type: store.EventCompanyUpdated}); err != nil {
			t.Fatal(err)
		}
		if _, n, _ := e.svc.Store().ListAudit(ctx, store.AuditFilter{Types: []string{store.EventCompanySwitched}}, store.Page{Limit: 1}); n != 2 {
			t.Fatalf("%d switch events after a refusal, want 2", n)
		}

		// An ended session is refused.
		bob := e.session(t, "bob@globex.test", "globex")
		if a := e.do(t, req{method: "POST", path: "/api/v1/auth/logout", bearer: bob.str("access_token"), body: map[string]any{}}); a.Status != 200 {
			t.Fatalf("logout: %d %s", a.Status, a.Raw)
		}
		if a := sw(bob.str("access_token"), "globex"); a.Status != 401 || a.code() != "TOKEN_REVOKED" {
			t.Fatalf("switch of an ended session: %d %s", a.Status, a.Raw)
		}

		// A disabled user is refused (their token is still within its lifetime).
		if err := e.svc.SetUserDisabled(ctx, claims["sub"].(string), true); err != nil {
			t.Fatal(err)
		}
		if a := sw(back, "acme"); a.Status != 401 || a.code() != "TOKEN_REVOKED" {
			t.Fatalf("switch of a disabled user: %d %s", a.Status, a.Raw)
		}
	})
}
