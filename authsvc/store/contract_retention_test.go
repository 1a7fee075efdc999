package store_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/erpgate/erpgate/authsvc/store"
	"github.com/erpgate/erpgate/internal/testenv"
)

// The retention and erasure methods act on the whole store (every
// company's sessions, the whole trail), so each subtest gets a store of
// its own: for Postgres, a fresh database.

func TestMemoryRetentionContract(t *testing.T) {
	t.Parallel()
	runRetentionContract(t, func(t *testing.T) (store.Store, tamperer) {
		m := store.NewMemory()
		return m, memTamper{m}
	})
}

func TestPostgresRetentionContract(t *testing.T) {
	t.Parallel()
	runRetentionContract(t, func(t *testing.T) (store.Store, tamperer) {
		pool, err := pgxpool.New(context.Background(), testenv.Postgres(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		_, err = store.Migrate(ctx, pool)
		must(t, err)
		return store.NewPostgres(pool), pgTamper{pool}
	})
}

// tamperer edits what an attacker with write access to the store could.
type tamperer interface {
	checkpoint(t *testing.T)
	erased(t *testing.T)
}

type memTamper struct{ m *store.Memory }

func (x memTamper) checkpoint(t *testing.T) {
	x.m.TamperCheckpoint(func(c *store.AuditCheckpoint) { c.Seq++ })
}

func (x memTamper) erased(t *testing.T) {
	if !x.m.TamperErased(func(e *store.Event) { e.Details["reason"] = "forged" }) {
		t.Fatal("no pseudonymised record to edit")
	}
}

type pgTamper struct{ pool *pgxpool.Pool }

func (x pgTamper) checkpoint(t *testing.T) {
	tag, err := x.pool.Exec(context.Background(), `UPDATE audit_checkpoints SET removed = removed - 1 WHERE signature IS NOT NULL`)
	must(t, err)
	if tag.RowsAffected() == 0 {
		t.Fatal("no checkpoint to edit")
	}
}

func (x pgTamper) erased(t *testing.T) {
	tag, err := x.pool.Exec(context.Background(),
		`UPDATE audit_events SET details = details || '{"reason":"forged"}' WHERE seq = (SELECT min(seq) FROM audit_events WHERE erasure_sig IS NOT NULL)`)
	must(t, err)
	if tag.RowsAffected() == 0 {
		t.Fatal("no pseudonymised record to edit")
	}
}

func auditKey(t *testing.T, b byte) store.AuditKey {
	t.Helper()
	k, err := store.NewAuditKey(bytes.Repeat([]byte{b}, 32))
	must(t, err)
	return k
}

// drainEvents publishes every record waiting in the events outbox (what the
// events relay does).
func drainEvents(t *testing.T, s store.Store) {
	t.Helper()
	for {
		claimed, _, err := s.RelayEvents(context.Background(), 500, func(evs []store.Event) (int, error) { return len(evs), nil })
		must(t, err)
		if claimed == 0 {
			return
		}
	}
}

func runRetentionContract(t *testing.T, open func(t *testing.T) (store.Store, tamperer)) {
	ctx := context.Background()

	t.Run("purge expired", func(t *testing.T) {
		t.Parallel()
		s, _ := open(t)
		f := setup(t, s)
		live, liveRT := newSession(t, s, f.alice, f.a.ID) // expires t0+7d, token t0+24h
		expired := store.Session{ID: uuid.NewString(), UserID: f.alice.ID, CompanyID: f.a.ID, CreatedAt: t0, LastUsedAt: t0, ExpiresAt: t0.Add(time.Hour)}
		must(t, s.CreateSession(ctx, expired, store.RefreshToken{Hash: hash(), ExpiresAt: t0.Add(time.Hour)}, ev("test")))
		revoked, _ := newSession(t, s, f.alice, f.a.ID)
		must(t, s.RevokeSession(ctx, f.alice.ID, revoked.ID, t0.Add(2*time.Hour), "logout", ev(store.EventLogout)))
		bobs, _ := newSession(t, s, f.bob, f.b.ID)
		dev := store.TrustedDevice{ID: uuid.NewString(), UserID: f.alice.ID, TokenHash: hash(), Name: "old", IP: "192.0.2.1",
			CreatedAt: t0, LastUsedAt: t0, ExpiresAt: t0.Add(time.Hour)}
		keep := dev
		keep.ID, keep.TokenHash, keep.ExpiresAt = uuid.NewString(), hash(), t0.Add(30*24*time.Hour)
		must(t, s.CreateTrustedDevice(ctx, dev, ev(store.EventDeviceTrusted)))
		must(t, s.CreateTrustedDevice(ctx, keep, ev(store.EventDeviceTrusted)))

		before := t0.Add(10 * time.Hour)
		c, err := s.PurgeExpired(ctx, before, 1) // bounded: one of each kind
		must(t, err)
		if c.Sessions != 1 || c.TrustedDevices != 1 {
			t.Fatalf("first batch of 1: %+v", c)
		}
		c2, err := s.PurgeExpired(ctx, before, 1000)
		must(t, err)
		if c.Sessions+c2.Sessions != 2 || c.TrustedDevices+c2.TrustedDevices != 1 {
			t.Fatalf("purged %+v then %+v, want 2 sessions and 1 device", c, c2)
		}
		for _, id := range []string{expired.ID, revoked.ID} {
			_, err := s.GetSession(ctx, f.alice.ID, id)
			wantErr(t, err, store.ErrNotFound)
		}
		_, err = s.GetSession(ctx, f.alice.ID, live.ID)
		must(t, err)
		if _, err := s.TrustedDeviceByHash(ctx, dev.TokenHash); err == nil {
			t.Fatal("the expired device is still there")
		}
		_, err = s.TrustedDeviceByHash(ctx, keep.TokenHash)
		must(t, err)
		// The live session still refreshes.
		_, err = s.RotateRefreshToken(ctx, liveRT, store.RefreshToken{Hash: hash(), ExpiresAt: t0.Add(48 * time.Hour)},
			store.Use{Now: t0.Add(time.Hour), IP: "192.0.2.1", UserAgent: "ua"}, ev(store.EventTokenRefreshed))
		must(t, err)
		t.Run("other company", func(t *testing.T) {
			_, err := s.GetSession(ctx, f.bob.ID, bobs.ID)
			must(t, err)
		})
		// The rotated-out token expires after a day: purged once past it.
		c3, err := s.PurgeExpired(ctx, t0.Add(25*time.Hour), 1000)
		must(t, err)
		if c3.RefreshTokens < 1 || c3.Sessions != 0 {
			t.Fatalf("after the old token's expiry: %+v", c3)
		}
	})

	t.Run("audit prune behind a signed checkpoint", func(t *testing.T) {
		t.Parallel()
		s, tamper := open(t)
		key := auditKey(t, 7)
		for i := range 40 {
			// Records in several chains (the subject picks the chain).
			must(t, s.AppendAudit(ctx, store.Event{Time: t0.Add(time.Duration(i) * time.Second), Type: store.EventLoginFailed,
				SubjectID: uuid.NewString(), IP: "192.0.2.5", Details: map[string]string{"reason": "bad_password"}}))
		}
		before := t0.Add(20 * time.Second)
		// Records the events relay has not published yet are kept.
		n, err := s.PruneAudit(ctx, before, 1000, key, t0.Add(time.Hour))
		must(t, err)
		if n != 0 {
			t.Fatalf("pruned %d unpublished records", n)
		}
		drainEvents(t, s)
		_, err = s.PruneAudit(ctx, before, 1000, store.AuditKey{}, t0.Add(time.Hour))
		if err == nil {
			t.Fatal("pruned without a key to sign the checkpoint")
		}
		var removed int64
		for {
			n, err := s.PruneAudit(ctx, before, 3, key, t0.Add(time.Hour))
			must(t, err)
			if n == 0 {
				break
			}
			removed += n
		}
		if removed != 20 {
			t.Fatalf("removed %d records, want the 20 older than the cut", removed)
		}
		_, total, err := s.ListAudit(ctx, store.AuditFilter{}, store.Page{Limit: 100})
		must(t, err)
		if total != 20 {
			t.Fatalf("%d records left, want 20", total)
		}
		cps, err := s.AuditCheckpoints(ctx)
		must(t, err)
		var sum int64
		for _, c := range cps {
			sum += c.Removed
			if c.KeyID != key.ID() || len(c.Signature) == 0 {
				t.Fatalf("checkpoint %+v not signed by the key", c)
			}
		}
		if len(cps) == 0 || sum != 20 {
			t.Fatalf("checkpoints %+v count %d removed, want 20", cps, sum)
		}
		check, err := s.VerifyAuditWith(ctx, key)
		must(t, err)
		if !check.OK || check.Records != 20 || check.Checkpoints != len(cps) {
			t.Fatalf("verify after the cut: %s", check)
		}
		// New records, a second cut: the chains go on from the checkpoints.
		for i := range 5 {
			must(t, s.AppendAudit(ctx, store.Event{Time: t0.Add(time.Minute + time.Duration(i)*time.Second), Type: store.EventLoginFailed,
				SubjectID: uuid.NewString(), IP: "192.0.2.5"}))
		}
		drainEvents(t, s)
		n, err = s.PruneAudit(ctx, t0.Add(30*time.Second), 1000, key, t0.Add(2*time.Hour))
		must(t, err)
		if n != 10 {
			t.Fatalf("second cut removed %d, want 10", n)
		}
		if check, _ = s.VerifyAuditWith(ctx, key); !check.OK || check.Records != 15 {
			t.Fatalf("verify after the second cut: %s", check)
		}
		if check, _ = s.VerifyAudit(ctx); check.OK || !strings.Contains(check.Problem, "ERP_MASTER_KEY") {
			t.Fatalf("verify without the key: %s", check)
		}
		if check, _ = s.VerifyAuditWith(ctx, auditKey(t, 8)); check.OK || !strings.Contains(check.Problem, "another key") {
			t.Fatalf("verify with another key: %s", check)
		}
		tamper.checkpoint(t)
		if check, _ = s.VerifyAuditWith(ctx, key); check.OK || !strings.Contains(check.Problem, "checkpoint") {
			t.Fatalf("verify after editing a checkpoint: %s", check)
		}
	})

	t.Run("erase user", func(t *testing.T) {
		t.Parallel()
		s, tamper := open(t)
		key := auditKey(t, 9)
		f := setup(t, s)
		sess, _ := newSession(t, s, f.alice, f.a.ID)
		bobSess, _ := newSession(t, s, f.bob, f.b.ID)
		must(t, s.PutPendingTOTP(ctx, store.TOTP{UserID: f.alice.ID, SealedSecret: []byte("sealed"), CreatedAt: t0}, ev("mfa.enroll_started")))
		must(t, s.PutPendingFactor(ctx, store.Factor{UserID: f.alice.ID, Kind: store.FactorEmail, CreatedAt: t0}, ev("mfa.enroll_started")))
		cred := waCred(f.alice.ID, "Alice's phone")
		must(t, s.CreateWebAuthnCredential(ctx, cred, waEv(store.EventWebAuthnRegistered, f.alice.ID, cred.ID)))
		dev := store.TrustedDevice{ID: uuid.NewString(), UserID: f.alice.ID, TokenHash: hash(), Name: "Firefox", IP: "192.0.2.77",
			CreatedAt: t0, LastUsedAt: t0, ExpiresAt: t0.Add(30 * 24 * time.Hour)}
		must(t, s.CreateTrustedDevice(ctx, dev, ev(store.EventDeviceTrusted)))
		must(t, s.RecordLogin(ctx, store.LoginTrace{UserID: f.alice.ID, Fingerprint: "fp", Network: "192.0.2.0/24", At: t0}, 3))
		apiKey := store.APIKey{ID: uuid.NewString(), CompanyID: f.a.ID, Name: "ci", Prefix: uuid.NewString()[:12], SecretHash: hash(),
			Scope: []string{"invoices:read"}, Plan: "standard", CreatedBy: f.alice.ID, CreatedAt: t0}
		must(t, s.CreateAPIKey(ctx, apiKey, ev(store.EventAPIKeyCreated)))
		// Records about alice: a failed login naming her email, one she did
		// from her address, one an admin did to her.
		must(t, s.AppendAudit(ctx, store.Event{Time: t0, Type: store.EventLoginFailed, IP: "192.0.2.77", UserAgent: "AliceBrowser",
			Details: map[string]string{"email": f.alice.Email, "reason": "bad_password"}}))
		must(t, s.AppendAudit(ctx, store.Event{Time: t0, Type: store.EventLoginSucceeded, ActorID: f.alice.ID, IP: "192.0.2.77",
			UserAgent: "AliceBrowser", Details: map[string]string{"email": f.alice.Email}}))
		must(t, s.AppendAudit(ctx, store.Event{Time: t0, Type: store.EventUserUpdated, ActorID: f.bob.ID, SubjectID: f.alice.ID, IP: "198.51.100.1",
			Details: map[string]string{"name": "Alice Liddell"}}))
		must(t, s.AppendAudit(ctx, store.Event{Time: t0, Type: store.EventLoginSucceeded, ActorID: f.bob.ID, IP: "198.51.100.1",
			Details: map[string]string{"email": f.bob.Email}}))

		pseudonym := "erased:" + uuid.NewString()
		erase := store.Event{Time: t0.Add(time.Hour), Type: store.EventUserErased, ActorID: f.bob.ID, SubjectID: pseudonym}
		_, err := s.EraseUser(ctx, f.alice.ID, pseudonym, t0.Add(time.Hour), store.AuditKey{}, erase)
		if err == nil {
			t.Fatal("erased without a key to attest the pseudonymised records")
		}
		res, err := s.EraseUser(ctx, f.alice.ID, pseudonym, t0.Add(time.Hour), key, erase)
		must(t, err)
		if len(res.RevokedSessions) != 1 || res.RevokedSessions[0] != sess.ID || res.AuditRecords < 3 {
			t.Fatalf("erasure = %+v", res)
		}
		_, err = s.GetUser(ctx, f.alice.ID)
		wantErr(t, err, store.ErrNotFound)
		_, err = s.GetUserByEmail(ctx, f.alice.Email)
		wantErr(t, err, store.ErrNotFound)
		_, err = s.GetSession(ctx, f.alice.ID, sess.ID)
		wantErr(t, err, store.ErrNotFound)
		_, err = s.GetTOTP(ctx, f.alice.ID)
		wantErr(t, err, store.ErrNotFound)
		if fs, _ := s.ListFactors(ctx, f.alice.ID); len(fs) != 0 {
			t.Fatalf("factors left: %+v", fs)
		}
		if cs, _ := s.ListWebAuthnCredentials(ctx, f.alice.ID); len(cs) != 0 {
			t.Fatalf("passkeys left: %+v", cs)
		}
		_, err = s.FindWebAuthnCredential(ctx, cred.CredentialID)
		wantErr(t, err, store.ErrNotFound)
		if _, err := s.TrustedDeviceByHash(ctx, dev.TokenHash); err == nil {
			t.Fatal("trusted device left")
		}
		if ls, _ := s.RecentLogins(ctx, f.alice.ID, time.Time{}); len(ls) != 0 {
			t.Fatalf("login history left: %+v", ls)
		}
		if ms, _ := s.ListMemberships(ctx, f.alice.ID); len(ms) != 0 {
			t.Fatalf("memberships left: %+v", ms)
		}
		k, err := s.GetAPIKey(ctx, f.a.ID, apiKey.ID)
		must(t, err)
		if k.CreatedBy != pseudonym {
			t.Fatalf("api key created_by = %q, want the pseudonym", k.CreatedBy)
		}
		revs, err := s.PendingRevocations(ctx, 1000)
		must(t, err)
		found := false
		for _, r := range revs {
			found = found || (r.Kind == store.RevokedSession && r.SubjectID == sess.ID)
		}
		if !found {
			t.Fatal("the erased user's session is not in the revocation outbox")
		}
		// No record names her any more; the trail verifies with the key.
		all, _, err := s.ListAudit(ctx, store.AuditFilter{}, store.Page{Limit: 1000})
		must(t, err)
		var erasedRecord bool
		for _, e := range all {
			blob := e.ActorID + " " + e.SubjectID + " " + e.IP + " " + e.UserAgent
			for k, v := range e.Details {
				blob += " " + k + "=" + v
			}
			for _, personal := range []string{f.alice.ID, f.alice.Email, "192.0.2.77", "AliceBrowser", "Alice Liddell"} {
				if strings.Contains(blob, personal) {
					t.Fatalf("record %d (%s) still holds %q: %s", e.Seq, e.Type, personal, blob)
				}
			}
			if e.Type == store.EventUserErased {
				erasedRecord = e.SubjectID == pseudonym && e.Details["sessions_revoked"] == "1"
			}
		}
		if !erasedRecord {
			t.Fatal("the erasure is not recorded")
		}
		got, total, err := s.ListAudit(ctx, store.AuditFilter{UserID: pseudonym}, store.Page{Limit: 100})
		must(t, err)
		if total < 3 {
			t.Fatalf("records under the pseudonym: %+v", got)
		}
		check, err := s.VerifyAuditWith(ctx, key)
		must(t, err)
		if !check.OK {
			t.Fatalf("verify after the erasure: %s", check)
		}
		if check, _ = s.VerifyAudit(ctx); check.OK || !strings.Contains(check.Problem, "ERP_MASTER_KEY") {
			t.Fatalf("verify without the key: %s", check)
		}
		t.Run("other user", func(t *testing.T) {
			_, err := s.GetUser(ctx, f.bob.ID)
			must(t, err)
			_, err = s.GetSession(ctx, f.bob.ID, bobSess.ID)
			must(t, err)
			bobs, _, err := s.ListAudit(ctx, store.AuditFilter{UserID: f.bob.ID}, store.Page{Limit: 100})
			must(t, err)
			kept := false
			for _, e := range bobs {
				kept = kept || (e.Type == store.EventLoginSucceeded && e.Details["email"] == f.bob.Email && e.IP == "198.51.100.1")
			}
			if !kept {
				t.Fatalf("bob's own record was touched: %+v", bobs)
			}
		})
		// Gone for good; the address may be used again.
		_, err = s.EraseUser(ctx, f.alice.ID, pseudonym, t0.Add(time.Hour), key, erase)
		wantErr(t, err, store.ErrNotFound)
		again := f.alice
		again.ID = uuid.NewString()
		must(t, s.CreateUser(ctx, again, ev("test")))
		tamper.erased(t)
		if check, _ = s.VerifyAuditWith(ctx, key); check.OK || !strings.Contains(check.Problem, "erasure attestation") {
			t.Fatalf("verify after editing a pseudonymised record: %s", check)
		}
	})
}
