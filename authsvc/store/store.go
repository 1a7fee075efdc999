// Package store owns the auth service's persistent state: companies, users,
// memberships, sessions with their refresh-token families, API keys, TOTP
// enrolments, signing keys, the hash-chained audit trail and the revocation
// outbox. Store is composed of one small interface per domain (CompanyStore,
// UserStore, …), each declared in its domain's file (companies.go, …) and
// implemented twice, by Postgres (postgres_<domain>.go, pgx, migrations in
// migrations/) and by Memory (memory_<domain>.go, the embedded default).
// Both pass the same contract suite (contract_*_test.go).
//
// Every company-scoped method takes the company id and answers ErrNotFound for
// an object of another company, never the object: the service cannot forget
// the tenant check, because the store does it. Session methods take the user
// id the same way. Times are passed in by the caller (the service's clock) and
// kept at microsecond precision, as Postgres keeps them.
//
// The store is a leaf of the auth service: it must not import the service
// (authsvc), Caddy, net/http or any edge package; it imports only the
// contract's names and the login-name normaliser.
package store

import (
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

// Store is the auth service's persistence: the domains' interfaces together.
//
// Every method that changes state takes the audit Event that records the
// change and appends it to the hash-chained trail in the same transaction
// (Postgres) or under the same lock (Memory): the change and its record are
// kept or lost together. A method that fails appends nothing, except where
// its comment says otherwise. Every revocation (a session, an API key
// revoked or rotated) is recorded in the RevocationOutbox with the change.
type Store interface {
	CompanyStore
	UserStore
	MembershipStore
	SessionStore
	APIKeyStore
	MFAStore
	SigningKeyStore
	AuditLog
	RevocationOutbox
	EventOutbox
	SSOStore
	WebAuthnStore
	FactorStore
	DeviceStore
	RetentionStore
	ErasureStore
	CellStore
}

// Page selects a slice of a listing: Offset rows skipped, at most Limit returned.
type Page struct {
	Offset int
	Limit  int
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
