package authsvc

import (
	"crypto/ed25519"
	"crypto/rand"
	"testing"
	"time"

	"github.com/erpgate/erpgate/contract"
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
// Ed25519 signature, compact serialization, through jwx's jws.Sign. Issue
// #14 measured it beside the hand-written signer it replaced (commit
// e3e28b8, BenchmarkJWSSign): less than 2x apart, the signature dominates.
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
		if _, err := s.verifyAccess(b.Context(), tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSignAssertion is the signing of one edge assertion (erp_authz
// signs one per credential and backend, then reuses it for up to 50 s).
func BenchmarkSignAssertion(b *testing.B) {
	s, _ := testService(b)
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	kid, err := thumbprint(pub)
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ring, err := newKeyRing([]ringKey{{kid: contract.AssertionKIDPrefix + kid, pub: pub, priv: priv, createdAt: t0, activatesAt: t0}})
	if err != nil {
		b.Fatal(err)
	}
	s.edgeKeys = &keyManager{}
	s.edgeKeys.ring.Store(ring)
	s.ready.Store(true)
	now := time.Now()
	a := &Assertion{Audience: "invoices", Subject: "5f0c8f7e-3a57-4c55-9a3c-0c1a4e1d2b6f", CompanyID: "acme", Roles: []string{RoleAdmin},
		Scope: scopeString([]string{RoleAdmin}), Plan: "standard", IssuedAt: now, Expiry: now.Add(MaxAssertionTTL)}
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.SignAssertion(ctx, a); err != nil {
			b.Fatal(err)
		}
	}
}
