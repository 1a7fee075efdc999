package store_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/erpgate/erpgate/authsvc/store"
)

// runRevocationContract: every revocation is in the outbox with the change
// itself (nothing else is), in order, until deleted; a failed revocation
// (another user's session) adds nothing; enqueued ones come out too.
func runRevocationContract(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	t.Run("revocation outbox", func(t *testing.T) {
		s := open(t)
		f := setup(t, s)
		type item struct {
			kind store.RevocationKind
			id   string
		}
		// The outbox may hold other tests' rows (a shared database): this
		// test looks at the rows of its own sessions and keys.
		mine := map[string]bool{}
		rows := func() []store.Revocation {
			t.Helper()
			rs, err := s.PendingRevocations(ctx, 10000)
			must(t, err)
			var out []store.Revocation
			for i, r := range rs {
				if r.At.IsZero() || (i > 0 && r.Seq <= rs[i-1].Seq) {
					t.Fatalf("outbox row %+v (after %+v)", r, rs[max(i-1, 0)])
				}
				if mine[r.SubjectID] {
					out = append(out, r)
				}
			}
			return out
		}
		pending := func() []item {
			t.Helper()
			var out []item
			for _, r := range rows() {
				out = append(out, item{r.Kind, r.SubjectID})
			}
			return out
		}
		s1, _ := newSession(t, s, f.alice, f.a.ID)
		s2, _ := newSession(t, s, f.alice, f.a.ID)
		sb, _ := newSession(t, s, f.bob, f.b.ID)
		mine[s1.ID], mine[s2.ID], mine[sb.ID] = true, true, true
		wantErr(t, s.RevokeSession(ctx, f.alice.ID, sb.ID, t0, "x", ev("test")), store.ErrNotFound) // other user: nothing
		must(t, s.RevokeSession(ctx, f.alice.ID, s1.ID, t0.Add(time.Minute), "logout", ev("test")))
		ids, err := s.SetPasswordHash(ctx, f.alice.ID, "h", "", t0.Add(2*time.Minute), ev("test"))
		must(t, err)
		if !slices.Equal(ids, []string{s2.ID}) {
			t.Fatalf("password change revoked %v", ids)
		}
		k := store.APIKey{ID: uuid.NewString(), CompanyID: f.a.ID, Name: "ci", Prefix: "p" + uuid.NewString()[:8], SecretHash: hash(),
			Scope: []string{"invoices:read"}, Plan: "standard", CreatedAt: t0}
		must(t, s.CreateAPIKey(ctx, k, ev("test")))
		mine[k.ID] = true
		must(t, s.RecordAPIKeyUses(ctx, []store.APIKeyUse{{ID: k.ID, Count: 1, LastUsed: t0}})) // not a revocation
		_, err = s.RotateAPIKey(ctx, f.a.ID, k.ID, hash(), t0.Add(time.Hour), t0.Add(3*time.Minute), ev("test"))
		must(t, err)
		must(t, s.RevokeAPIKey(ctx, f.a.ID, k.ID, t0.Add(4*time.Minute), ev("test")))
		want := []item{{store.RevokedSession, s1.ID}, {store.RevokedSession, s2.ID}, {store.RotatedAPIKey, k.ID}, {store.RevokedAPIKey, k.ID}}
		if got := pending(); !slices.Equal(got, want) {
			t.Fatalf("outbox = %v, want %v", got, want)
		}
		rs := rows()
		if !rs[0].At.Equal(t0.Add(time.Minute)) {
			t.Fatalf("first = %+v", rs[0])
		}
		must(t, s.DeleteRevocations(ctx, []int64{rs[0].Seq, rs[1].Seq, 1 << 40}))
		must(t, s.EnqueueRevocations(ctx, []store.Revocation{{Kind: store.RevokedSession, SubjectID: s1.ID, At: t0.Add(5 * time.Minute)}}))
		want = []item{{store.RotatedAPIKey, k.ID}, {store.RevokedAPIKey, k.ID}, {store.RevokedSession, s1.ID}}
		if got := pending(); !slices.Equal(got, want) {
			t.Fatalf("outbox after delete and enqueue = %v, want %v", got, want)
		}
		if err := s.EnqueueRevocations(ctx, []store.Revocation{{Kind: "user", SubjectID: "x", At: t0}}); err == nil {
			t.Fatal("an unknown kind was enqueued")
		}
	})
}
