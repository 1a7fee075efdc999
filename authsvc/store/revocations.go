package store

import (
	"context"
	"time"
)

// RevocationKind is what a pending revocation is about.
type RevocationKind string

// Kinds of pending revocations.
const (
	// RevokedSession: a session (its access tokens carry its id as `sid`).
	RevokedSession RevocationKind = "session"
	// RevokedAPIKey: an API key was revoked.
	RevokedAPIKey RevocationKind = "api_key"
	// RotatedAPIKey: an API key got a new secret (edges drop cached answers).
	RotatedAPIKey RevocationKind = "api_key_rotated"
)

func (k RevocationKind) valid() bool {
	return k == RevokedSession || k == RevokedAPIKey || k == RotatedAPIKey
}

// Revocation is a revocation recorded by the store and not yet delivered to
// the edges (the outbox). Every method that revokes a session or revokes or
// rotates an API key records one in the same transaction (Postgres: the
// triggers of migration 0006) or under the same lock (Memory).
type Revocation struct {
	Seq       int64 // the outbox's order; set by the store
	Kind      RevocationKind
	SubjectID string    // the session or API key id
	At        time.Time // when it was revoked
}

// RevocationOutbox is the store's list of revocations to deliver.
type RevocationOutbox interface {
	// PendingRevocations lists up to limit undelivered revocations, oldest first.
	PendingRevocations(ctx context.Context, limit int) ([]Revocation, error)
	// DeleteRevocations removes delivered revocations by Seq (unknown ones are ignored).
	DeleteRevocations(ctx context.Context, seqs []int64) error
	// EnqueueRevocations records revocations to deliver (again): a retried
	// logout re-drives the delivery of a session that is already revoked.
	EnqueueRevocations(ctx context.Context, rs []Revocation) error
}
