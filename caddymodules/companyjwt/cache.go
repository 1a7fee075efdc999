package companyjwt

// This file has no Caddy import.

import (
	"hash/maphash"
	"sync"
	"time"
)

// TokenCache is a bounded cache of verified tokens, so that a repeated token
// skips the signature check. Entries are never used past their token's exp
// (the verifier checks it) nor after a revocation (the verifier checks the
// session on every hit). When a shard is full an arbitrary entry is evicted.
type TokenCache struct {
	shards [16]tokenShard
	per    int
	seed   maphash.Seed
}

type tokenShard struct {
	mu sync.RWMutex
	m  map[string]*Claims
}

// NewTokenCache holds about size tokens.
func NewTokenCache(size int) *TokenCache {
	per := max(size/16, 1)
	c := &TokenCache{per: per, seed: maphash.MakeSeed()}
	for i := range c.shards {
		c.shards[i].m = make(map[string]*Claims, min(per, 1024))
	}
	return c
}

func (c *TokenCache) shard(token string) *tokenShard {
	return &c.shards[maphash.String(c.seed, token)&15]
}

// Get returns the cached claims of token.
func (c *TokenCache) Get(token string) (*Claims, bool) {
	s := c.shard(token)
	s.mu.RLock()
	cl, ok := s.m[token]
	s.mu.RUnlock()
	return cl, ok
}

// Put caches the claims of a verified token.
func (c *TokenCache) Put(token string, cl *Claims) {
	s := c.shard(token)
	s.mu.Lock()
	if len(s.m) >= c.per {
		for k := range s.m {
			delete(s.m, k)
			break
		}
	}
	s.m[token] = cl
	s.mu.Unlock()
}

// Prune drops entries that expired before now.
func (c *TokenCache) Prune(now time.Time) {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		for k, cl := range s.m {
			if !now.Before(cl.Expiry) {
				delete(s.m, k)
			}
		}
		s.mu.Unlock()
	}
}
