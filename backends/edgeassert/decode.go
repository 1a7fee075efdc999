package edgeassert

import "github.com/erpgate/erpgate/internal/tokenjson"

// claimSet is the payload of an assertion as sent.
type claimSet struct {
	Iss   string             `json:"iss"`
	Sub   string             `json:"sub"`
	Cid   string             `json:"cid"`
	Scope string             `json:"scope"`
	Plan  string             `json:"plan"`
	Jti   string             `json:"jti"`
	Aud   tokenjson.Audience `json:"aud"`
	Exp   *float64           `json:"exp"`
	Iat   *float64           `json:"iat"`
	Nbf   *float64           `json:"nbf"`
	Roles []string           `json:"roles"`
}

// The claims are read by the parser the edge and the auth service use
// (internal/tokenjson): case-sensitive names, no duplicate in any case,
// valid UTF-8, each member of its type. The header is jwtverify.Parse's.
var claimsJSON = tokenjson.MustCompile[claimSet]()

func decodeClaims(b []byte) (claimSet, error) {
	var c claimSet
	err := claimsJSON.Decode(b, &c)
	return c, err
}
