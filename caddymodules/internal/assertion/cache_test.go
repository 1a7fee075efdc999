package assertion

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 22, 12, 0, 0, 300_000_000, time.UTC) // not on a whole second

func TestAssertionExpiry(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		credExp   time.Time
		exp       time.Time
		bound, ok bool
	}{
		{"no credential expiry: 60 s", time.Time{}, t0.Add(60 * time.Second).Truncate(time.Second), false, true},
		{"credential lives longer: 60 s", t0.Add(time.Hour), t0.Add(60 * time.Second).Truncate(time.Second), false, true},
		{"credential expires first: its expiry", t0.Add(20 * time.Second), t0.Add(20 * time.Second).Truncate(time.Second), true, true},
		{"rounded down, never after the credential", t0.Add(1500 * time.Millisecond), t0.Add(time.Second).Truncate(time.Second), true, true},
		{"credential expires within the second", t0.Add(500 * time.Millisecond), time.Time{}, true, false},
		{"credential expired (edge leeway)", t0.Add(-10 * time.Second), time.Time{}, true, false},
	} {
		exp, bound, ok := Expiry(t0, tc.credExp)
		if ok != tc.ok || bound != tc.bound || (ok && !exp.Equal(tc.exp)) {
			t.Errorf("%s: exp %v bound %v ok %v; want %v %v %v", tc.name, exp, bound, ok, tc.exp, tc.bound, tc.ok)
		}
		if ok && (exp.Sub(t0) > TTL || (!tc.credExp.IsZero() && exp.After(tc.credExp))) {
			t.Errorf("%s: exp %v out of bounds", tc.name, exp)
		}
	}
}

func TestAssertionCacheBound(t *testing.T) {
	t.Parallel()
	c := newCache(64)
	for i := range 1000 {
		c.put(fmt.Sprint("cred-", i), "invoices", &entry{token: "t", until: t0.Add(time.Minute)}, t0)
	}
	if n := c.len(); n > 64 {
		t.Fatalf("cache grew to %d entries, bound 64", n)
	}
	// Replacing an entry evicts nothing; expired entries go first.
	c = newCache(16) // one entry per shard
	c.put("a", "invoices", &entry{token: "old", until: t0.Add(time.Second)}, t0)
	c.put("a", "invoices", &entry{token: "new", until: t0.Add(time.Minute)}, t0)
	if e, ok := c.get("a", "invoices", t0); !ok || e.token != "new" || c.len() != 1 {
		t.Fatalf("replace: %v %v (%d entries)", e, ok, c.len())
	}
	if _, ok := c.get("a", "invoices", t0.Add(time.Minute)); ok {
		t.Fatal("entry used at its until")
	}
	if _, ok := c.get("a", "ledger", t0); ok {
		t.Fatal("entry of another backend")
	}
}

// BenchmarkAssertionCacheHit is the per-request cost of the edge assertion
// once signed: the cache look-up and the identity check (compare
// companyjwt's BenchmarkVerifyCached, the verified-token cache hit).
func BenchmarkAssertionCacheHit(b *testing.B) {
	c := newCache(cacheSize)
	cred := "eyJhbGciOiJFZERTQSIsImtpZCI6IjdDZUh2c1E2Wl9Ub2h3SUZGNTYzTHlfT2gwYW0ycy05WjlZd1NjWkZmNVEiLCJ0eXAiOiJhdCtqd3QifQ." +
		"eyJpc3MiOiJlcnBnYXRlIiwic3ViIjoiNWYwYzhmN2UtM2E1Ny00YzU1LTlhM2MtMGMxYTRlMWQyYjZmIiwiYXVkIjoiZXJwZ2F0ZS1hcGkifQ." +
		"c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmUtc2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmU"
	for i := range 1000 { // a populated cache
		c.put(fmt.Sprint(cred, i), "invoices", &entry{token: "t", until: t0.Add(time.Hour)}, t0)
	}
	c.put(cred, "invoices", &entry{token: "assertion", until: t0.Add(time.Hour),
		sub: "usr_1", cid: "acme", roles: "admin", scope: "invoices:read invoices:write", plan: "standard"}, t0)
	// the request's own strings, not the cached ones: equal, not identical
	sub, cid, roles, scope, plan := strings.Clone("usr_1"), strings.Clone("acme"), strings.Clone("admin"), strings.Clone("invoices:read invoices:write"), strings.Clone("standard")
	key := strings.Clone(cred)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			e, ok := c.get(key, "invoices", t0)
			if !ok || !e.statesFor(sub, cid, roles, scope, plan) {
				b.Fatal("miss")
			}
		}
	})
}
