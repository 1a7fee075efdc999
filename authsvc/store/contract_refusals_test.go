package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/erpgate/erpgate/authsvc/store"
)

// runRefusalContract: a change the store refuses keeps nothing and records
// nothing — not its audit event, not a revocation. Each refused call's event
// names one marker actor; the trail must hold no event of it, while the one
// change that is made with another marker is recorded (so the count can fail).
func runRefusalContract(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("refused changes record nothing", func(t *testing.T) {
		ctx := context.Background()
		s := open(t)
		f := setup(t, s)
		refused, made := uuid.NewString(), uuid.NewString()
		rev := func() store.Event { e := ev("test"); e.ActorID = refused; return e }
		unknown := uuid.NewString()

		sess, _ := newSession(t, s, f.alice, f.a.ID)
		must(t, s.RevokeSession(ctx, f.alice.ID, sess.ID, t0, "logout", store.Event{Time: t0, Type: "test", ActorID: made}))
		k := store.APIKey{ID: uuid.NewString(), CompanyID: f.a.ID, Prefix: "r" + uuid.NewString()[:8], SecretHash: hash(),
			Scope: []string{"invoices:read"}, Plan: "standard", CreatedAt: t0}
		must(t, s.CreateAPIKey(ctx, k, ev("test")))
		must(t, s.PutPendingTOTP(ctx, store.TOTP{UserID: f.alice.ID, SealedSecret: []byte("sealed"), CreatedAt: t0}, ev("test")))
		must(t, s.ConfirmTOTP(ctx, f.alice.ID, [][]byte{hash()}, t0, ev("test")))
		// The outbox may hold other tests' rows (a shared database): count
		// the rows of this test's sessions and key.
		live, _ := newSession(t, s, f.alice, f.a.ID)
		mine := func() int {
			rs, err := s.PendingRevocations(ctx, 10000)
			must(t, err)
			n := 0
			for _, r := range rs {
				if r.SubjectID == sess.ID || r.SubjectID == live.ID || r.SubjectID == k.ID {
					n++
				}
			}
			return n
		}
		pending := mine()
		if pending != 1 { // sess, revoked above
			t.Fatalf("outbox rows of this test: %d, want 1", pending)
		}

		wantErr(t, s.CreateCompany(ctx, f.a, rev()), store.ErrConflict)
		_, _, err := s.UpdateCompany(ctx, "nope-"+f.a.ID, store.CompanyUpdate{}, t0, rev())
		wantErr(t, err, store.ErrNotFound)
		dup := f.bob
		dup.ID = uuid.NewString()
		wantErr(t, s.CreateUser(ctx, dup, rev()), store.ErrConflict)
		_, err = s.SetPasswordHash(ctx, unknown, "h", "", t0, rev())
		wantErr(t, err, store.ErrNotFound)
		_, _, err = s.UpdateUser(ctx, unknown, store.UserUpdate{}, t0, rev())
		wantErr(t, err, store.ErrNotFound)
		_, err = s.PutMembership(ctx, store.Membership{UserID: f.alice.ID, CompanyID: "nope-" + f.a.ID, Roles: []string{"admin"}, CreatedAt: t0}, t0, rev())
		wantErr(t, err, store.ErrNotFound)
		_, err = s.DeleteMembership(ctx, f.alice.ID, f.b.ID, t0, rev())
		wantErr(t, err, store.ErrNotFound)
		dupSession := sess
		wantErr(t, s.CreateSession(ctx, dupSession, store.RefreshToken{Hash: hash(), ExpiresAt: t0.Add(time.Hour)}, rev()), store.ErrConflict)
		_, err = s.RotateRefreshToken(ctx, hash(), store.RefreshToken{Hash: hash(), ExpiresAt: t0.Add(time.Hour)}, store.Use{Now: t0}, rev())
		wantErr(t, err, store.ErrNotFound)
		_, err = s.SwitchCompany(ctx, f.alice.ID, live.ID, f.b.ID, store.RefreshToken{Hash: hash(), ExpiresAt: t0.Add(time.Hour)}, store.Use{Now: t0}, rev())
		wantErr(t, err, store.ErrNoAccess)
		wantErr(t, s.RevokeSession(ctx, f.alice.ID, sess.ID, t0, "logout", rev()), store.ErrNotFound) // already revoked
		wantErr(t, s.RevokeAPIKey(ctx, f.b.ID, k.ID, t0, rev()), store.ErrNotFound)
		_, err = s.RotateAPIKey(ctx, f.b.ID, k.ID, hash(), t0.Add(time.Hour), t0, rev())
		wantErr(t, err, store.ErrNotFound)
		wantErr(t, s.PutPendingTOTP(ctx, store.TOTP{UserID: f.alice.ID, SealedSecret: []byte("other"), CreatedAt: t0}, rev()), store.ErrConflict)
		wantErr(t, s.ConfirmTOTP(ctx, f.alice.ID, [][]byte{hash()}, t0, rev()), store.ErrNotFound) // confirmed already
		wantErr(t, s.DeleteTOTP(ctx, f.bob.ID, rev()), store.ErrNotFound)
		_, err = s.UseRecoveryCode(ctx, f.alice.ID, hash(), t0, rev())
		wantErr(t, err, store.ErrNotFound)

		for marker, want := range map[string]int64{refused: 0, made: 1} {
			_, total, err := s.ListAudit(ctx, store.AuditFilter{UserID: marker}, store.Page{Limit: 10})
			must(t, err)
			if total != want {
				t.Errorf("events of marker %s: %d, want %d", marker, total, want)
			}
		}
		if n := mine(); n != pending {
			t.Errorf("refused changes queued %d revocations", n-pending)
		}
		if a, err := s.GetAccess(ctx, f.alice.ID, f.a.ID); err != nil || a.Roles[0] != "admin" {
			t.Errorf("alice's access changed: %+v, %v", a, err)
		}
	})
}
