package store

import (
	"context"
	"time"
)

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

// SigningKeyStore keeps the signing keys of each purpose. Its methods take
// no audit event.
type SigningKeyStore interface {
	// ListSigningKeys lists the keys of a purpose, oldest activation first.
	ListSigningKeys(ctx context.Context, purpose KeyPurpose) ([]SigningKey, error)
	AddSigningKey(ctx context.Context, purpose KeyPurpose, k SigningKey) error
	DeleteSigningKey(ctx context.Context, purpose KeyPurpose, kid string) error
}
