package store_test

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/erpgate/erpgate/authsvc/store"
)

// factorAudits counts the records of typ about (or by) the user.
func factorAudits(t *testing.T, s store.Store, userID, typ string) int64 {
	t.Helper()
	_, n, err := s.ListAudit(context.Background(), store.AuditFilter{UserID: userID, Types: []string{typ}}, store.Page{Limit: 1})
	must(t, err)
	return n
}

func factorEv(typ, user string) store.Event {
	e := ev(typ)
	e.SubjectID = user
	return e
}

// runFactorContract: email and SMS factors are pending until confirmed,
// one of each kind per user, kept with their audit records.
func runFactorContract(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()

	t.Run("factor lifecycle", func(t *testing.T) {
		s := open(t)
		f := setup(t, s)
		u := f.alice.ID
		_, err := s.GetFactor(ctx, u, store.FactorSMS)
		wantErr(t, err, store.ErrNotFound)
		list, err := s.ListFactors(ctx, u)
		must(t, err)
		if len(list) != 0 || list == nil {
			t.Fatalf("no factors: %#v", list)
		}
		sealed := []byte{1, 2, 3, 4}
		must(t, s.PutPendingFactor(ctx, store.Factor{UserID: u, Kind: store.FactorSMS, SealedPhone: sealed, PhoneMasked: "+1•••0123", CreatedAt: t0}, factorEv("mfa.enroll_started", u)))
		got, err := s.GetFactor(ctx, u, store.FactorSMS)
		must(t, err)
		if got.Active() || !bytes.Equal(got.SealedPhone, sealed) || got.PhoneMasked != "+1•••0123" || !got.CreatedAt.Equal(t0) || got.Kind != store.FactorSMS {
			t.Fatalf("pending factor = %+v", got)
		}
		// a pending one is replaced
		sealed2 := []byte{9, 9}
		must(t, s.PutPendingFactor(ctx, store.Factor{UserID: u, Kind: store.FactorSMS, SealedPhone: sealed2, PhoneMasked: "+4•••99", CreatedAt: t0.Add(time.Minute)}, factorEv("mfa.enroll_started", u)))
		got, _ = s.GetFactor(ctx, u, store.FactorSMS)
		if !bytes.Equal(got.SealedPhone, sealed2) || got.PhoneMasked != "+4•••99" {
			t.Fatalf("replaced pending factor = %+v", got)
		}
		must(t, s.PutPendingFactor(ctx, store.Factor{UserID: u, Kind: store.FactorEmail, CreatedAt: t0}, factorEv("mfa.enroll_started", u)))
		must(t, s.ConfirmFactor(ctx, u, store.FactorEmail, t0.Add(time.Hour), factorEv("mfa.enrolled", u)))
		wantErr(t, s.ConfirmFactor(ctx, u, store.FactorEmail, t0.Add(time.Hour), factorEv("mfa.enrolled", u)), store.ErrNotFound)
		wantErr(t, s.PutPendingFactor(ctx, store.Factor{UserID: u, Kind: store.FactorEmail, CreatedAt: t0}, factorEv("mfa.enroll_started", u)), store.ErrConflict)
		list, err = s.ListFactors(ctx, u)
		must(t, err)
		if len(list) != 2 || list[0].Kind != store.FactorEmail || !list[0].Active() || !list[0].ConfirmedAt.Equal(t0.Add(time.Hour)) ||
			list[1].Kind != store.FactorSMS || list[1].Active() {
			t.Fatalf("factors = %+v", list)
		}
		// another user sees none of them
		other, _ := s.ListFactors(ctx, f.bob.ID)
		if len(other) != 0 {
			t.Fatalf("bob's factors = %+v", other)
		}
		_, err = s.GetFactor(ctx, f.bob.ID, store.FactorEmail)
		wantErr(t, err, store.ErrNotFound)
		if n := factorAudits(t, s, u, "mfa.enroll_started"); n != 3 {
			t.Fatalf("enroll records = %d, want 3 (the refused one records nothing)", n)
		}
		if n := factorAudits(t, s, u, "mfa.enrolled"); n != 1 {
			t.Fatalf("enrolled records = %d, want 1", n)
		}
		must(t, s.DeleteFactor(ctx, u, store.FactorEmail, factorEv("mfa.disabled", u)))
		wantErr(t, s.DeleteFactor(ctx, u, store.FactorEmail, factorEv("mfa.disabled", u)), store.ErrNotFound)
		_, err = s.GetFactor(ctx, u, store.FactorEmail)
		wantErr(t, err, store.ErrNotFound)
		if n := factorAudits(t, s, u, "mfa.disabled"); n != 1 {
			t.Fatalf("disabled records = %d, want 1", n)
		}
		// unknown users and ids
		wantErr(t, s.PutPendingFactor(ctx, store.Factor{UserID: uuid.NewString(), Kind: store.FactorEmail, CreatedAt: t0}, ev("x")), store.ErrNotFound)
		wantErr(t, s.PutPendingFactor(ctx, store.Factor{UserID: "not-a-uuid", Kind: store.FactorEmail, CreatedAt: t0}, ev("x")), store.ErrNotFound)
		_, err = s.GetFactor(ctx, "not-a-uuid", store.FactorEmail)
		wantErr(t, err, store.ErrNotFound)
		wantErr(t, s.ConfirmFactor(ctx, uuid.NewString(), store.FactorSMS, t0, ev("x")), store.ErrNotFound)
	})

	t.Run("parallel confirmations confirm once", func(t *testing.T) {
		s := open(t)
		f := setup(t, s)
		u := f.bob.ID
		must(t, s.PutPendingFactor(ctx, store.Factor{UserID: u, Kind: store.FactorEmail, CreatedAt: t0}, factorEv("mfa.enroll_started", u)))
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok := 0
		for range 8 {
			wg.Go(func() {
				if s.ConfirmFactor(ctx, u, store.FactorEmail, t0, factorEv("mfa.enrolled", u)) == nil {
					mu.Lock()
					ok++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if ok != 1 || factorAudits(t, s, u, "mfa.enrolled") != 1 {
			t.Fatalf("%d confirmations succeeded, want exactly 1 (and one record)", ok)
		}
	})
}
