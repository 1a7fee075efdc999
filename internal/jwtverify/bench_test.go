package jwtverify

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"testing"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"
)

// BenchmarkVerifySignature: Token.Verify's signature step on one Ed25519
// access token, by hand (strict base64 and ed25519.Verify) and by jwx's two
// entry points. Issue #14's rule: keep a hand-written path only where it is
// at least 2x faster on a hot path. It is not: Ed25519 dominates, and
// jws.Verify's parsing costs allocations, not a multiple of the time (see
// the package's benchmarks in the #14 report). Token.Verify uses jws.Verify.
func BenchmarkVerifySignature(b *testing.B) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	enc := base64.RawURLEncoding
	h64 := enc.EncodeToString([]byte(`{"alg":"EdDSA","kid":"k1","typ":"at+jwt"}`))
	in := h64 + "." +
		enc.EncodeToString([]byte(`{"iss":"https://erpgate.test","sub":"5f0c8f7e-3a57-4c55-9a3c-0c1a4e1d2b6f","aud":"erpgate","exp":1772367300,"iat":1772366400,"nbf":1772366400,"jti":"0b8e","sid":"9b2d7c64-1f0e-4d8e-8a51-7d3e2c1b0a99","cid":"acme","roles":["admin"],"scope":"invoices:read invoices:write","plan":"standard"}`))
	tok := in + "." + enc.EncodeToString(ed25519.Sign(priv, []byte(in)))
	key := EdDSAKey("k1", pub)
	b.Run("hand-ed25519", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sig, _ := enc.Strict().DecodeString(tok[len(in)+1:])
			if !ed25519.Verify(pub, []byte(tok[:len(in)]), sig) {
				b.Fatal("refused")
			}
			if _, err := enc.Strict().DecodeString(tok[len(h64)+1 : len(in)]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("jws.VerifyCompactFast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := jws.VerifyCompactFast(pub, []byte(tok), jwa.EdDSA()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("jws.Verify", func(b *testing.B) {
		t, err := Parse(tok, 0)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := t.Verify(key); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkParse is the strict half of a first verification: Parse (the
// header) and the access-token claims decoded by tokenjson, no signature
// (it replaces companyjwt's BenchmarkDecodeToken and authsvc's
// BenchmarkDecodeAccessClaims).
func BenchmarkParse(b *testing.B) {
	enc := base64.RawURLEncoding
	payload := []byte(`{"iss":"https://erpgate.test","sub":"5f0c8f7e-3a57-4c55-9a3c-0c1a4e1d2b6f","aud":"erpgate","exp":1772367300,"iat":1772366400,"nbf":1772366400,"jti":"0b8e","sid":"9b2d7c64-1f0e-4d8e-8a51-7d3e2c1b0a99","cid":"acme","roles":["admin"],"scope":"invoices:read invoices:write","plan":"standard"}`)
	tok := enc.EncodeToString([]byte(`{"alg":"EdDSA","kid":"k1","typ":"at+jwt"}`)) + "." + enc.EncodeToString(payload) + "." + enc.EncodeToString(make([]byte, 64))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(tok, 0); err != nil {
			b.Fatal(err)
		}
		var cs accessClaimSet
		if err := accessClaimsJSON.Decode(payload, &cs); err != nil {
			b.Fatal(err)
		}
	}
}
