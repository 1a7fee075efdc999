package authsvc_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// jwksKeys decodes the access-token keys of a JWK Set by hand (no jwx): kid
// -> Ed25519 public key. Every key must carry kid, alg and use.
func jwksKeys(raw []byte) (map[string]ed25519.PublicKey, error) {
	return jwksKeysOf(raw, false)
}

// jwksAssertionKeys are the assertion keys (kid "edge-…") of a JWKS.
func jwksAssertionKeys(raw []byte) (map[string]ed25519.PublicKey, error) {
	return jwksKeysOf(raw, true)
}

func jwksKeysOf(raw []byte, assertion bool) (map[string]ed25519.PublicKey, error) {
	var doc struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	out := map[string]ed25519.PublicKey{}
	for _, k := range doc.Keys {
		if k["kty"] != "OKP" || k["crv"] != "Ed25519" || k["alg"] != "EdDSA" || k["use"] != "sig" || k["kid"] == "" {
			return nil, fmt.Errorf("JWK lacks kty/crv/alg/use/kid: %v", k)
		}
		x, err := base64.RawURLEncoding.DecodeString(k["x"])
		if err != nil || len(x) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("bad x in JWK %s", k["kid"])
		}
		if strings.HasPrefix(k["kid"], "edge-") == assertion {
			out[k["kid"]] = ed25519.PublicKey(x)
		}
	}
	return out, nil
}

// verifyIndependently checks an access token with golang-jwt against keys:
// EdDSA only, typ at+jwt, iss, aud, exp required. It returns the claims and kid.
func verifyIndependently(tok string, keys map[string]ed25519.PublicKey, iss, aud string, now time.Time) (jwt.MapClaims, string, error) {
	var kid string
	claims := jwt.MapClaims{}
	parsed, err := jwt.ParseWithClaims(tok, claims, func(t *jwt.Token) (any, error) {
		if t.Header["typ"] != "at+jwt" {
			return nil, fmt.Errorf("typ = %v", t.Header["typ"])
		}
		kid, _ = t.Header["kid"].(string)
		k, ok := keys[kid]
		if !ok {
			return nil, fmt.Errorf("unknown kid %q", kid)
		}
		return k, nil
	}, jwt.WithValidMethods([]string{"EdDSA"}), jwt.WithIssuer(iss), jwt.WithAudience(aud),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithTimeFunc(func() time.Time { return now }))
	if err != nil {
		return nil, kid, err
	}
	if !parsed.Valid {
		return nil, kid, fmt.Errorf("token not valid")
	}
	for _, c := range []string{"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "sid", "cid", "roles", "scope", "plan"} {
		if _, ok := claims[c]; !ok {
			return nil, kid, fmt.Errorf("claim %s missing", c)
		}
	}
	return claims, kid, nil
}
