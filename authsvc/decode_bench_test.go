package authsvc

import (
	"strings"
	"testing"
	"time"
)

// BenchmarkDecodeAccessClaims is the JSON half of verifyAccess: the claims
// of one access token decoded into AccessClaims (no signature).
func BenchmarkDecodeAccessClaims(b *testing.B) {
	s, _ := testService(b)
	tok, err := s.issueAccess("5f0c8f7e-3a57-4c55-9a3c-0c1a4e1d2b6f", "9b2d7c64-1f0e-4d8e-8a51-7d3e2c1b0a99", "acme", "standard", []string{RoleAdmin}, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	payload, err := b64Strict.DecodeString(strings.Split(tok, ".")[1])
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		var c AccessClaims
		if err := accessClaimsJSON.Decode(payload, &c); err != nil {
			b.Fatal(err)
		}
	}
}
