package companyjwt

import (
	"context"
	"testing"

	"github.com/erpgate/erpgate/internal/jwtverify"
)

// BenchmarkJWSVerify (issue #14): the edge's first check of an access token
// (no cache), by the hand-written reader (strict parse, jwx's
// VerifyCompactFast) against internal/jwtverify (strict parse, jws.Verify).
func BenchmarkJWSVerify(b *testing.B) {
	f := newFixture(b)
	f.v.Cache = nil
	tok := f.sign(b, goodClaims(), nil)
	ctx := context.Background()
	b.Run("hand", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := f.v.Verify(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("jwx", func(b *testing.B) {
		ks := &jwtverify.KeySet{Now: f.v.Now}
		set, err := f.v.Keys.Fetch(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := ks.Load(set); err != nil {
			b.Fatal(err)
		}
		p := &jwtverify.AccessPolicy{Issuer: f.v.Policy.Issuer, Audience: f.v.Policy.Audience, Leeway: f.v.Policy.Leeway, ExpiryLeeway: f.v.Policy.Leeway}
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := jwtverify.VerifyAccess(ctx, p, ks.Lookup, tok, testNow); err != nil {
				b.Fatal(err)
			}
		}
	})
}
