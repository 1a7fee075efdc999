package store_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/erpgate/erpgate/authsvc/store"
)

// runDeviceContract: trusted devices are found by their credential's hash,
// listed while active (own only), revoked once by their user (another's is
// not found), revoked with every other by a password change and by
// disabling the user; the login history keeps one entry per pair, the
// most recent ones, bounded.
func runDeviceContract(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	newDevice := func(u store.User, at time.Time) store.TrustedDevice {
		return store.TrustedDevice{ID: uuid.NewString(), UserID: u.ID, TokenHash: hash(), Name: "Firefox on Linux", IP: "192.0.2.1",
			CreatedAt: at, LastUsedAt: at, ExpiresAt: at.Add(30 * 24 * time.Hour)}
	}
	t.Run("trusted devices", func(t *testing.T) {
		s := open(t)
		f := setup(t, s)
		d1, d2 := newDevice(f.alice, t0), newDevice(f.alice, t0.Add(time.Minute))
		db := newDevice(f.bob, t0)
		for _, d := range []store.TrustedDevice{d1, d2, db} {
			must(t, s.CreateTrustedDevice(ctx, d, ev(store.EventDeviceTrusted)))
		}
		wantErr(t, s.CreateTrustedDevice(ctx, d1, ev(store.EventDeviceTrusted)), store.ErrConflict)
		dup := newDevice(f.alice, t0)
		dup.TokenHash = d1.TokenHash
		wantErr(t, s.CreateTrustedDevice(ctx, dup, ev(store.EventDeviceTrusted)), store.ErrConflict)
		wantErr(t, s.CreateTrustedDevice(ctx, newDevice(store.User{ID: uuid.NewString()}, t0), ev(store.EventDeviceTrusted)), store.ErrNotFound)

		got, err := s.TrustedDeviceByHash(ctx, d1.TokenHash)
		must(t, err)
		if got.ID != d1.ID || got.UserID != f.alice.ID || !bytes.Equal(got.TokenHash, d1.TokenHash) || !got.ExpiresAt.Equal(d1.ExpiresAt) ||
			got.Name != d1.Name || got.IP != d1.IP || !got.RevokedAt.IsZero() || !got.Active(t0) {
			t.Fatalf("device = %+v, want %+v", got, d1)
		}
		_, err = s.TrustedDeviceByHash(ctx, hash())
		wantErr(t, err, store.ErrNotFound)

		// Most recently used first; touching moves a device up; bob's are not alice's.
		must(t, s.TouchTrustedDevice(ctx, f.alice.ID, d1.ID, t0.Add(time.Hour)))
		wantErr(t, s.TouchTrustedDevice(ctx, f.bob.ID, d1.ID, t0.Add(time.Hour)), store.ErrNotFound)
		list, err := s.ListTrustedDevices(ctx, f.alice.ID, t0.Add(2*time.Hour))
		must(t, err)
		if len(list) != 2 || list[0].ID != d1.ID || list[1].ID != d2.ID || !list[0].LastUsedAt.Equal(t0.Add(time.Hour)) {
			t.Fatalf("list = %+v", list)
		}
		// Expired devices are not listed.
		list, err = s.ListTrustedDevices(ctx, f.alice.ID, t0.Add(31*24*time.Hour))
		must(t, err)
		if len(list) != 0 {
			t.Fatalf("expired devices listed: %+v", list)
		}

		// Revocation: another user's is not found, twice is not found.
		wantErr(t, s.RevokeTrustedDevice(ctx, f.bob.ID, d1.ID, store.DeviceRevokedByUser, t0.Add(2*time.Hour), ev(store.EventDeviceRevoked)), store.ErrNotFound)
		wantErr(t, s.RevokeTrustedDevice(ctx, f.alice.ID, uuid.NewString(), store.DeviceRevokedByUser, t0.Add(2*time.Hour), ev(store.EventDeviceRevoked)), store.ErrNotFound)
		wantErr(t, s.RevokeTrustedDevice(ctx, f.alice.ID, "not-a-uuid", store.DeviceRevokedByUser, t0.Add(2*time.Hour), ev(store.EventDeviceRevoked)), store.ErrNotFound)
		must(t, s.RevokeTrustedDevice(ctx, f.alice.ID, d1.ID, store.DeviceRevokedByUser, t0.Add(2*time.Hour), ev(store.EventDeviceRevoked)))
		wantErr(t, s.RevokeTrustedDevice(ctx, f.alice.ID, d1.ID, store.DeviceRevokedByUser, t0.Add(3*time.Hour), ev(store.EventDeviceRevoked)), store.ErrNotFound)
		got, err = s.TrustedDeviceByHash(ctx, d1.TokenHash)
		must(t, err)
		if got.Active(t0.Add(2*time.Hour)) || got.RevokeReason != store.DeviceRevokedByUser || !got.RevokedAt.Equal(t0.Add(2*time.Hour)) {
			t.Fatalf("revoked device = %+v", got)
		}
		list, err = s.ListTrustedDevices(ctx, f.alice.ID, t0.Add(2*time.Hour))
		must(t, err)
		if len(list) != 1 || list[0].ID != d2.ID {
			t.Fatalf("list after revoke = %+v", list)
		}

		// A password change revokes the user's devices, not others'.
		_, err = s.SetPasswordHash(ctx, f.alice.ID, "h9", "", t0.Add(4*time.Hour), ev("test"))
		must(t, err)
		got, err = s.TrustedDeviceByHash(ctx, d2.TokenHash)
		must(t, err)
		if got.Active(t0.Add(4*time.Hour)) || got.RevokeReason != store.DeviceRevokedPasswordChange {
			t.Fatalf("device after password change = %+v", got)
		}
		if got, err := s.TrustedDeviceByHash(ctx, db.TokenHash); err != nil || !got.Active(t0.Add(4*time.Hour)) {
			t.Fatalf("bob's device after alice's password change = %+v, %v", got, err)
		}
		// Disabling a user revokes theirs; a name change does not.
		name := "Bobby"
		_, _, err = s.UpdateUser(ctx, f.bob.ID, store.UserUpdate{Name: &name}, t0.Add(5*time.Hour), ev("test"))
		must(t, err)
		if got, err := s.TrustedDeviceByHash(ctx, db.TokenHash); err != nil || !got.Active(t0.Add(5*time.Hour)) {
			t.Fatalf("bob's device after a name change = %+v, %v", got, err)
		}
		off := true
		_, _, err = s.UpdateUser(ctx, f.bob.ID, store.UserUpdate{Disabled: &off}, t0.Add(5*time.Hour), ev("test"))
		must(t, err)
		got, err = s.TrustedDeviceByHash(ctx, db.TokenHash)
		must(t, err)
		if got.Active(t0.Add(5*time.Hour)) || got.RevokeReason != store.DeviceRevokedUserDisabled {
			t.Fatalf("device after disabling = %+v", got)
		}
	})

	t.Run("login history", func(t *testing.T) {
		s := open(t)
		f := setup(t, s)
		rec := func(fp, nw string, at time.Time) {
			t.Helper()
			must(t, s.RecordLogin(ctx, store.LoginTrace{UserID: f.alice.ID, Fingerprint: fp, Network: nw, At: at}, 3))
		}
		wantErr(t, s.RecordLogin(ctx, store.LoginTrace{UserID: uuid.NewString(), Fingerprint: "x", Network: "y", At: t0}, 3), store.ErrNotFound)
		rec("fa", "n1", t0)
		rec("fb", "n1", t0.Add(time.Minute))
		rec("fa", "n1", t0.Add(2*time.Minute)) // the same pair again: one entry, its time the latest
		rec("fa", "n1", t0.Add(time.Second))   // an older time does not move it back
		got, err := s.RecentLogins(ctx, f.alice.ID, t0)
		must(t, err)
		if len(got) != 2 || got[0].Fingerprint != "fa" || !got[0].At.Equal(t0.Add(2*time.Minute)) || got[1].Fingerprint != "fb" || got[0].UserID != f.alice.ID {
			t.Fatalf("history = %+v", got)
		}
		rec("fc", "n2", t0.Add(3*time.Minute))
		rec("fd", "n3", t0.Add(4*time.Minute)) // the fourth pair: the oldest (fb) goes
		got, err = s.RecentLogins(ctx, f.alice.ID, t0)
		must(t, err)
		var fps []string
		for _, tr := range got {
			fps = append(fps, tr.Fingerprint+"/"+tr.Network)
		}
		if len(got) != 3 || fps[0] != "fd/n3" || fps[1] != "fc/n2" || fps[2] != "fa/n1" {
			t.Fatalf("bounded history = %v", fps)
		}
		got, err = s.RecentLogins(ctx, f.alice.ID, t0.Add(3*time.Minute))
		must(t, err)
		if len(got) != 2 {
			t.Fatalf("history since = %+v", got)
		}
		if got, err := s.RecentLogins(ctx, f.bob.ID, t0); err != nil || len(got) != 0 {
			t.Fatalf("bob's history = %+v, %v", got, err)
		}
	})
}
