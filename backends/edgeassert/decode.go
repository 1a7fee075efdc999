package edgeassert

import "github.com/erpgate/erpgate/internal/tokenjson"

// header is the JOSE header of an assertion: the members read, and the
// members whose mere presence refuses it.
type header struct {
	Alg, Kid, Typ string
	Refused       string // the first of crit, jku, x5u, jwk, x5c, b64 present
}

// wireHeader is the header as tokenjson decodes it (RFC 8725 §3.10, RFC
// 7515 §4.1.11: nothing names a key but kid, nothing is critical).
type wireHeader struct {
	Alg  string        `json:"alg"`
	Kid  string        `json:"kid"`
	Typ  string        `json:"typ"`
	Crit tokenjson.Raw `json:"crit"`
	Jku  tokenjson.Raw `json:"jku"`
	X5u  tokenjson.Raw `json:"x5u"`
	Jwk  tokenjson.Raw `json:"jwk"`
	X5c  tokenjson.Raw `json:"x5c"`
	B64  tokenjson.Raw `json:"b64"`
}

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

// Token JSON is read by the parser the edge and the auth service use
// (internal/tokenjson): case-sensitive names, no duplicate in any case,
// valid UTF-8, each member of its type.
var (
	headerJSON = tokenjson.MustCompile[wireHeader]()
	claimsJSON = tokenjson.MustCompile[claimSet]()
)

func decodeHeader(b []byte) (header, error) {
	var w wireHeader
	if err := headerJSON.Decode(b, &w); err != nil {
		return header{}, err
	}
	h := header{Alg: w.Alg, Kid: w.Kid, Typ: w.Typ}
	for _, m := range [...]struct {
		name string
		v    tokenjson.Raw
	}{{"crit", w.Crit}, {"jku", w.Jku}, {"x5u", w.X5u}, {"jwk", w.Jwk}, {"x5c", w.X5c}, {"b64", w.B64}} {
		if m.v != nil {
			h.Refused = m.name
			break
		}
	}
	return h, nil
}

func decodeClaims(b []byte) (claimSet, error) {
	var c claimSet
	err := claimsJSON.Decode(b, &c)
	return c, err
}
