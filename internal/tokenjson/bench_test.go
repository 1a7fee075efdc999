package tokenjson

import (
	"encoding/json"
	"testing"
)

// accessClaims is a typical access token's claims set.
var accessClaims = []byte(`{"iss":"https://erpgate.test","sub":"5f0c8f7e-3a57-4c55-9a3c-0c1a4e1d2b6f","aud":"erpgate","exp":1764678000,` +
	`"iat":1764677100,"nbf":1764677100,"jti":"0193f1f2-4a5b-7c6d-8e9f-a0b1c2d3e4f5","sid":"9b2d7c64-1f0e-4d8e-8a51-7d3e2c1b0a99",` +
	`"cid":"acme","roles":["admin"],"scope":"customers:read customers:write invoices:read invoices:write","plan":"standard"}`)

type benchClaims struct {
	Iss   string   `json:"iss"`
	Sub   string   `json:"sub"`
	Aud   Audience `json:"aud"`
	Exp   *float64 `json:"exp"`
	Nbf   *float64 `json:"nbf"`
	Iat   *float64 `json:"iat"`
	Jti   string   `json:"jti"`
	Sid   string   `json:"sid"`
	Cid   string   `json:"cid"`
	Roles []string `json:"roles"`
	Scope string   `json:"scope"`
	Plan  string   `json:"plan"`
}

var benchSchema = MustCompile[benchClaims]()

// BenchmarkDecode: the claims of one access token, strict, against
// encoding/json's lenient Unmarshal into the same struct.
func BenchmarkDecode(b *testing.B) {
	b.Run("tokenjson", func(b *testing.B) {
		b.SetBytes(int64(len(accessClaims)))
		b.ReportAllocs()
		for b.Loop() {
			var c benchClaims
			if err := benchSchema.Decode(accessClaims, &c); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.SetBytes(int64(len(accessClaims)))
		b.ReportAllocs()
		for b.Loop() {
			var c struct {
				benchClaims
				Aud json.RawMessage `json:"aud"`
			}
			if err := json.Unmarshal(accessClaims, &c); err != nil {
				b.Fatal(err)
			}
		}
	})
}
