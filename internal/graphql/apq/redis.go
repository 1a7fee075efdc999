package apq

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/erpgate/erpgate/contract"
)

// DefaultRedisTTL is how long Redis keeps a query nobody reads, when
// NewRedis is given no TTL.
const DefaultRedisTTL = 24 * time.Hour

// Redis is a Store shared by every edge instance: the query under
// prefix+contract.RedisKeyAPQ+hash, expiring TTL after its last Get or Put
// (GETEX refreshes it, so queries in use stay and the rest go). A value
// that is over MaxQueryBytes or not the text of its hash (written by
// something else than Put) is a miss, never served: the client's
// registration that follows a miss overwrites it. (Not deleted on the
// read: a delete could remove a good text put meanwhile.)
type Redis struct {
	rdb    redis.UniversalClient
	prefix string
	ttl    time.Duration
	// Timeout bounds each round trip, within the caller's context.
	// Default: 250ms.
	Timeout time.Duration
}

// NewRedis returns a Redis store on rdb with keys under prefix (the
// configured key prefix, e.g. "erp:"); ttl <= 0 means DefaultRedisTTL.
func NewRedis(rdb redis.UniversalClient, prefix string, ttl time.Duration) *Redis {
	if ttl <= 0 {
		ttl = DefaultRedisTTL
	}
	return &Redis{rdb: rdb, prefix: prefix, ttl: ttl, Timeout: 250 * time.Millisecond}
}

func (r *Redis) key(hash string) string { return r.prefix + contract.RedisKeyAPQ + hash }

// Get returns the query stored under hash and refreshes its TTL.
func (r *Redis) Get(ctx context.Context, hash string) (string, bool, error) {
	if !ValidHash(hash) {
		return "", false, ErrInvalidHash
	}
	ctx, cancel := context.WithTimeout(ctx, r.Timeout)
	defer cancel()
	q, err := r.rdb.GetEx(ctx, r.key(hash), r.ttl).Result()
	if errors.Is(err, redis.Nil) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("apq: redis get: %w", err)
	}
	if len(q) > MaxQueryBytes || !matches(hash, q) {
		return "", false, nil // the client's registration (Put: SET) replaces it
	}
	return q, true, nil
}

// Put stores query under hash (after checking that hash is its sha256)
// with the store's TTL.
func (r *Redis) Put(ctx context.Context, hash, query string) error {
	if err := check(hash, query); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, r.Timeout)
	defer cancel()
	if err := r.rdb.Set(ctx, r.key(hash), query, r.ttl).Err(); err != nil {
		return fmt.Errorf("apq: redis set: %w", err)
	}
	return nil
}

// Interface guards
var _ Store = (*Redis)(nil)
