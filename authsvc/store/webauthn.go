package store

import (
	"context"
	"errors"
	"time"
)

// Audit event types of passkeys (WebAuthn). Never rename one.
const (
	// EventWebAuthnRegistered: a passkey was added (SubjectID: its id).
	EventWebAuthnRegistered = "webauthn.registered"
	// EventWebAuthnRemoved: a passkey was deleted by its owner.
	EventWebAuthnRemoved = "webauthn.removed"
	// EventWebAuthnFailed: a registration or an assertion that did not
	// verify (Details: reason, step).
	EventWebAuthnFailed = "webauthn.failed"
	// EventWebAuthnCounterRegression: an assertion whose signature counter
	// did not increase: the authenticator may have been cloned. The
	// assertion is refused.
	EventWebAuthnCounterRegression = "webauthn.counter_regression"
)

// ErrSignCount: UseWebAuthnCredential was given a signature counter that
// is not above the stored one (both zero excepted: an authenticator
// without a counter).
var ErrSignCount = errors.New("signature counter did not increase")

// WebAuthnCredential is a user's passkey: a public key credential the
// user's authenticator created for this relying party. Nothing of it is
// secret (the private key never leaves the authenticator).
type WebAuthnCredential struct {
	ID           string // the service's id (UUID), in URLs
	UserID       string
	CredentialID []byte // the authenticator's credential id (unique)
	PublicKey    []byte // COSE_Key
	SignCount    uint32
	Transports   []string
	AAGUID       []byte // 16 bytes, zero for "none" attestation
	// AttestationFormat is the attestation statement's format ("none", "packed", …).
	AttestationFormat string
	BackupEligible    bool
	BackupState       bool
	UserVerified      bool // the authenticator verified the user at registration
	Name              string
	CreatedAt         time.Time
	LastUsedAt        time.Time // zero until its first assertion
}

// WebAuthnStore keeps users' passkeys.
type WebAuthnStore interface {
	// CreateWebAuthnCredential stores a new passkey; ErrConflict when its
	// CredentialID (or ID) is stored already, ErrNotFound when the user
	// does not exist.
	CreateWebAuthnCredential(ctx context.Context, cred WebAuthnCredential, ev Event) error
	// ListWebAuthnCredentials are the user's passkeys, oldest first.
	ListWebAuthnCredentials(ctx context.Context, userID string) ([]WebAuthnCredential, error)
	// FindWebAuthnCredential is the passkey with an authenticator's
	// credential id, of any user; ErrNotFound when none.
	FindWebAuthnCredential(ctx context.Context, credentialID []byte) (WebAuthnCredential, error)
	// UseWebAuthnCredential records an assertion of the user's passkey:
	// its new signature counter, backup state and last use. ErrSignCount
	// (nothing changes) when signCount is not above the stored counter —
	// checked atomically, so of two assertions with one counter value at
	// most one passes; ErrNotFound for another user's or no passkey.
	// Not audited here: the login or second factor it completes is.
	UseWebAuthnCredential(ctx context.Context, userID, id string, signCount uint32, backupState bool, now time.Time) error
	// DeleteWebAuthnCredential removes a passkey of the user; ErrNotFound
	// for another user's.
	DeleteWebAuthnCredential(ctx context.Context, userID, id string, ev Event) error
}

// signCountAdvances is the counter rule of WebAuthn §6.1.1: the new value
// must be above the stored one, unless both are zero (no counter).
func signCountAdvances(stored, next uint32) bool {
	return next > stored || (next == 0 && stored == 0)
}
