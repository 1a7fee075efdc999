package store

import (
	"context"
	"time"
)

// Kinds of Factor.
const (
	FactorEmail = "email"
	FactorSMS   = "sms"
)

// Audit event types of the messaging work (magic links, email and SMS
// codes). Never rename one.
const (
	// EventMagicLinkSent: a sign-in link was mailed to the user (ActorID).
	EventMagicLinkSent = "magic_link.sent"
	// EventMagicLinkSuppressed: a link was asked for an address that gets
	// none (Details: email, reason unknown_user, user_disabled,
	// sso_required or send_failed). The caller was answered as for any other.
	EventMagicLinkSuppressed = "magic_link.suppressed"
	// EventMagicLinkThrottled: too many links asked for an address or from
	// an address (Details: email, limit "address" or "ip").
	EventMagicLinkThrottled = "magic_link.throttled"
	// EventMagicLinkFailed: a link that was unknown, expired, already used
	// or whose user can no longer sign in (Details: reason).
	EventMagicLinkFailed = "magic_link.failed"
	// EventMFACodeSent: a one-time code went out (Details: method, purpose
	// "login" or "enroll").
	EventMFACodeSent = "mfa.code_sent"
)

// Factor is a user's email or SMS second factor. The phone number is
// sealed by the caller (AES-256-GCM under the master key); PhoneMasked is
// what may be shown (+1•••••••0123).
type Factor struct {
	UserID      string
	Kind        string // FactorEmail or FactorSMS
	SealedPhone []byte // FactorSMS only
	PhoneMasked string // FactorSMS only
	CreatedAt   time.Time
	ConfirmedAt time.Time // zero while pending: not yet asked at login
}

// Active reports whether the factor was confirmed.
func (f Factor) Active() bool { return !f.ConfirmedAt.IsZero() }

// FactorStore keeps users' email and SMS second factors. Owned by the
// messaging work (issue #17).
type FactorStore interface {
	// PutPendingFactor stores a new, unconfirmed factor of its kind,
	// replacing a pending one; ErrConflict when the user has a confirmed
	// one of that kind, ErrNotFound when the user does not exist.
	PutPendingFactor(ctx context.Context, f Factor, ev Event) error
	// GetFactor is the user's factor of a kind; ErrNotFound without one.
	GetFactor(ctx context.Context, userID, kind string) (Factor, error)
	// ListFactors are the user's factors (pending and confirmed), by kind.
	ListFactors(ctx context.Context, userID string) ([]Factor, error)
	// ConfirmFactor activates the pending factor of a kind; ErrNotFound
	// without a pending one.
	ConfirmFactor(ctx context.Context, userID, kind string, now time.Time, ev Event) error
	// DeleteFactor removes the factor of a kind; ErrNotFound without one.
	DeleteFactor(ctx context.Context, userID, kind string, ev Event) error
}
