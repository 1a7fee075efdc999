package authsvc

import (
	"crypto/ed25519"
	"crypto/rand"
	"testing"
	"time"
)

// testService is a Service with just what issuing and verifying tokens
// need: the default config and a ring of one fresh signing key.
func testService(tb testing.TB) (*Service, ringKey) {
	tb.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	kid, err := thumbprint(pub)
	if err != nil {
		tb.Fatal(err)
	}
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ring, err := newKeyRing([]ringKey{{kid: kid, pub: pub, priv: priv, createdAt: t0, activatesAt: t0}})
	if err != nil {
		tb.Fatal(err)
	}
	cfg := Config{}
	cfg.setDefaults()
	s := &Service{cfg: cfg, keys: &keyManager{}, clock: SystemClock{}}
	s.keys.ring.Store(ring)
	k, _ := ring.signer(t0)
	return s, k
}

// BenchmarkSignAccess is the issue of one access token: claims, encoding,
// Ed25519 signature, compact serialization.
func BenchmarkSignAccess(b *testing.B) {
	s, _ := testService(b)
	now := time.Now()
	roles := []string{RoleAdmin}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.issueAccess("5f0c8f7e-3a57-4c55-9a3c-0c1a4e1d2b6f", "9b2d7c64-1f0e-4d8e-8a51-7d3e2c1b0a99", "acme", "standard", roles, now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyAccess is the check of one access token (signature,
// header, claims).
func BenchmarkVerifyAccess(b *testing.B) {
	s, _ := testService(b)
	tok, err := s.issueAccess("5f0c8f7e-3a57-4c55-9a3c-0c1a4e1d2b6f", "9b2d7c64-1f0e-4d8e-8a51-7d3e2c1b0a99", "acme", "standard", []string{RoleAdmin}, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.verifyAccess(tok); err != nil {
			b.Fatal(err)
		}
	}
}
