package apikey

// This file has no Caddy import.

import (
	"crypto/sha256"
	"sync"
	"time"
)

// Identity is what introspection says of a key.
type Identity struct {
	Active    bool
	KeyID     string
	CompanyID string
	Scope     string
	Plan      string
	Subject   string
	Expiry    time.Time // zero: none
}

type entry struct {
	id    Identity
	until time.Time
}

// Cache keeps introspection answers for a short time, keyed by the SHA-256
// of the key (the cache never holds a secret), and drops every entry of a
// key id when that key is revoked or rotated.
type Cache struct {
	mu    sync.Mutex
	m     map[[32]byte]entry
	byKey map[string][][32]byte
	max   int
}

// NewCache holds at most max answers.
func NewCache(max int) *Cache {
	return &Cache{m: map[[32]byte]entry{}, byKey: map[string][][32]byte{}, max: max}
}

// Hash is the cache key of a secret.
func Hash(secret string) [32]byte { return sha256.Sum256([]byte(secret)) }

// Get returns a fresh answer.
func (c *Cache) Get(h [32]byte, now time.Time) (Identity, bool) {
	c.mu.Lock()
	e, ok := c.m[h]
	c.mu.Unlock()
	if !ok || !now.Before(e.until) {
		return Identity{}, false
	}
	return e.id, true
}

// Put stores an answer until until.
func (c *Cache) Put(h [32]byte, id Identity, until time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		for k, e := range c.m { // evict an arbitrary entry
			delete(c.m, k)
			c.unindex(e.id.KeyID, k)
			break
		}
	}
	c.m[h] = entry{id: id, until: until}
	if id.KeyID != "" {
		c.byKey[id.KeyID] = append(c.byKey[id.KeyID], h)
	}
}

func (c *Cache) unindex(keyID string, h [32]byte) {
	hs := c.byKey[keyID]
	for i, x := range hs {
		if x == h {
			hs = append(hs[:i], hs[i+1:]...)
			break
		}
	}
	if len(hs) == 0 {
		delete(c.byKey, keyID)
	} else {
		c.byKey[keyID] = hs
	}
}

// Forget drops every answer about keyID.
func (c *Cache) Forget(keyID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, h := range c.byKey[keyID] {
		delete(c.m, h)
	}
	delete(c.byKey, keyID)
}
