package store

import (
	"context"
	"time"
)

// Session is a login on one device: the family of its refresh tokens. It is
// bound to one current company, which switch-company changes.
type Session struct {
	ID           string
	UserID       string
	CompanyID    string
	CreatedAt    time.Time
	LastUsedAt   time.Time
	ExpiresAt    time.Time // absolute expiry of the family
	RevokedAt    time.Time // zero while active
	RevokeReason string
	UserAgent    string
	IP           string
	MFA          bool // the login completed a second factor
}

// Active reports whether s can still be used at now.
func (s Session) Active(now time.Time) bool {
	return s.RevokedAt.IsZero() && now.Before(s.ExpiresAt)
}

// RefreshToken is the stored form of a refresh token: only its hash.
type RefreshToken struct {
	Hash      []byte // SHA-256 of the token
	ExpiresAt time.Time
}

// Use is what a request that uses a session records on it.
type Use struct {
	Now       time.Time
	IP        string
	UserAgent string
}

// RefreshResult is a rotated session with the access to issue for it.
// Member is false when the user is no longer a member of the session's company.
type RefreshResult struct {
	Session Session
	Access  Access
	Member  bool
}

// SwitchResult is what SwitchCompany read and did: the user's access to the
// company, read in the same step as the switch, and the switched session.
type SwitchResult struct {
	Session Session // zero unless the session was switched
	// Access is the user's access to the company; its Company is zero when
	// the company does not exist, its Roles empty without a membership.
	Access        Access
	Member        bool // the user has a membership in the company
	PlatformAdmin bool
}

// SessionStore keeps sessions and their refresh-token families.
type SessionStore interface {
	// CreateSession stores a new session with its first refresh token.
	CreateSession(ctx context.Context, s Session, rt RefreshToken, ev Event) error
	// RotateRefreshToken consumes the token with hash old and stores next in
	// its family. A token that was already consumed revokes the family and
	// answers ErrRefreshReused — and that revocation is recorded with ev, its
	// Type set to EventRefreshReuse; an unknown one ErrNotFound; an expired
	// token or inactive session ErrSessionInactive. Of parallel calls with
	// one token exactly one succeeds. The store fills ev's user, company and
	// subject (the session) from the session.
	RotateRefreshToken(ctx context.Context, old []byte, next RefreshToken, use Use, ev Event) (RefreshResult, error)
	// SwitchCompany moves the user's active session to a company, consuming
	// every outstanding refresh token of the family and storing next, and
	// returns the user's access to the company read in the same step: the
	// roles tokens are issued with are those the switch was allowed on. The
	// user must be enabled and a member of the company, or a platform admin
	// (who may switch to any company, with no roles unless a member); the
	// company must exist and be enabled. ErrNoAccess otherwise, with the
	// access read; ErrNotFound: no such active session of the user. Either
	// way nothing changes and ev is not recorded.
	SwitchCompany(ctx context.Context, userID, sessionID, companyID string, next RefreshToken, use Use, ev Event) (SwitchResult, error)
	GetSession(ctx context.Context, userID, sessionID string) (Session, error)
	// ListSessions lists the user's active sessions at now, most recently used first.
	ListSessions(ctx context.Context, userID string, now time.Time) ([]Session, error)
	// RevokeSession revokes one active session of the user; ErrNotFound otherwise.
	RevokeSession(ctx context.Context, userID, sessionID string, now time.Time, reason string, ev Event) error
	// RevokeUserSessions revokes every active session of the user and returns their ids.
	RevokeUserSessions(ctx context.Context, userID string, now time.Time, reason string, ev Event) ([]string, error)
}

// sessionScope selects the active sessions a change revokes: those of a
// user, of a company, or of a user in a company, except one. Every method
// that revokes sessions in bulk goes through it (Postgres.revokeSessions,
// Memory.revokeLocked), so they revoke and report alike.
type sessionScope struct {
	userID    string // empty: any user
	companyID string // empty: any company
	except    string // a session id to keep; empty: none
}

func (sc sessionScope) match(s Session) bool {
	return s.RevokedAt.IsZero() && (sc.userID == "" || s.UserID == sc.userID) &&
		(sc.companyID == "" || s.CompanyID == sc.companyID) && (sc.except == "" || s.ID != sc.except)
}

// Reasons a bulk revocation records on the sessions (revoke_reason).
const (
	reasonCompanyDisabled   = "company_disabled"
	reasonUserDisabled      = "user_disabled"
	reasonPasswordChanged   = "password_changed"
	reasonRolesChanged      = "roles_changed"
	reasonMembershipRemoved = "membership_removed"
	reasonRefreshReuse      = "refresh_reuse"
)
