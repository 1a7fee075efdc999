package authsvc_test

import (
	"context"
	"testing"

	"github.com/erpgate/erpgate/authsvc"
	"github.com/erpgate/erpgate/authsvc/store"
)

// A locked account (the security monitor's lock_account) is refused with
// the answer of a wrong password, audited as user_locked, and logs in
// again once a platform admin unlocks it.
func TestLockAccountAndAdminUnlock(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, external bool) {
		e := newEnv(t, envOpts{external: external})
		ctx := context.Background()
		root := e.session(t, "root@erpgate.local", "acme").str("access_token")
		bob := e.session(t, "bob@globex.test", "globex").str("access_token")
		bobID := e.verifySub(t, bob)

		wrong := e.login(t, "bob@globex.test", "not-the-password")
		if err := e.svc.LockAccount(ctx, bobID, "password_guessing"); err != nil {
			t.Fatal(err)
		}
		if err := e.svc.LockAccount(ctx, bobID, "password_guessing"); err != nil { // again: nothing more
			t.Fatal(err)
		}
		locked := e.login(t, "bob@globex.test", authsvc.DemoPassword)
		if locked.Status != wrong.Status || locked.code() != wrong.code() || locked.Body["errors"].([]any)[0].(map[string]any)["message"] != wrong.Body["errors"].([]any)[0].(map[string]any)["message"] {
			t.Fatalf("a locked account's login = %d %s; a wrong password's = %d %s", locked.Status, locked.Raw, wrong.Status, wrong.Raw)
		}
		evs, _, err := e.svc.Store().ListAudit(ctx, store.AuditFilter{UserID: bobID, Types: []string{store.EventLoginFailed}}, store.Page{Limit: 1})
		if err != nil || len(evs) != 1 || evs[0].Details["reason"] != "user_locked" {
			t.Fatalf("audit of the refusal: %+v %v", evs, err)
		}
		upd, _, err := e.svc.Store().ListAudit(ctx, store.AuditFilter{UserID: bobID, Types: []string{store.EventUserUpdated}}, store.Page{Limit: 10})
		if err != nil || len(upd) != 1 || upd[0].Details["locked"] != "true" || upd[0].Details["reason"] != "security.password_guessing" {
			t.Fatalf("audit of the lock: %+v %v", upd, err)
		}
		got := e.do(t, req{method: "GET", path: "/api/v1/admin/users/" + bobID, bearer: root})
		if got.Status != 200 || got.data()["locked"] != true {
			t.Fatalf("admin view: %d %s", got.Status, got.Raw)
		}
		// Bob's session still works: a lock stops logins, not sessions.
		if me := e.do(t, req{method: "GET", path: "/api/v1/auth/me", bearer: bob}); me.Status != 200 {
			t.Fatalf("me while locked: %d %s", me.Status, me.Raw)
		}
		// Bob can't unlock himself; the platform admin can.
		if a := e.do(t, req{method: "PATCH", path: "/api/v1/admin/users/" + bobID, bearer: bob, body: map[string]any{"locked": false}}); a.Status != 403 {
			t.Fatalf("self-unlock = %d %s", a.Status, a.Raw)
		}
		un := e.do(t, req{method: "PATCH", path: "/api/v1/admin/users/" + bobID, bearer: root, body: map[string]any{"locked": false}})
		if un.Status != 200 || un.data()["locked"] != false {
			t.Fatalf("unlock: %d %s", un.Status, un.Raw)
		}
		if l := e.login(t, "bob@globex.test", authsvc.DemoPassword); l.Status != 200 {
			t.Fatalf("login after unlock: %d %s", l.Status, l.Raw)
		}
	})
}
