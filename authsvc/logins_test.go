package authsvc_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/erpgate/erpgate/authsvc"
	"github.com/erpgate/erpgate/authsvc/store"
)

// TestLoginRehashes: a hash made with other parameters than the configured
// ones is replaced at the next successful login (same password, the new
// parameters), and the login after it still works; a failed login changes
// nothing. Both stores.
func TestLoginRehashes(t *testing.T) {
	for _, external := range []bool{false, true} {
		name := map[bool]string{false: "memory", true: "postgres"}[external]
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, envOpts{external: external, hasher: authsvc.NewArgon2idParams(2, 128, 1, 2)})
			ctx := context.Background()
			if a := e.login(t, "alice@acme.test", authsvc.DemoPassword); a.Status != 200 { // seeds
				t.Fatalf("login: %d %s", a.Status, a.Raw)
			}
			st := e.svc.Store()
			u, err := st.GetUserByEmail(ctx, "alice@acme.test")
			if err != nil {
				t.Fatal(err)
			}
			old, err := authsvc.NewArgon2idParams(1, 64, 1, 1).Hash(ctx, authsvc.DemoPassword)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := st.SetPasswordHash(ctx, u.ID, old, "", e.clock.Now(), store.Event{Time: e.clock.Now(), Type: "test"}); err != nil {
				t.Fatal(err)
			}
			stored := func() string {
				u, err := st.GetUser(ctx, u.ID)
				if err != nil {
					t.Fatal(err)
				}
				return u.PasswordHash
			}
			if a := e.login(t, "alice@acme.test", "wrong password"); a.Status != 401 || stored() != old {
				t.Fatalf("a failed login: %d, hash changed: %v", a.Status, stored() != old)
			}
			if a := e.login(t, "alice@acme.test", authsvc.DemoPassword); a.Status != 200 {
				t.Fatalf("login with the old hash: %d %s", a.Status, a.Raw)
			}
			next := stored()
			if next == old || !strings.HasPrefix(next, "$argon2id$v=19$m=128,t=2,p=1$") {
				t.Fatalf("not rehashed with the configured parameters: %s", next)
			}
			if a := e.login(t, "alice@acme.test", authsvc.DemoPassword); a.Status != 200 || stored() != next {
				t.Fatalf("login with the new hash: %d %s (hash changed again: %v)", a.Status, a.Raw, stored() != next)
			}
		})
	}
}

// busyHasher answers every Verify as a hasher whose queue is full.
type busyHasher struct{ authsvc.PasswordHasher }

func (busyHasher) Verify(context.Context, string, string) (bool, error) {
	return false, &authsvc.HashBusyError{RetryAfter: 3 * time.Second}
}

// TestLoginHashingBusy: no hashing slot is 429 RATE_LIMITED with
// Retry-After — not 503, not 500 — and is no attempt: it is not audited and
// does not count against the account limit.
func TestLoginHashingBusy(t *testing.T) {
	busy := &busyHasher{authsvc.NewArgon2idParams(1, 64, 1, 2)}
	e := newEnv(t, envOpts{hasher: busy})
	ctx := context.Background()
	if err := e.svc.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	_, before, err := e.svc.Store().ListAudit(ctx, store.AuditFilter{}, store.Page{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	for range 15 { // more than the account limit (10)
		a := e.login(t, "alice@acme.test", authsvc.DemoPassword)
		if a.Status != 429 || a.code() != "RATE_LIMITED" || a.Header.Get("Retry-After") != "3" {
			t.Fatalf("busy login: %d %s Retry-After %q", a.Status, a.Raw, a.Header.Get("Retry-After"))
		}
	}
	_, after, err := e.svc.Store().ListAudit(ctx, store.AuditFilter{}, store.Page{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if after != before {
		t.Fatalf("busy refusals were audited: %d records added", after-before)
	}
	e.hasher.inner = busy.PasswordHasher // the storm is over
	if a := e.login(t, "alice@acme.test", authsvc.DemoPassword); a.Status != 200 {
		t.Fatalf("after the storm: %d %s (the busy answers counted as attempts?)", a.Status, a.Raw)
	}
}
