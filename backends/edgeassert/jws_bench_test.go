package edgeassert

import (
	"testing"
	"time"

	"github.com/erpgate/erpgate/internal/jwtverify"
)

// BenchmarkJWSVerify (issue #14): a backend's first check of an assertion
// (no cache), by the hand-written reader (strict parse, ed25519.Verify)
// against internal/jwtverify (strict parse, jws.Verify), claims checked
// alike.
func BenchmarkJWSVerify(b *testing.B) {
	e := newEdge(b, "edge-1")
	now := time.Now()
	tok := e.assertion(now, nil)
	v := newVerifier(b, e, func() time.Time { return now }, func(c *Config) { c.CacheSize = -1 })
	ctx := b.Context()
	if _, err := v.Verify(ctx, tok, "invoices"); err != nil {
		b.Fatal(err)
	}
	b.Run("hand", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := v.Verify(ctx, tok, "invoices"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("jwx", func(b *testing.B) {
		ks := &jwtverify.KeySet{Purpose: jwtverify.AssertionKeys, Now: time.Now}
		if _, err := ks.Load(e.jwks()); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			t, err := jwtverify.Parse(tok, 0)
			if err != nil || t.Header.Typ != Type {
				b.Fatal(err)
			}
			key, err := ks.Lookup(ctx, t.Header.Kid)
			if err != nil {
				b.Fatal(err)
			}
			pb, err := t.Verify(key)
			if err != nil {
				b.Fatal(err)
			}
			cs, err := decodeClaims(pb)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := v.checkClaims(&cs, "invoices", now); err != nil {
				b.Fatal(err)
			}
		}
	})
}
