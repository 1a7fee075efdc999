package assertion

// This file has no Caddy import: the assertion cache and its bounds test and
// benchmark alone.

import (
	"hash/maphash"
	"sync"
	"time"
)

// Bounds of the edge assertion (DESIGN.md "Edge assertion").
const (
	// TTL is the longest an assertion lives (authsvc.MaxAssertionTTL).
	TTL = 60 * time.Second
	// Margin: a cached assertion is reused while it has more than
	// this left, so that it reaches the backend alive; then a new one is
	// signed. An assertion bounded by its credential's expiry is reused to
	// the end (a new one could live no longer).
	Margin = 10 * time.Second
	// cacheSize is about the number of assertions kept.
	cacheSize = 10000
)

// cacheKey names a cached assertion: one per verified credential (the
// access token itself, or an API key's digest) and backend (the audience).
type cacheKey struct {
	cred, backend string
}

// entry is a signed assertion and what it states.
type entry struct {
	token string
	until time.Time // reused before this
	// The identity it states: a hit is used only for a request with that
	// same verified identity (an API key's identity may change under it).
	sub, cid, roles, scope, plan string
}

// statesFor reports whether e states this identity.
func (e *entry) statesFor(sub, cid, roles, scope, plan string) bool {
	return e.sub == sub && e.cid == cid && e.roles == roles && e.scope == scope && e.plan == plan
}

// reuseUntil is when an assertion signed with exp stops being reused: the
// margin before exp, unless exp is the credential's own expiry.
func reuseUntil(exp time.Time, boundByCredential bool) time.Time {
	if boundByCredential {
		return exp
	}
	return exp.Add(-Margin)
}

// Expiry is the exp of an assertion signed at now for a credential
// that expires at credExp (zero: never): at most TTL later, never
// after the credential, in whole seconds (a JWT's NumericDate) rounded down.
// ok is false when no such time is after now's second: the credential has
// expired (or does within the second) and no assertion can vouch for it.
func Expiry(now, credExp time.Time) (exp time.Time, boundByCredential, ok bool) {
	exp = now.Add(TTL)
	if !credExp.IsZero() && credExp.Before(exp) {
		exp, boundByCredential = credExp, true
	}
	exp = exp.Truncate(time.Second)
	return exp, boundByCredential, exp.Unix() > now.Unix()
}

// cache holds signed assertions, sharded like companyjwt's
// TokenCache so that concurrent hits share no lock. When a shard is full an
// expired entry, or else an arbitrary one, makes room.
type cache struct {
	shards [16]cacheShard
	per    int
	seed   maphash.Seed
}

type cacheShard struct {
	mu sync.RWMutex
	m  map[cacheKey]*entry
}

func newCache(size int) *cache {
	per := max(size/16, 1)
	c := &cache{per: per, seed: maphash.MakeSeed()}
	for i := range c.shards {
		c.shards[i].m = make(map[cacheKey]*entry, min(per, 1024))
	}
	return c
}

func (c *cache) shard(cred string) *cacheShard {
	return &c.shards[maphash.String(c.seed, cred)&15]
}

// get returns the assertion for the credential and backend if it may still
// be reused at now.
func (c *cache) get(cred, backend string, now time.Time) (*entry, bool) {
	s := c.shard(cred)
	s.mu.RLock()
	e, ok := s.m[cacheKey{cred, backend}]
	s.mu.RUnlock()
	if !ok || !now.Before(e.until) {
		return nil, false
	}
	return e, true
}

// put caches e for the credential and backend.
func (c *cache) put(cred, backend string, e *entry, now time.Time) {
	s := c.shard(cred)
	k := cacheKey{cred, backend}
	s.mu.Lock()
	if _, replace := s.m[k]; !replace && len(s.m) >= c.per {
		// Make room: the first expired entry among a few, or else the
		// first one (map order is random).
		var victim cacheKey
		n := 0
		for vk, ve := range s.m {
			if n == 0 {
				victim = vk
			}
			if !now.Before(ve.until) {
				victim = vk
				break
			}
			if n++; n == 8 {
				break
			}
		}
		delete(s.m, victim)
	}
	s.m[k] = e
	s.mu.Unlock()
}

// len is the number of cached assertions.
func (c *cache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}
