package authsvc

import (
	"context"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jws/jwsbb"

	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/jwtverify"
)

// Issue #14: hand-written JWS against jwx, side by side, for the auth
// service's signing (access tokens at login and refresh; edge assertions,
// signed here for erp_authz) and its check of access tokens.

func BenchmarkJWSSign(b *testing.B) {
	s, k := testService(b)
	now := time.Now()
	c := AccessClaims{Issuer: s.cfg.Issuer, Subject: "5f0c8f7e-3a57-4c55-9a3c-0c1a4e1d2b6f", Audience: s.cfg.Audience,
		IssuedAt: now.Unix(), NotBefore: now.Unix(), ExpiresAt: now.Add(s.cfg.AccessTTL).Unix(), ID: "0b8e3c1d-6a4f-4f3e-9d2c-1b0a99887766",
		SessionID: "9b2d7c64-1f0e-4d8e-8a51-7d3e2c1b0a99", CompanyID: "acme", Roles: []string{RoleAdmin}, Scope: scopeString([]string{RoleAdmin}), Plan: "standard"}
	payload := appendAccessClaims(nil, &c)
	hdr := jws.NewHeaders()
	_ = hdr.Set(jws.KeyIDKey, k.kid)
	_ = hdr.Set(jws.TypeKey, TypAccess)
	enc := []byte(k.header(TypAccess))
	b.Run("hand", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := signJWT(k, TypAccess, payload); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("jws.Sign", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := jws.Sign(payload, jws.WithKey(jwa.EdDSA(), k.priv, jws.WithProtectedHeaders(hdr))); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("jwsbb", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			buf := jwsbb.SignBuffer(make([]byte, 0, 512), enc, payload, b64, true)
			sig, err := jwsbb.Sign(k.priv, "EdDSA", buf, nil)
			if err != nil {
				b.Fatal(err)
			}
			_ = string(jwsbb.AppendSignature(append(buf, '.'), sig, b64))
		}
	})
	_ = contract.TypAssertion
}

func BenchmarkJWSVerifyAccess(b *testing.B) {
	s, k := testService(b)
	tok, err := s.issueAccess("5f0c8f7e-3a57-4c55-9a3c-0c1a4e1d2b6f", "9b2d7c64-1f0e-4d8e-8a51-7d3e2c1b0a99", "acme", "standard", []string{RoleAdmin}, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	b.Run("hand", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.verifyAccess(tok); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("jwx", func(b *testing.B) {
		key := jwtverify.EdDSAKey(k.kid, k.pub)
		keys := func(_ context.Context, kid string) (jwtverify.Key, error) {
			if kid != key.Kid {
				return jwtverify.Key{}, jwtverify.ErrUnknownKey
			}
			return key, nil
		}
		p := &jwtverify.AccessPolicy{Issuer: s.cfg.Issuer, Audience: s.cfg.Audience, Leeway: clockSkew}
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := jwtverify.VerifyAccess(ctx, p, keys, tok, time.Now()); err != nil {
				b.Fatal(err)
			}
		}
	})
}
