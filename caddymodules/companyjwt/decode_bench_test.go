package companyjwt

import (
	"strings"
	"testing"
)

// BenchmarkDecodeToken is the JSON half of a first verification: the
// protected header and the claims of a typical access token decoded into
// their structs (no signature, no cache).
func BenchmarkDecodeToken(b *testing.B) {
	f := newFixture(b)
	tok := f.sign(b, goodClaims(), nil)
	parts := strings.Split(tok, ".")
	hb, _ := strictB64.DecodeString(parts[0])
	pb, _ := strictB64.DecodeString(parts[1])
	b.ReportAllocs()
	for b.Loop() {
		var h header
		var cs claimSet
		if err := headerJSON.Decode(hb, &h); err != nil {
			b.Fatal(err)
		}
		if err := claimsJSON.Decode(pb, &cs); err != nil {
			b.Fatal(err)
		}
	}
}
