package authz

// This file has no Caddy import: the assertion cache and its bounds test and
// benchmark alone.

import (
	"hash/maphash"
	"sync"
	"time"
)

// Bounds of the edge assertion (DESIGN.md "Edge assertion").
const (
	// assertionTTL is the longest an assertion lives (authsvc.MaxAssertionTTL).
	assertionTTL = 60 * time.Second
	// assertionMargin: a cached assertion is reused while it has more than
	// this left, so that it reaches the backend alive; then a new one is
	// signed. An assertion bounded by its credential's expiry is reused to
	// the end (a new one could live no longer).
	assertionMargin = 10 * time.Second
	// assertionCacheSize is about the number of assertions kept.
	assertionCacheSize = 10000
)

// assertionKey names a cached assertion: one per verified credential (the
// access token itself, or an API key's digest) and backend (the audience).
type assertionKey struct {
	cred, backend string
}

// assertionEntry is a signed assertion and what it states.
type assertionEntry struct {
	token string
	until time.Time // reused before this
	// The identity it states: a hit is used only for a request with that
	// same verified identity (an API key's identity may change under it).
	sub, cid, roles, scope, plan string
}

// statesFor reports whether e states this identity.
func (e *assertionEntry) statesFor(sub, cid, roles, scope, plan string) bool {
	return e.sub == sub && e.cid == cid && e.roles == roles && e.scope == scope && e.plan == plan
}

// reuseUntil is when an assertion signed with exp stops being reused: the
// margin before exp, unless exp is the credential's own expiry.
func reuseUntil(exp time.Time, boundByCredential bool) time.Time {
	if boundByCredential {
		return exp
	}
	return exp.Add(-assertionMargin)
}

// assertionExpiry is the exp of an assertion signed at now for a credential
// that expires at credExp (zero: never): at most assertionTTL later, never
// after the credential, in whole seconds (a JWT's NumericDate) rounded down.
// ok is false when no such time is after now's second: the credential has
// expired (or does within the second) and no assertion can vouch for it.
func assertionExpiry(now, credExp time.Time) (exp time.Time, boundByCredential, ok bool) {
	exp = now.Add(assertionTTL)
	if !credExp.IsZero() && credExp.Before(exp) {
		exp, boundByCredential = credExp, true
	}
	exp = exp.Truncate(time.Second)
	return exp, boundByCredential, exp.Unix() > now.Unix()
}

// assertionCache holds signed assertions, sharded like companyjwt's
// TokenCache so that concurrent hits share no lock. When a shard is full an
// expired entry, or else an arbitrary one, makes room.
type assertionCache struct {
	shards [16]assertionShard
	per    int
	seed   maphash.Seed
}

type assertionShard struct {
	mu sync.RWMutex
	m  map[assertionKey]*assertionEntry
}

func newAssertionCache(size int) *assertionCache {
	per := max(size/16, 1)
	c := &assertionCache{per: per, seed: maphash.MakeSeed()}
	for i := range c.shards {
		c.shards[i].m = make(map[assertionKey]*assertionEntry, min(per, 1024))
	}
	return c
}

func (c *assertionCache) shard(cred string) *assertionShard {
	return &c.shards[maphash.String(c.seed, cred)&15]
}

// get returns the assertion for the credential and backend if it may still
// be reused at now.
func (c *assertionCache) get(cred, backend string, now time.Time) (*assertionEntry, bool) {
	s := c.shard(cred)
	s.mu.RLock()
	e, ok := s.m[assertionKey{cred, backend}]
	s.mu.RUnlock()
	if !ok || !now.Before(e.until) {
		return nil, false
	}
	return e, true
}

// put caches e for the credential and backend.
func (c *assertionCache) put(cred, backend string, e *assertionEntry, now time.Time) {
	s := c.shard(cred)
	k := assertionKey{cred, backend}
	s.mu.Lock()
	if _, replace := s.m[k]; !replace && len(s.m) >= c.per {
		// Make room: the first expired entry among a few, or else the
		// first one (map order is random).
		var victim assertionKey
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
func (c *assertionCache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}
