// Package store is the auth service's persistence: one interface (Store) with
// two implementations, Postgres (pgx, embedded migrations) and Memory (the
// embedded default). Both pass the same contract suite (contract_test.go).
//
// Every company-scoped method takes the company id and answers ErrNotFound for
// an object of another company, never the object: the service cannot forget
// the tenant check, because the store does it. Session methods take the user
// id the same way. Times are passed in by the caller (the service's clock) and
// kept at microsecond precision, as Postgres keeps them.
package store

import (
	"context"
	"errors"
	"time"
)

// Errors every implementation returns (wrapped with the operation).
var (
	// ErrNotFound: no such object, or it belongs to another company or user.
	ErrNotFound = errors.New("not found")
	// ErrConflict: an object with that unique value already exists.
	ErrConflict = errors.New("already exists")
	// ErrRefreshReused: a refresh token that was already rotated was presented
	// again; its whole family (the session) has been revoked by the same call.
	ErrRefreshReused = errors.New("refresh token reused")
	// ErrSessionInactive: the session is revoked or past its absolute expiry,
	// or the refresh token is past its idle expiry.
	ErrSessionInactive = errors.New("session inactive")
)

// Company is a tenant. Its ID is a slug (`acme`), which is also the `cid`
// claim and the key the ERP backends use.
type Company struct {
	ID        string
	Name      string
	Plan      string
	CreatedAt time.Time
}

// User is a person who logs in. Email is stored lower-cased.
type User struct {
	ID                string
	Email             string
	Name              string
	PasswordHash      string // argon2id, PHC string format
	PlatformAdmin     bool
	Disabled          bool
	PasswordChangedAt time.Time
	CreatedAt         time.Time
}

// Membership gives a user roles in a company.
type Membership struct {
	UserID    string
	CompanyID string
	Roles     []string
	CreatedAt time.Time
}

// Access is what an issue of tokens needs: the user's state, the company and
// the user's roles in it, read together.
type Access struct {
	UserID       string
	UserDisabled bool
	Company      Company
	Roles        []string
}

// CompanyMembership is one entry of a user's company list.
type CompanyMembership struct {
	Company Company
	Roles   []string
}

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

// APIKey is a company's machine credential. The secret itself is never
// stored: only its SHA-256 (the secret is 256 random bits, so a fast hash is
// right). During a rotation's grace period the previous hash stays valid.
type APIKey struct {
	ID             string
	CompanyID      string
	Name           string
	Prefix         string // public, unique: identifies the key in `erp_live_<prefix>_<secret>`
	SecretHash     []byte
	PrevSecretHash []byte    // nil when not rotating
	PrevExpiresAt  time.Time // end of the grace period of PrevSecretHash
	Scope          []string
	Plan           string
	CreatedBy      string
	CreatedAt      time.Time
	ExpiresAt      time.Time // zero: never
	RevokedAt      time.Time // zero: not revoked
	LastUsedAt     time.Time // zero: never used
	UseCount       int64
}

// APIKeyUse is a batch of uses of one key, flushed periodically.
type APIKeyUse struct {
	ID       string
	Count    int64
	LastUsed time.Time
}

// SigningKey is an access-token signing key. The private key is sealed
// (AES-256-GCM under the master key) by the caller; the store never sees it
// in the clear.
type SigningKey struct {
	KID           string
	Alg           string
	PublicKey     []byte
	SealedPrivate []byte
	CreatedAt     time.Time
	ActivatesAt   time.Time // published from CreatedAt, signs from ActivatesAt
}

// Store is the auth service's persistence.
type Store interface {
	CreateCompany(ctx context.Context, c Company) error
	GetCompany(ctx context.Context, id string) (Company, error)

	CreateUser(ctx context.Context, u User) error
	GetUser(ctx context.Context, id string) (User, error)
	GetUserByEmail(ctx context.Context, email string) (User, error)
	// SetPasswordHash replaces the hash and revokes every session of the user.
	SetPasswordHash(ctx context.Context, userID, hash string, now time.Time) ([]string, error)
	// SetUserDisabled changes the flag; disabling revokes every session.
	SetUserDisabled(ctx context.Context, userID string, disabled bool, now time.Time) ([]string, error)

	// PutMembership creates or replaces the user's roles in the company.
	PutMembership(ctx context.Context, m Membership) error
	DeleteMembership(ctx context.Context, userID, companyID string) error
	// GetAccess is the user's access to the company; ErrNotFound without a membership.
	GetAccess(ctx context.Context, userID, companyID string) (Access, error)
	ListMemberships(ctx context.Context, userID string) ([]CompanyMembership, error)

	// CreateSession stores a new session with its first refresh token.
	CreateSession(ctx context.Context, s Session, rt RefreshToken) error
	// RotateRefreshToken consumes the token with hash old and stores next in
	// its family. A token that was already consumed revokes the family and
	// answers ErrRefreshReused; an unknown one ErrNotFound; an expired token
	// or inactive session ErrSessionInactive. Of parallel calls with one
	// token exactly one succeeds.
	RotateRefreshToken(ctx context.Context, old []byte, next RefreshToken, use Use) (RefreshResult, error)
	// SwitchCompany moves the user's active session to a company the user is
	// a member of, consuming every outstanding refresh token of the family and
	// storing next. ErrNotFound: no such active session of the user, or no membership.
	SwitchCompany(ctx context.Context, userID, sessionID, companyID string, next RefreshToken, use Use) (Session, error)
	GetSession(ctx context.Context, userID, sessionID string) (Session, error)
	// ListSessions lists the user's active sessions at now, most recently used first.
	ListSessions(ctx context.Context, userID string, now time.Time) ([]Session, error)
	// RevokeSession revokes one active session of the user; ErrNotFound otherwise.
	RevokeSession(ctx context.Context, userID, sessionID string, now time.Time, reason string) error
	// RevokeUserSessions revokes every active session of the user and returns their ids.
	RevokeUserSessions(ctx context.Context, userID string, now time.Time, reason string) ([]string, error)

	CreateAPIKey(ctx context.Context, k APIKey) error
	ListAPIKeys(ctx context.Context, companyID string) ([]APIKey, error)
	GetAPIKey(ctx context.Context, companyID, id string) (APIKey, error)
	// RotateAPIKey installs a new secret hash; the current one stays valid until graceUntil.
	RotateAPIKey(ctx context.Context, companyID, id string, newHash []byte, graceUntil, now time.Time) (APIKey, error)
	// RevokeAPIKey revokes an unrevoked key; ErrNotFound otherwise.
	RevokeAPIKey(ctx context.Context, companyID, id string, now time.Time) error
	// FindAPIKey looks a key up by its public prefix (introspection: the key
	// names its company, so this is the one lookup without a company id).
	FindAPIKey(ctx context.Context, prefix string) (APIKey, error)
	RecordAPIKeyUses(ctx context.Context, uses []APIKeyUse) error

	ListSigningKeys(ctx context.Context) ([]SigningKey, error)
	AddSigningKey(ctx context.Context, k SigningKey) error
	DeleteSigningKey(ctx context.Context, kid string) error
}

// micro truncates t to what Postgres keeps, in UTC.
func micro(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC().Truncate(time.Microsecond)
}
