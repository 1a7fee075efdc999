package store_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/erpgate/erpgate/authsvc/store"
	"github.com/erpgate/erpgate/internal/testenv"
)

// runAccountContract covers administration, TOTP and the audit trail.
func runAccountContract(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()

	t.Run("company update and disable", func(t *testing.T) {
		s := open(t)
		f := setup(t, s)
		sa, _ := newSession(t, s, f.alice, f.a.ID)
		sb, _ := newSession(t, s, f.bob, f.b.ID)
		name, plan := "A renamed", "enterprise"
		c, ids, err := s.UpdateCompany(ctx, f.a.ID, store.CompanyUpdate{Name: &name, Plan: &plan}, t0, ev(store.EventCompanyUpdated))
		must(t, err)
		if c.Name != name || c.Plan != plan || c.Disabled || len(ids) != 0 {
			t.Fatalf("update = %+v, revoked %v", c, ids)
		}
		off := true
		c, ids, err = s.UpdateCompany(ctx, f.a.ID, store.CompanyUpdate{Disabled: &off}, t0.Add(time.Minute), ev(store.EventCompanyUpdated))
		must(t, err)
		if !c.Disabled || c.Name != name || !slices.Equal(ids, []string{sa.ID}) {
			t.Fatalf("disable = %+v, revoked %v", c, ids)
		}
		a, err := s.GetAccess(ctx, f.alice.ID, f.a.ID)
		must(t, err)
		if !a.Company.Disabled {
			t.Fatal("access does not show the company disabled")
		}
		t.Run("other company", func(t *testing.T) {
			if got, _ := s.GetSession(ctx, f.bob.ID, sb.ID); !got.Active(t0.Add(2 * time.Minute)) {
				t.Fatal("disabling a revoked b's session")
			}
			if b, _ := s.GetCompany(ctx, f.b.ID); b.Disabled || b.Name != "B" {
				t.Fatalf("company b changed: %+v", b)
			}
		})
		_, _, err = s.UpdateCompany(ctx, "missing-"+f.a.ID, store.CompanyUpdate{Name: &name}, t0, ev(store.EventCompanyUpdated))
		wantErr(t, err, store.ErrNotFound)
		list, total, err := s.ListCompanies(ctx, store.Page{Limit: 1000})
		must(t, err)
		if total < 2 || int64(len(list)) != total || !slices.IsSortedFunc(list, func(x, y store.Company) int { return strings.Compare(x.ID, y.ID) }) {
			t.Fatalf("list companies: %d of %d", len(list), total)
		}
		one, total2, err := s.ListCompanies(ctx, store.Page{Offset: 1, Limit: 1})
		must(t, err)
		if len(one) != 1 || total2 != total || one[0].ID != list[1].ID {
			t.Fatalf("page 2 of 1 = %+v", one)
		}
	})

	t.Run("user update and list", func(t *testing.T) {
		s := open(t)
		f := setup(t, s)
		s1, _ := newSession(t, s, f.alice, f.a.ID)
		name, admin := "Alice B.", true
		u, ids, err := s.UpdateUser(ctx, f.alice.ID, store.UserUpdate{Name: &name, PlatformAdmin: &admin}, t0, ev(store.EventUserUpdated))
		must(t, err)
		if u.Name != name || !u.PlatformAdmin || u.Disabled || len(ids) != 0 {
			t.Fatalf("update user = %+v, revoked %v", u, ids)
		}
		if got, _ := s.GetSession(ctx, f.alice.ID, s1.ID); !got.Active(t0.Add(time.Minute)) {
			t.Fatal("a rename revoked the session")
		}
		_, _, err = s.UpdateUser(ctx, uuid.NewString(), store.UserUpdate{Name: &name}, t0, ev(store.EventUserUpdated))
		wantErr(t, err, store.ErrNotFound)
		list, total, err := s.ListUsers(ctx, store.Page{Limit: 1000})
		must(t, err)
		if total < 2 || int64(len(list)) != total || !slices.IsSortedFunc(list, func(x, y store.User) int { return strings.Compare(x.Email, y.Email) }) {
			t.Fatalf("list users: %d of %d", len(list), total)
		}
	})

	t.Run("password rehash", func(t *testing.T) {
		s := open(t)
		f := setup(t, s)
		sa, _ := newSession(t, s, f.alice, f.a.ID)
		before, err := s.GetUser(ctx, f.alice.ID)
		must(t, err)
		_, records, err := s.ListAudit(ctx, store.AuditFilter{}, store.Page{Limit: 1})
		must(t, err)
		ok, err := s.ReplacePasswordHash(ctx, f.alice.ID, "not-the-stored-hash", "h-rehashed")
		must(t, err)
		if ok {
			t.Fatal("replaced a hash that was not the stored one")
		}
		ok, err = s.ReplacePasswordHash(ctx, f.alice.ID, before.PasswordHash, "h-rehashed")
		must(t, err)
		after, err := s.GetUser(ctx, f.alice.ID)
		must(t, err)
		if !ok || after.PasswordHash != "h-rehashed" || !after.PasswordChangedAt.Equal(before.PasswordChangedAt) {
			t.Fatalf("rehash = %v: %+v", ok, after)
		}
		if got, _ := s.GetSession(ctx, f.alice.ID, sa.ID); !got.Active(t0.Add(time.Minute)) {
			t.Fatal("a rehash revoked a session")
		}
		if _, n, _ := s.ListAudit(ctx, store.AuditFilter{}, store.Page{Limit: 1}); n != records {
			t.Fatalf("a rehash was audited: %d records, was %d", n, records)
		}
		// the same old hash again: someone else's replacement won
		if ok, err := s.ReplacePasswordHash(ctx, f.alice.ID, before.PasswordHash, "h-other"); err != nil || ok {
			t.Fatalf("second replacement of the same old hash = %v, %v", ok, err)
		}
		t.Run("other company", func(t *testing.T) {
			if b, _ := s.GetUser(ctx, f.bob.ID); b.PasswordHash == "h-rehashed" {
				t.Fatal("bob's hash changed")
			}
		})
		_, err = s.ReplacePasswordHash(ctx, uuid.NewString(), "x", "y")
		wantErr(t, err, store.ErrNotFound)
		_, err = s.ReplacePasswordHash(ctx, "not-a-uuid", "x", "y")
		wantErr(t, err, store.ErrNotFound)
	})

	t.Run("password change keeps one session", func(t *testing.T) {
		s := open(t)
		f := setup(t, s)
		keep, _ := newSession(t, s, f.alice, f.a.ID)
		other, _ := newSession(t, s, f.alice, f.a.ID)
		ids, err := s.SetPasswordHash(ctx, f.alice.ID, "h-new", keep.ID, t0.Add(time.Minute), ev(store.EventPasswordChanged))
		must(t, err)
		if !slices.Equal(ids, []string{other.ID}) {
			t.Fatalf("revoked %v, want only %s", ids, other.ID)
		}
		if got, _ := s.GetSession(ctx, f.alice.ID, keep.ID); !got.Active(t0.Add(2 * time.Minute)) {
			t.Fatal("the kept session was revoked")
		}
	})

	t.Run("memberships", func(t *testing.T) {
		s := open(t)
		f := setup(t, s)
		sa, _ := newSession(t, s, f.alice, f.a.ID)
		// same roles: nothing revoked
		ids, err := s.PutMembership(ctx, store.Membership{UserID: f.alice.ID, CompanyID: f.a.ID, Roles: []string{"admin"}, CreatedAt: t0}, t0, ev(store.EventMembershipSet))
		must(t, err)
		if len(ids) != 0 {
			t.Fatalf("unchanged roles revoked %v", ids)
		}
		// new membership in b: alice's session bound to a stays
		ids, err = s.PutMembership(ctx, store.Membership{UserID: f.alice.ID, CompanyID: f.b.ID, Roles: []string{"viewer"}, CreatedAt: t0}, t0, ev(store.EventMembershipSet))
		must(t, err)
		if len(ids) != 0 {
			t.Fatalf("a new membership revoked %v", ids)
		}
		sb, _ := newSession(t, s, f.alice, f.b.ID)
		// changed roles in a: only the session bound to a ends
		ids, err = s.PutMembership(ctx, store.Membership{UserID: f.alice.ID, CompanyID: f.a.ID, Roles: []string{"viewer"}, CreatedAt: t0}, t0.Add(time.Minute), ev(store.EventMembershipSet))
		must(t, err)
		if !slices.Equal(ids, []string{sa.ID}) {
			t.Fatalf("role change revoked %v, want %s", ids, sa.ID)
		}
		list, total, err := s.FindMemberships(ctx, store.MembershipFilter{CompanyID: f.a.ID}, store.Page{Limit: 10})
		must(t, err)
		if total != 1 || len(list) != 1 || list[0].UserID != f.alice.ID || list[0].Email != f.alice.Email || !slices.Equal(list[0].Roles, []string{"viewer"}) {
			t.Fatalf("memberships of a = %+v (%d)", list, total)
		}
		list, total, err = s.FindMemberships(ctx, store.MembershipFilter{UserID: f.alice.ID}, store.Page{Limit: 10})
		must(t, err)
		if total != 2 || len(list) != 2 {
			t.Fatalf("memberships of alice = %+v", list)
		}
		t.Run("other company", func(t *testing.T) {
			list, total, err := s.FindMemberships(ctx, store.MembershipFilter{CompanyID: f.b.ID, UserID: f.bob.ID}, store.Page{Limit: 10})
			must(t, err)
			if total != 1 || list[0].CompanyID != f.b.ID {
				t.Fatalf("bob in b = %+v", list)
			}
			_, err = s.DeleteMembership(ctx, f.bob.ID, f.a.ID, t0, ev(store.EventMembershipRemoved))
			wantErr(t, err, store.ErrNotFound)
		})
		ids, err = s.DeleteMembership(ctx, f.alice.ID, f.b.ID, t0.Add(2*time.Minute), ev(store.EventMembershipRemoved))
		must(t, err)
		if !slices.Equal(ids, []string{sb.ID}) {
			t.Fatalf("removal revoked %v, want %s", ids, sb.ID)
		}
	})

	t.Run("totp", func(t *testing.T) {
		s := open(t)
		f := setup(t, s)
		_, err := s.GetTOTP(ctx, f.alice.ID)
		wantErr(t, err, store.ErrNotFound)
		must(t, s.PutPendingTOTP(ctx, store.TOTP{UserID: f.alice.ID, SealedSecret: []byte("sealed-1"), CreatedAt: t0}, ev(store.EventMFAEnrollStarted)))
		must(t, s.PutPendingTOTP(ctx, store.TOTP{UserID: f.alice.ID, SealedSecret: []byte("sealed-2"), CreatedAt: t0}, ev(store.EventMFAEnrollStarted)))
		tp, err := s.GetTOTP(ctx, f.alice.ID)
		must(t, err)
		if tp.Active() || !bytes.Equal(tp.SealedSecret, []byte("sealed-2")) {
			t.Fatalf("pending = %+v", tp)
		}
		codes := [][]byte{hash(), hash(), hash()}
		must(t, s.ConfirmTOTP(ctx, f.alice.ID, codes, t0.Add(time.Minute), ev(store.EventMFAEnrolled)))
		wantErr(t, s.ConfirmTOTP(ctx, f.alice.ID, codes, t0.Add(time.Minute), ev(store.EventMFAEnrolled)), store.ErrNotFound)
		wantErr(t, s.PutPendingTOTP(ctx, store.TOTP{UserID: f.alice.ID, SealedSecret: []byte("sealed-3"), CreatedAt: t0}, ev(store.EventMFAEnrollStarted)), store.ErrConflict)
		tp, _ = s.GetTOTP(ctx, f.alice.ID)
		if !tp.Active() || !bytes.Equal(tp.SealedSecret, []byte("sealed-2")) || !tp.ConfirmedAt.Equal(t0.Add(time.Minute)) {
			t.Fatalf("confirmed = %+v", tp)
		}
		t.Run("other user", func(t *testing.T) {
			_, err := s.GetTOTP(ctx, f.bob.ID)
			wantErr(t, err, store.ErrNotFound)
			_, err = s.UseRecoveryCode(ctx, f.bob.ID, codes[0], t0, ev(store.EventMFARecoveryUsed))
			wantErr(t, err, store.ErrNotFound)
			wantErr(t, s.DeleteTOTP(ctx, f.bob.ID, ev(store.EventMFADisabled)), store.ErrNotFound)
		})
		// parallel uses of one recovery code: exactly one wins
		var wins atomic.Int64
		var wg sync.WaitGroup
		for range 10 {
			wg.Go(func() {
				left, err := s.UseRecoveryCode(ctx, f.alice.ID, codes[1], t0.Add(2*time.Minute), ev(store.EventMFARecoveryUsed))
				switch {
				case err == nil:
					wins.Add(1)
					if left != 2 {
						t.Errorf("left = %d, want 2", left)
					}
				case !errors.Is(err, store.ErrNotFound):
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("a recovery code was used %d times", wins.Load())
		}
		_, err = s.UseRecoveryCode(ctx, f.alice.ID, hash(), t0, ev(store.EventMFARecoveryUsed))
		wantErr(t, err, store.ErrNotFound)
		must(t, s.DeleteTOTP(ctx, f.alice.ID, ev(store.EventMFADisabled)))
		_, err = s.UseRecoveryCode(ctx, f.alice.ID, codes[0], t0, ev(store.EventMFARecoveryUsed))
		wantErr(t, err, store.ErrNotFound)
		_, err = s.GetTOTP(ctx, f.alice.ID)
		wantErr(t, err, store.ErrNotFound)
	})

	t.Run("audit", func(t *testing.T) {
		s := open(t)
		f := setup(t, s)
		rid := uuid.NewString()
		base := t0.Add(time.Hour)
		mk := func(typ, actor, company string, at time.Time) store.Event {
			return store.Event{Time: at, Type: typ, ActorID: actor, CompanyID: company, IP: "198.51.100.7", UserAgent: "curl/8",
				RequestID: rid, Details: map[string]string{"k": "v"}}
		}
		must(t, s.AppendAudit(ctx, mk(store.EventLoginFailed, f.alice.ID, "", base)))
		must(t, s.AppendAudit(ctx, mk(store.EventLoginSucceeded, f.alice.ID, "", base.Add(time.Second))))
		sess, _ := newSession(t, s, f.alice, f.a.ID)
		must(t, s.RevokeSession(ctx, f.alice.ID, sess.ID, base, "logout", mk(store.EventLogout, f.alice.ID, f.a.ID, base.Add(2*time.Second))))
		must(t, s.AppendAudit(ctx, mk(store.EventLoginSucceeded, f.bob.ID, "", base.Add(3*time.Second))))

		// A change that fails records nothing.
		before, _, err := s.ListAudit(ctx, store.AuditFilter{}, store.Page{Limit: 1})
		must(t, err)
		wantErr(t, s.RevokeSession(ctx, f.alice.ID, sess.ID, base, "logout", mk(store.EventLogout, f.alice.ID, f.a.ID, base)), store.ErrNotFound)
		after, _, err := s.ListAudit(ctx, store.AuditFilter{}, store.Page{Limit: 1})
		must(t, err)
		if after[0].Seq != before[0].Seq {
			t.Fatalf("a failed revocation appended record %d", after[0].Seq)
		}

		got, total, err := s.ListAudit(ctx, store.AuditFilter{UserID: f.alice.ID, Since: base}, store.Page{Limit: 10})
		must(t, err)
		if total != 3 || len(got) != 3 || got[0].Type != store.EventLogout || got[2].Type != store.EventLoginFailed {
			t.Fatalf("alice's events = %+v", got)
		}
		e := got[0]
		if e.ActorID != f.alice.ID || e.CompanyID != f.a.ID || e.IP != "198.51.100.7" || e.UserAgent != "curl/8" || e.RequestID != rid ||
			e.Details["k"] != "v" || !e.Time.Equal(base.Add(2*time.Second)) || len(e.Hash) != 32 || e.Seq <= 0 {
			t.Fatalf("stored event = %+v", e)
		}
		if !bytes.Equal(e.Hash, e.ComputeHash(e.PrevHash)) {
			t.Fatal("listed event does not match its hash")
		}
		got, total, err = s.ListAudit(ctx, store.AuditFilter{Types: []string{store.EventLoginSucceeded}, Since: base}, store.Page{Limit: 1})
		must(t, err)
		if total != 2 || len(got) != 1 || got[0].ActorID != f.bob.ID {
			t.Fatalf("login.succeeded page 1 = %+v (total %d)", got, total)
		}
		got, _, err = s.ListAudit(ctx, store.AuditFilter{Types: []string{store.EventLoginSucceeded}, Since: base}, store.Page{Offset: 1, Limit: 1})
		must(t, err)
		if len(got) != 1 || got[0].ActorID != f.alice.ID {
			t.Fatalf("login.succeeded page 2 = %+v", got)
		}
		got, total, err = s.ListAudit(ctx, store.AuditFilter{CompanyID: f.a.ID, Since: base, Until: base.Add(3 * time.Second)}, store.Page{Limit: 10})
		must(t, err)
		if total != 1 || got[0].Type != store.EventLogout {
			t.Fatalf("company a = %+v", got)
		}
		t.Run("other company", func(t *testing.T) {
			got, total, err := s.ListAudit(ctx, store.AuditFilter{CompanyID: f.b.ID, Since: base}, store.Page{Limit: 10})
			must(t, err)
			if total != 0 || len(got) != 0 {
				t.Fatalf("company b sees %+v", got)
			}
		})
		check, err := s.VerifyAudit(ctx)
		must(t, err)
		if !check.OK || check.Records < 5 {
			t.Fatalf("verify untouched trail: %s", check)
		}
	})
}

// appendSome writes n records.
func appendSome(t *testing.T, s store.Store, n int) {
	t.Helper()
	for i := range n {
		must(t, s.AppendAudit(context.Background(), store.Event{Time: t0.Add(time.Duration(i) * time.Second), Type: store.EventLoginFailed,
			IP: "192.0.2.5", Details: map[string]string{"reason": "bad_password"}}))
	}
}

func TestMemoryAuditTamper(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		tamper  func(m *store.Memory)
		bad     int64
		problem string
	}{
		{"edited", func(m *store.Memory) { m.TamperAudit(4, func(e *store.Event) { e.IP = "203.0.113.1" }) }, 4, "edited"},
		{"re-hashed", func(m *store.Memory) {
			m.TamperAudit(4, func(e *store.Event) { e.Type = store.EventLoginSucceeded; e.Hash = e.ComputeHash(e.PrevHash) })
		}, 5, "prev_hash"},
		{"deleted", func(m *store.Memory) { m.TamperAudit(3, nil) }, 3, "missing"},
		{"tail cut", func(m *store.Memory) { m.TamperAudit(6, nil) }, 6, "deleted from the end"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			m := store.NewMemory()
			appendSome(t, m, 6)
			check, err := m.VerifyAudit(context.Background())
			must(t, err)
			if !check.OK || check.Records != 6 {
				t.Fatalf("untouched: %s", check)
			}
			c.tamper(m)
			check, err = m.VerifyAudit(context.Background())
			must(t, err)
			if check.OK || check.BadSeq != c.bad || !strings.Contains(check.Problem, c.problem) {
				t.Fatalf("after tampering: %s; want record %d (%s)", check, c.bad, c.problem)
			}
		})
	}
}

func TestPostgresAuditTamper(t *testing.T) {
	t.Parallel()
	pool, err := pgxpool.New(context.Background(), testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = store.Migrate(ctx, pool)
	must(t, err)
	s := store.NewPostgres(pool)
	appendSome(t, s, 2500) // more than one verify batch
	check, err := s.VerifyAudit(ctx)
	must(t, err)
	if !check.OK || check.Records != 2500 {
		t.Fatalf("untouched: %s", check)
	}
	// the 1717th record, whichever chain it is in, and the very last one
	var mid, last int64
	must(t, pool.QueryRow(ctx, `SELECT seq FROM audit_events ORDER BY seq OFFSET 1716 LIMIT 1`).Scan(&mid))
	must(t, pool.QueryRow(ctx, `SELECT max(seq) FROM audit_events`).Scan(&last))
	if _, err := pool.Exec(ctx, `UPDATE audit_events SET details = '{"reason":"ok"}' WHERE seq = $1`, mid); err != nil {
		t.Fatal(err)
	}
	check, err = s.VerifyAudit(ctx)
	must(t, err)
	if check.OK || check.BadSeq != mid || !strings.Contains(check.Problem, "edited") {
		t.Fatalf("after editing %d: %s", mid, check)
	}
	if _, err := pool.Exec(ctx, `UPDATE audit_events SET details = '{"reason":"bad_password"}' WHERE seq = $1`, mid); err != nil {
		t.Fatal(err)
	}
	if check, _ = s.VerifyAudit(ctx); !check.OK {
		t.Fatalf("after restoring %d: %s", mid, check)
	}
	// a record deleted from the middle of a chain
	if _, err := pool.Exec(ctx, `DELETE FROM audit_events WHERE seq = $1`, mid); err != nil {
		t.Fatal(err)
	}
	if check, _ = s.VerifyAudit(ctx); check.OK || check.BadSeq != mid || !strings.Contains(check.Problem, "missing") {
		t.Fatalf("after deleting %d: %s", mid, check)
	}
	if _, err := pool.Exec(ctx, `DELETE FROM audit_events WHERE seq > $1`, mid); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `DELETE FROM audit_events WHERE seq = $1`, last); err != nil {
		t.Fatal(err)
	}
	check, err = s.VerifyAudit(ctx)
	must(t, err)
	if check.OK {
		t.Fatalf("after cutting the trail's end: %s", check)
	}
}

func TestPostgresAuditConcurrentAppends(t *testing.T) {
	t.Parallel()
	pool, err := pgxpool.New(context.Background(), testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, err = store.Migrate(ctx, pool)
	must(t, err)
	s := store.NewPostgres(pool)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 25 {
				if err := s.AppendAudit(ctx, store.Event{Time: t0, Type: store.EventLoginFailed}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	check, err := s.VerifyAudit(ctx)
	must(t, err)
	if !check.OK || check.Records != 200 {
		t.Fatalf("after 200 concurrent appends: %s", check)
	}
}
