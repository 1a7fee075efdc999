package store

import (
	"context"
	"time"
)

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

// APIKeyStore keeps the companies' API keys.
type APIKeyStore interface {
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
}
