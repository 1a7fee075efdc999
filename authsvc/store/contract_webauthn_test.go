package store_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/erpgate/erpgate/authsvc/store"
)

func waCred(userID string, name string) store.WebAuthnCredential {
	id := make([]byte, 32)
	_, _ = rand.Read(id)
	return store.WebAuthnCredential{ID: uuid.NewString(), UserID: userID, CredentialID: id, PublicKey: []byte{0xa5, 1, 2, 3, 0x26},
		SignCount: 0, Transports: []string{"internal", "hybrid"}, AAGUID: make([]byte, 16), AttestationFormat: "none",
		BackupEligible: true, BackupState: false, UserVerified: true, Name: name, CreatedAt: t0}
}

func waEv(typ, actor, subject string) store.Event {
	e := ev(typ)
	e.ActorID, e.SubjectID = actor, subject
	return e
}

func runWebAuthnContract(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()

	t.Run("webauthn create, list, find, delete", func(t *testing.T) {
		s := open(t)
		f := setup(t, s)
		one, two := waCred(f.alice.ID, "laptop"), waCred(f.alice.ID, "phone")
		two.CreatedAt = t0.Add(time.Second)
		must(t, s.CreateWebAuthnCredential(ctx, one, waEv(store.EventWebAuthnRegistered, f.alice.ID, one.ID)))
		must(t, s.CreateWebAuthnCredential(ctx, two, waEv(store.EventWebAuthnRegistered, f.alice.ID, two.ID)))
		// The credential id is unique across users; the user must exist.
		dup := waCred(f.bob.ID, "copy")
		dup.CredentialID = one.CredentialID
		wantErr(t, s.CreateWebAuthnCredential(ctx, dup, waEv(store.EventWebAuthnRegistered, f.bob.ID, dup.ID)), store.ErrConflict)
		wantErr(t, s.CreateWebAuthnCredential(ctx, waCred(uuid.NewString(), "ghost"), ev(store.EventWebAuthnRegistered)), store.ErrNotFound)

		list, err := s.ListWebAuthnCredentials(ctx, f.alice.ID)
		must(t, err)
		if len(list) != 2 || list[0].ID != one.ID || list[1].ID != two.ID {
			t.Fatalf("list = %+v", list)
		}
		got := list[0]
		if !bytes.Equal(got.CredentialID, one.CredentialID) || !bytes.Equal(got.PublicKey, one.PublicKey) || !slices.Equal(got.Transports, one.Transports) ||
			!bytes.Equal(got.AAGUID, one.AAGUID) || got.AttestationFormat != "none" || !got.BackupEligible || got.BackupState || !got.UserVerified ||
			got.Name != "laptop" || !got.CreatedAt.Equal(t0) || !got.LastUsedAt.IsZero() || got.UserID != f.alice.ID {
			t.Fatalf("stored = %+v, want %+v", got, one)
		}
		if l, err := s.ListWebAuthnCredentials(ctx, f.bob.ID); err != nil || len(l) != 0 {
			t.Fatalf("bob's list = %v, %v", l, err)
		}
		if l, err := s.ListWebAuthnCredentials(ctx, "not-a-uuid"); err != nil || len(l) != 0 {
			t.Fatalf("list of a bad id = %v, %v", l, err)
		}
		found, err := s.FindWebAuthnCredential(ctx, two.CredentialID)
		must(t, err)
		if found.ID != two.ID || found.UserID != f.alice.ID {
			t.Fatalf("found %+v", found)
		}
		_, err = s.FindWebAuthnCredential(ctx, []byte("unknown"))
		wantErr(t, err, store.ErrNotFound)

		// Another user's passkey is not found for deletion; the owner's is.
		wantErr(t, s.DeleteWebAuthnCredential(ctx, f.bob.ID, one.ID, waEv(store.EventWebAuthnRemoved, f.bob.ID, one.ID)), store.ErrNotFound)
		wantErr(t, s.DeleteWebAuthnCredential(ctx, f.alice.ID, "not-a-uuid", waEv(store.EventWebAuthnRemoved, f.alice.ID, "x")), store.ErrNotFound)
		must(t, s.DeleteWebAuthnCredential(ctx, f.alice.ID, one.ID, waEv(store.EventWebAuthnRemoved, f.alice.ID, one.ID)))
		wantErr(t, s.DeleteWebAuthnCredential(ctx, f.alice.ID, one.ID, waEv(store.EventWebAuthnRemoved, f.alice.ID, one.ID)), store.ErrNotFound)
		_, err = s.FindWebAuthnCredential(ctx, one.CredentialID)
		wantErr(t, err, store.ErrNotFound)
		// Its credential id may be registered again once deleted.
		again := waCred(f.alice.ID, "again")
		again.CredentialID = one.CredentialID
		must(t, s.CreateWebAuthnCredential(ctx, again, waEv(store.EventWebAuthnRegistered, f.alice.ID, again.ID)))

		// Registrations and removals are audited with the change, failures not.
		evs, _, err := s.ListAudit(ctx, store.AuditFilter{UserID: f.alice.ID, Types: []string{store.EventWebAuthnRegistered, store.EventWebAuthnRemoved}}, store.Page{Limit: 50})
		must(t, err)
		var types []string
		for _, e := range evs {
			types = append(types, e.Type)
		}
		slices.Sort(types)
		want := []string{store.EventWebAuthnRegistered, store.EventWebAuthnRegistered, store.EventWebAuthnRegistered, store.EventWebAuthnRemoved}
		if !slices.Equal(types, want) {
			t.Fatalf("audited %v, want %v", types, want)
		}
	})

	t.Run("webauthn sign counter", func(t *testing.T) {
		s := open(t)
		f := setup(t, s)
		c := waCred(f.alice.ID, "key")
		must(t, s.CreateWebAuthnCredential(ctx, c, waEv(store.EventWebAuthnRegistered, f.alice.ID, c.ID)))
		// An authenticator without a counter stays at zero.
		must(t, s.UseWebAuthnCredential(ctx, f.alice.ID, c.ID, 0, false, t0.Add(time.Minute)))
		must(t, s.UseWebAuthnCredential(ctx, f.alice.ID, c.ID, 5, true, t0.Add(2*time.Minute)))
		wantErr(t, s.UseWebAuthnCredential(ctx, f.alice.ID, c.ID, 5, true, t0.Add(3*time.Minute)), store.ErrSignCount)
		wantErr(t, s.UseWebAuthnCredential(ctx, f.alice.ID, c.ID, 4, true, t0.Add(3*time.Minute)), store.ErrSignCount)
		wantErr(t, s.UseWebAuthnCredential(ctx, f.alice.ID, c.ID, 0, true, t0.Add(3*time.Minute)), store.ErrSignCount)
		wantErr(t, s.UseWebAuthnCredential(ctx, f.bob.ID, c.ID, 9, true, t0.Add(3*time.Minute)), store.ErrNotFound)
		wantErr(t, s.UseWebAuthnCredential(ctx, f.alice.ID, uuid.NewString(), 9, true, t0.Add(3*time.Minute)), store.ErrNotFound)
		got, err := s.FindWebAuthnCredential(ctx, c.CredentialID)
		must(t, err)
		if got.SignCount != 5 || !got.BackupState || !got.LastUsedAt.Equal(t0.Add(2*time.Minute)) {
			t.Fatalf("after uses: %+v", got)
		}
		// The largest counter a uint32 holds round-trips.
		must(t, s.UseWebAuthnCredential(ctx, f.alice.ID, c.ID, 1<<32-1, true, t0.Add(4*time.Minute)))
		if got, _ := s.FindWebAuthnCredential(ctx, c.CredentialID); got.SignCount != 1<<32-1 {
			t.Fatalf("sign count = %d", got.SignCount)
		}

		// Parallel assertions with one counter value: exactly one passes.
		d := waCred(f.alice.ID, "raced")
		must(t, s.CreateWebAuthnCredential(ctx, d, waEv(store.EventWebAuthnRegistered, f.alice.ID, d.ID)))
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok := 0
		for range 8 {
			wg.Go(func() {
				err := s.UseWebAuthnCredential(ctx, f.alice.ID, d.ID, 7, false, t0)
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					ok++
				} else if !errors.Is(err, store.ErrSignCount) {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if ok != 1 {
			t.Fatalf("%d parallel uses with one counter passed, want 1", ok)
		}
	})
}
