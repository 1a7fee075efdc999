package store

import (
	"context"
	"time"
)

// User is a person who logs in. Email is the canonical login name
// (loginname.Normalize): CreateUser refuses any other form.
type User struct {
	ID            string
	Email         string
	Name          string
	PasswordHash  string // argon2id, PHC string format
	PlatformAdmin bool
	Disabled      bool
	// Locked: the security monitor locked the account (lock_account); its
	// logins are refused, as a disabled account's are, until an admin
	// unlocks it.
	Locked            bool
	PasswordChangedAt time.Time
	CreatedAt         time.Time
}

// UserUpdate changes the fields that are set.
type UserUpdate struct {
	Name          *string
	Disabled      *bool
	PlatformAdmin *bool
	Locked        *bool
}

// UserStore keeps the users, their login names and password hashes.
type UserStore interface {
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
}
