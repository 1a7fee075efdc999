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

	"github.com/erpgate/erpgate/authsvc/loginname"
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
	// ErrNoAccess: the user may not take a session to the company — it does
	// not exist, the user is neither a member of it nor a platform admin, or
	// the user or the company is disabled (SwitchResult says which).
	ErrNoAccess = errors.New("no access to the company")
)

// Company is a tenant. Its ID is a slug (`acme`), which is also the `cid`
// claim and the key the ERP backends use.
type Company struct {
	ID        string
	Name      string
	Plan      string
	Disabled  bool // a disabled company's sessions end and its API keys stop working
	CreatedAt time.Time
}

// CompanyUpdate changes the fields that are set.
type CompanyUpdate struct {
	Name     *string
	Plan     *string
	Disabled *bool
}

// UserUpdate changes the fields that are set.
type UserUpdate struct {
	Name          *string
	Disabled      *bool
	PlatformAdmin *bool
}

// Page selects a slice of a listing: Offset rows skipped, at most Limit returned.
type Page struct {
	Offset int
	Limit  int
}

// MembershipFilter selects memberships; empty fields match everything.
type MembershipFilter struct {
	CompanyID string
	UserID    string
}

// MembershipView is a membership with the user's email, for listings.
type MembershipView struct {
	Membership
	Email string
}

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

// User is a person who logs in. Email is the canonical login name
// (loginname.Normalize): CreateUser refuses any other form.
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

// KeyPurpose is what a signing key signs. The keys of each purpose are kept
// apart (Postgres: a table each), so a key never signs for another purpose,
// not even in a binary that predates the purpose.
type KeyPurpose string

// Purposes of signing keys.
const (
	// KeyAccess keys sign access and login tokens (table signing_keys).
	KeyAccess KeyPurpose = "access"
	// KeyAssertion keys sign the edge's assertions to backends
	// (X-ERP-Assertion; table assertion_keys).
	KeyAssertion KeyPurpose = "assertion"
)

// SigningKey is a signing key of one purpose. The private key is sealed
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
//
// Every method that changes state takes the audit Event that records the
// change and appends it to the hash-chained trail in the same transaction
// (Postgres) or under the same lock (Memory): the change and its record are
// kept or lost together. A method that fails appends nothing, except where
// its comment says otherwise.
type Store interface {
	CreateCompany(ctx context.Context, c Company, ev Event) error
	GetCompany(ctx context.Context, id string) (Company, error)
	// UpdateCompany changes a company; disabling it revokes every session
	// bound to it (their ids are returned).
	UpdateCompany(ctx context.Context, id string, upd CompanyUpdate, now time.Time, ev Event) (Company, []string, error)
	// ListCompanies lists companies by id, with the total count.
	ListCompanies(ctx context.Context, p Page) ([]Company, int64, error)

	// CreateUser stores a user whose Email is a canonical login name. Its
	// look-alike skeleton (loginname) is stored with it: ErrConflict when the
	// id, the email or the skeleton is taken, and of parallel calls with
	// look-alike emails at most one succeeds.
	CreateUser(ctx context.Context, u User, ev Event) error
	GetUser(ctx context.Context, id string) (User, error)
	// GetUserByEmail finds the user of a canonical login name, by that exact
	// name: never by its skeleton, so a look-alike reaches no account.
	GetUserByEmail(ctx context.Context, email string) (User, error)
	// ListUsers lists users by email, with the total count.
	ListUsers(ctx context.Context, p Page) ([]User, int64, error)
	// SetPasswordHash replaces the hash and revokes every session of the
	// user except keepSession (empty: all), returning the revoked ids.
	SetPasswordHash(ctx context.Context, userID, hash, keepSession string, now time.Time, ev Event) ([]string, error)
	// ReplacePasswordHash replaces the user's password hash with next when
	// it is still old (the same password, hashed with other parameters: no
	// session is revoked, PasswordChangedAt stays, nothing is audited) and
	// reports whether it did; false when the hash changed meanwhile (a
	// password change wins). ErrNotFound: no such user.
	ReplacePasswordHash(ctx context.Context, userID, old, next string) (bool, error)
	// UpdateUser changes a user; disabling revokes every session.
	UpdateUser(ctx context.Context, userID string, upd UserUpdate, now time.Time, ev Event) (User, []string, error)

	// PutMembership creates or replaces the user's roles in the company. A
	// change of roles revokes the user's sessions bound to the company (their
	// tokens carry the old roles); their ids are returned.
	PutMembership(ctx context.Context, m Membership, now time.Time, ev Event) ([]string, error)
	// DeleteMembership removes a membership and revokes the user's sessions
	// bound to the company.
	DeleteMembership(ctx context.Context, userID, companyID string, now time.Time, ev Event) ([]string, error)
	// GetAccess is the user's access to the company; ErrNotFound without a membership.
	GetAccess(ctx context.Context, userID, companyID string) (Access, error)
	ListMemberships(ctx context.Context, userID string) ([]CompanyMembership, error)
	// FindMemberships lists memberships by company then email, with the total count.
	FindMemberships(ctx context.Context, f MembershipFilter, p Page) ([]MembershipView, int64, error)

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

	CreateAPIKey(ctx context.Context, k APIKey, ev Event) error
	ListAPIKeys(ctx context.Context, companyID string) ([]APIKey, error)
	GetAPIKey(ctx context.Context, companyID, id string) (APIKey, error)
	// RotateAPIKey installs a new secret hash; the current one stays valid until graceUntil.
	RotateAPIKey(ctx context.Context, companyID, id string, newHash []byte, graceUntil, now time.Time, ev Event) (APIKey, error)
	// RevokeAPIKey revokes an unrevoked key; ErrNotFound otherwise.
	RevokeAPIKey(ctx context.Context, companyID, id string, now time.Time, ev Event) error
	// FindAPIKey looks a key up by its public prefix (introspection: the key
	// names its company, so this is the one lookup without a company id).
	FindAPIKey(ctx context.Context, prefix string) (APIKey, error)
	RecordAPIKeyUses(ctx context.Context, uses []APIKeyUse) error

	// ListSigningKeys lists the keys of a purpose, oldest activation first.
	ListSigningKeys(ctx context.Context, purpose KeyPurpose) ([]SigningKey, error)
	AddSigningKey(ctx context.Context, purpose KeyPurpose, k SigningKey) error
	DeleteSigningKey(ctx context.Context, purpose KeyPurpose, kid string) error

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

	// AppendAudit appends an event that records no state change (a failed
	// login, a throttled attempt, a login that issued a login token).
	AppendAudit(ctx context.Context, ev Event) error
	// ListAudit lists the events that match f, newest first, with the total count.
	ListAudit(ctx context.Context, f AuditFilter, p Page) ([]Event, int64, error)
	// VerifyAudit re-computes the whole chain and reports the first record
	// that does not match (see AuditCheck).
	VerifyAudit(ctx context.Context) (AuditCheck, error)

	// RevocationOutbox: every revocation above (a session, an API key
	// revoked or rotated) is recorded there with the change itself.
	RevocationOutbox
}

// emailSkeleton is the look-alike key of a canonical login name; an error
// for a name in any other form (the caller normalises, and answers the
// person who typed it).
func emailSkeleton(email string) (string, error) {
	n, err := loginname.Normalize(email)
	if err != nil || n.Email != email {
		return "", errors.New("create user: the email is not a normalised login name")
	}
	return n.Skeleton, nil
}

// micro truncates t to what Postgres keeps, in UTC.
func micro(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC().Truncate(time.Microsecond)
}
