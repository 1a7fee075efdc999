package authsvc_test

import (
	"context"
	"strings"
	"testing"

	"github.com/erpgate/erpgate/authsvc"
	"github.com/erpgate/erpgate/authsvc/store"
)

func TestAdminAuthorization(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, external bool) {
		e := newEnv(t, envOpts{external: external})
		ctx := context.Background()
		root := e.session(t, "root@erpgate.local", "acme").str("access_token")
		aliceAcme := e.session(t, "alice@acme.test", "acme").str("access_token")     // admin of acme
		aliceGlobex := e.session(t, "alice@acme.test", "globex").str("access_token") // viewer of globex
		bob := e.session(t, "bob@globex.test", "globex").str("access_token")         // accountant of globex
		bobID := e.verifySub(t, bob)

		platformOnly := []req{
			{method: "GET", path: "/api/v1/admin/companies"},
			{method: "POST", path: "/api/v1/admin/companies", body: map[string]any{"id": "initech", "name": "Initech", "plan": "free"}},
			{method: "GET", path: "/api/v1/admin/companies/globex"},
			{method: "PATCH", path: "/api/v1/admin/companies/globex", body: map[string]any{"plan": "standard"}},
			{method: "GET", path: "/api/v1/admin/users"},
			{method: "POST", path: "/api/v1/admin/users", body: map[string]any{"email": "eve@x.test", "password": "long-enough-pw"}},
			{method: "GET", path: "/api/v1/admin/users/" + bobID},
			{method: "PATCH", path: "/api/v1/admin/users/" + bobID, body: map[string]any{"disabled": true}},
			{method: "POST", path: "/api/v1/admin/users/" + bobID + "/reset-password", body: map[string]any{"password": "long-enough-pw"}},
			{method: "GET", path: "/api/v1/admin/audit"},
		}
		globexMemberships := []req{
			{method: "GET", path: "/api/v1/admin/memberships?company_id=globex"},
			{method: "PUT", path: "/api/v1/admin/memberships/globex/" + bobID, body: map[string]any{"roles": []string{"owner"}}},
			{method: "DELETE", path: "/api/v1/admin/memberships/globex/" + bobID},
		}
		for _, caller := range []struct{ name, token string }{{"accountant", bob}, {"acme admin", aliceAcme}, {"globex viewer", aliceGlobex}, {"anonymous", ""}} {
			for _, r := range append(append([]req{}, platformOnly...), globexMemberships...) {
				r.bearer = caller.token
				a := e.do(t, r)
				want := 403
				if caller.token == "" {
					want = 401
				}
				if a.Status != want {
					t.Errorf("%s: %s %s = %d %s; want %d", caller.name, r.method, r.path, a.Status, a.Raw, want)
				}
			}
		}
		// None of the refusals changed anything.
		if acc, err := e.svc.Store().GetAccess(ctx, bobID, "globex"); err != nil || strings.Join(acc.Roles, ",") != "accountant" || acc.UserDisabled || acc.Company.Plan != "free" {
			t.Fatalf("bob in globex after refusals: %+v %v", acc, err)
		}
		if _, err := e.svc.Store().GetCompany(ctx, "initech"); err == nil {
			t.Fatal("a refused create made a company")
		}

		// A company admin manages their own company's memberships …
		a := e.do(t, req{method: "PUT", path: "/api/v1/admin/memberships/acme/bob@globex.test", bearer: aliceAcme, body: map[string]any{"roles": []string{"viewer"}}})
		if a.Status != 201 {
			t.Fatalf("acme admin adds bob to acme: %d %s", a.Status, a.Raw)
		}
		a = e.do(t, req{method: "GET", path: "/api/v1/admin/memberships", bearer: aliceAcme})
		if a.Status != 200 || a.Body["pagination"] == nil {
			t.Fatalf("acme admin lists: %d %s", a.Status, a.Raw)
		}
		for _, m := range a.Body["data"].([]any) {
			if m.(map[string]any)["company_id"] != "acme" {
				t.Fatalf("acme admin sees another company's membership: %v", m)
			}
		}
		// … but cannot make anyone an owner.
		if a := e.do(t, req{method: "PUT", path: "/api/v1/admin/memberships/acme/" + bobID, bearer: aliceAcme, body: map[string]any{"roles": []string{"owner"}}}); a.Status != 403 {
			t.Fatalf("admin granted owner: %d %s", a.Status, a.Raw)
		}
		if a := e.do(t, req{method: "DELETE", path: "/api/v1/admin/memberships/acme/" + bobID, bearer: aliceAcme}); a.Status != 200 {
			t.Fatalf("acme admin removes bob: %d %s", a.Status, a.Raw)
		}

		// A platform admin does everything.
		if a := e.do(t, req{method: "POST", path: "/api/v1/admin/companies", bearer: root, body: map[string]any{"id": "initech", "name": "Initech", "plan": "free"}}); a.Status != 201 {
			t.Fatalf("create company: %d %s", a.Status, a.Raw)
		}
		if a := e.do(t, req{method: "POST", path: "/api/v1/admin/companies", bearer: root, body: map[string]any{"id": "initech", "name": "Again"}}); a.Status != 409 {
			t.Fatalf("duplicate company: %d %s", a.Status, a.Raw)
		}
		if a := e.do(t, req{method: "PATCH", path: "/api/v1/admin/companies/initech", bearer: root, body: map[string]any{"name": "Initech Inc", "plan": "standard"}}); a.Status != 200 || a.str("name") != "Initech Inc" {
			t.Fatalf("rename company: %d %s", a.Status, a.Raw)
		}
		nu := e.do(t, req{method: "POST", path: "/api/v1/admin/users", bearer: root, body: map[string]any{"email": "Peter@Initech.test", "name": "Peter", "password": "tps-reports-1"}})
		if nu.Status != 201 || nu.str("email") != "peter@initech.test" {
			t.Fatalf("create user: %d %s", nu.Status, nu.Raw)
		}
		if a := e.do(t, req{method: "PUT", path: "/api/v1/admin/memberships/initech/" + nu.str("id"), bearer: root, body: map[string]any{"roles": []string{"owner"}}}); a.Status != 201 {
			t.Fatalf("make peter owner: %d %s", a.Status, a.Raw)
		}
		if l := e.login(t, "peter@initech.test", "tps-reports-1"); l.Status != 200 {
			t.Fatalf("new user logs in: %d %s", l.Status, l.Raw)
		}
		// Reset password: bob's sessions end.
		bobSession := e.session(t, "bob@globex.test", "globex")
		if a := e.do(t, req{method: "POST", path: "/api/v1/admin/users/" + bobID + "/reset-password", bearer: root, body: map[string]any{"password": "a-fresh-password"}}); a.Status != 200 {
			t.Fatalf("reset password: %d %s", a.Status, a.Raw)
		}
		if a := e.do(t, req{method: "POST", path: "/api/v1/auth/refresh", body: map[string]any{"refresh_token": bobSession.str("refresh_token")}}); a.Status != 401 {
			t.Fatalf("refresh after reset: %d %s", a.Status, a.Raw)
		}
		if !e.edgeTold(t, bobSession.str("session_id")) {
			t.Fatal("reset did not revoke bob's session at the edge")
		}
		// Disabling a company ends its sessions and refuses selecting it.
		peter := e.do(t, req{method: "POST", path: "/api/v1/auth/select-company", body: map[string]any{
			"login_token": e.login(t, "peter@initech.test", "tps-reports-1").str("login_token"), "company_id": "initech"}})
		if peter.Status != 200 {
			t.Fatalf("peter selects initech: %d %s", peter.Status, peter.Raw)
		}
		if a := e.do(t, req{method: "PATCH", path: "/api/v1/admin/companies/initech", bearer: root, body: map[string]any{"disabled": true}}); a.Status != 200 || a.data()["disabled"] != true {
			t.Fatalf("disable company: %d %s", a.Status, a.Raw)
		}
		if !e.edgeTold(t, peter.str("session_id")) {
			t.Fatal("disabling the company did not revoke its sessions")
		}
		if a := e.do(t, req{method: "POST", path: "/api/v1/auth/select-company", body: map[string]any{
			"login_token": e.login(t, "peter@initech.test", "tps-reports-1").str("login_token"), "company_id": "initech"}}); a.Status != 403 {
			t.Fatalf("select a disabled company: %d %s", a.Status, a.Raw)
		}

		// The audit trail, filtered and paginated.
		a = e.do(t, req{method: "GET", path: "/api/v1/admin/audit?company_id=initech&type=admin.company.created,admin.company.updated&limit=1", bearer: root})
		if a.Status != 200 {
			t.Fatalf("audit: %d %s", a.Status, a.Raw)
		}
		p, _ := a.Body["pagination"].(map[string]any)
		list, _ := a.Body["data"].([]any)
		if p == nil || p["total"].(float64) != 3 || p["has_next"] != true || len(list) != 1 {
			t.Fatalf("audit page: %s", a.Raw)
		}
		last := list[0].(map[string]any)
		if last["type"] != store.EventCompanyUpdated || last["actor_id"] != e.verifySub(t, root) || last["request_id"] == "" || last["ip"] == "" {
			t.Fatalf("newest record: %v", last)
		}
		if a := e.do(t, req{method: "GET", path: "/api/v1/admin/audit?since=yesterday", bearer: root}); a.Status != 422 {
			t.Fatalf("bad since: %d", a.Status)
		}
		all := e.do(t, req{method: "GET", path: "/api/v1/admin/audit?limit=200", bearer: root})
		if strings.Contains(all.Raw, "a-fresh-password") || strings.Contains(all.Raw, "tps-reports-1") || strings.Contains(all.Raw, authsvc.DemoPassword) {
			t.Fatal("a password is in the audit trail")
		}
	})
}

func TestChangePassword(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, external bool) {
		e := newEnv(t, envOpts{external: external})
		cur := e.session(t, "bob@globex.test", "globex")
		other := e.session(t, "bob@globex.test", "globex")
		tok := cur.str("access_token")
		if a := e.do(t, req{method: "POST", path: "/api/v1/auth/password", bearer: tok, body: map[string]any{"current_password": "wrong-one", "new_password": "new-password-1"}}); a.Status != 422 || a.code() != "VALIDATION_FAILED" {
			t.Fatalf("wrong current password: %d %s", a.Status, a.Raw)
		}
		if a := e.do(t, req{method: "POST", path: "/api/v1/auth/password", bearer: tok, body: map[string]any{"current_password": authsvc.DemoPassword, "new_password": "short"}}); a.Status != 422 {
			t.Fatalf("short new password: %d %s", a.Status, a.Raw)
		}
		if a := e.do(t, req{method: "POST", path: "/api/v1/auth/password", body: map[string]any{"current_password": authsvc.DemoPassword, "new_password": "new-password-1"}}); a.Status != 401 {
			t.Fatalf("without a token: %d %s", a.Status, a.Raw)
		}
		a := e.do(t, req{method: "POST", path: "/api/v1/auth/password", bearer: tok, body: map[string]any{"current_password": authsvc.DemoPassword, "new_password": "new-password-1"}})
		if a.Status != 200 {
			t.Fatalf("change: %d %s", a.Status, a.Raw)
		}
		if r := e.do(t, req{method: "POST", path: "/api/v1/auth/refresh", body: map[string]any{"refresh_token": other.str("refresh_token")}}); r.Status != 401 {
			t.Fatalf("the other session still refreshes: %d", r.Status)
		}
		if !e.edgeTold(t, other.str("session_id")) {
			t.Fatal("the other session is not revoked at the edge")
		}
		if r := e.do(t, req{method: "GET", path: "/api/v1/auth/me", bearer: tok}); r.Status != 200 {
			t.Fatalf("this session ended: %d", r.Status)
		}
		if l := e.login(t, "bob@globex.test", authsvc.DemoPassword); l.Status != 401 {
			t.Fatalf("old password still works: %d", l.Status)
		}
		if l := e.login(t, "bob@globex.test", "new-password-1"); l.Status != 200 {
			t.Fatalf("new password: %d", l.Status)
		}
		events, _, _ := e.svc.Store().ListAudit(context.Background(), store.AuditFilter{Types: []string{store.EventPasswordChanged, store.EventPasswordChangeFailed}}, store.Page{Limit: 10})
		if len(events) != 2 || events[0].Type != store.EventPasswordChanged || events[1].Type != store.EventPasswordChangeFailed {
			t.Fatalf("audit: %+v", events)
		}
	})
}
