package store

import (
	"context"
	"time"
)

// TOTP is a user's time-based one-time-password enrolment. The secret is
// sealed by the caller (AES-256-GCM under the master key); the store never
// sees it in the clear.
type TOTP struct {
	UserID       string
	SealedSecret []byte
	CreatedAt    time.Time
	ConfirmedAt  time.Time // zero while pending: not yet asked at login
}

// Active reports whether the enrolment was confirmed.
func (t TOTP) Active() bool { return !t.ConfirmedAt.IsZero() }

// MFAStore keeps the second factor: TOTP enrolments and recovery codes.
type MFAStore interface {
	// PutPendingTOTP stores a new, unconfirmed enrolment, replacing a pending
	// one; ErrConflict when the user has a confirmed one.
	PutPendingTOTP(ctx context.Context, t TOTP, ev Event) error
	// GetTOTP is the user's enrolment; ErrNotFound without one.
	GetTOTP(ctx context.Context, userID string) (TOTP, error)
	// ConfirmTOTP activates the pending enrolment and replaces the user's
	// recovery codes with recoveryHashes; ErrNotFound without a pending one.
	ConfirmTOTP(ctx context.Context, userID string, recoveryHashes [][]byte, now time.Time, ev Event) error
	// DeleteTOTP removes the enrolment and the recovery codes; ErrNotFound without one.
	DeleteTOTP(ctx context.Context, userID string, ev Event) error
	// UseRecoveryCode consumes an unused recovery code of the user, once:
	// of parallel calls with one code exactly one succeeds. ErrNotFound
	// otherwise. It returns how many unused codes are left.
	UseRecoveryCode(ctx context.Context, userID string, hash []byte, now time.Time, ev Event) (int, error)
}
