package store

import (
	"context"
	"time"
)

// Audit event types of trusted devices (issue #17).
const (
	// EventDeviceTrusted: a user trusted the device of a completed second
	// factor (details: the device's name; never its credential).
	EventDeviceTrusted = "device.trusted"
	// EventDeviceRevoked: a user revoked one of their trusted devices.
	EventDeviceRevoked = "device.revoked"
)

// Reasons a trusted device was revoked (TrustedDevice.RevokeReason).
const (
	DeviceRevokedByUser         = "revoked_by_user"
	DeviceRevokedPasswordChange = "password_changed"
	DeviceRevokedUserDisabled   = "user_disabled"
	// DeviceRevokedReplaced: the user trusted more devices than the
	// service keeps; the least recently used went.
	DeviceRevokedReplaced = "replaced"
)

// TrustedDevice is a device a user trusted after a second factor: logins
// that present its credential skip the second factor (unless the risk
// asks for one) until ExpiresAt. Only the SHA-256 of the credential is
// kept; the credential itself is shown once, to the device.
type TrustedDevice struct {
	ID        string
	UserID    string
	TokenHash []byte // SHA-256 of the credential
	// Name is the device as a person recognises it ("Firefox on Linux").
	Name         string
	IP           string // where it was trusted
	CreatedAt    time.Time
	LastUsedAt   time.Time
	ExpiresAt    time.Time
	RevokedAt    time.Time // zero: not revoked
	RevokeReason string
}

// Active reports whether the device still skips the second factor at now.
func (d TrustedDevice) Active(now time.Time) bool {
	return d.RevokedAt.IsZero() && now.Before(d.ExpiresAt)
}

// LoginTrace is what the risk signals remember of a completed login: the
// device's fingerprint (a hash of its normalised User-Agent) and the
// client's network (/24 or /48), never the address itself.
type LoginTrace struct {
	UserID      string
	Fingerprint string
	Network     string
	At          time.Time
}

// DeviceStore keeps users' trusted devices and what the risk signals
// remember of past logins. Owned by the devices and risk work (issue #17).
// A password change (SetPasswordHash) and disabling a user (UpdateUser)
// revoke every trusted device of the user in the same transaction.
type DeviceStore interface {
	// CreateTrustedDevice stores a new trusted device; ErrNotFound when the
	// user does not exist, ErrConflict for an id or credential hash in use.
	CreateTrustedDevice(ctx context.Context, d TrustedDevice, ev Event) error
	// TrustedDeviceByHash is the device whose credential hashes to hash,
	// whatever its state (the caller checks the user and Active);
	// ErrNotFound when none.
	TrustedDeviceByHash(ctx context.Context, hash []byte) (TrustedDevice, error)
	// TouchTrustedDevice sets the user's device's LastUsedAt (not audited:
	// the login that used it is); ErrNotFound for another user's.
	TouchTrustedDevice(ctx context.Context, userID, id string, at time.Time) error
	// ListTrustedDevices are the user's active devices at now, most
	// recently used first.
	ListTrustedDevices(ctx context.Context, userID string, now time.Time) ([]TrustedDevice, error)
	// RevokeTrustedDevice revokes the user's active device; ErrNotFound
	// when it is another user's, unknown, or no longer active.
	RevokeTrustedDevice(ctx context.Context, userID, id, reason string, now time.Time, ev Event) error
	// RecordLogin remembers a completed login's fingerprint and network
	// (one entry per distinct pair, its time the last login's), keeping
	// the keep most recent pairs of the user. Not audited: the login is.
	RecordLogin(ctx context.Context, tr LoginTrace, keep int) error
	// RecentLogins are the user's remembered pairs at or after since, most
	// recent first.
	RecentLogins(ctx context.Context, userID string, since time.Time) ([]LoginTrace, error)
}
