package jwtverify

import (
	"crypto/ed25519"
	"strings"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/erpgate/erpgate/contract"
)

// AssertionKIDPrefix starts the kid of every edge-assertion key and of no
// access-token key: the contract's name (contract holds names only, so
// backends/edgeassert links nothing more through it).
const AssertionKIDPrefix = contract.AssertionKIDPrefix

// Purpose says which keys of erpgate's JWKS a verifier uses: the auth
// service publishes access-token keys and edge-assertion keys in one set,
// and they are not interchangeable.
type Purpose uint8

const (
	// AccessKeys verify access tokens: a kid without AssertionKIDPrefix,
	// an asymmetric algorithm (never HMAC or none, RFC 8725 §3.1).
	AccessKeys Purpose = iota
	// AssertionKeys verify edge assertions: a kid with
	// AssertionKIDPrefix, alg EdDSA, an Ed25519 key.
	AssertionKeys
)

// accessAlgs are the algorithms an access-token key may be published for.
var accessAlgs = map[string]bool{
	"EdDSA": true, "Ed25519": true,
	"ES256": true, "ES384": true, "ES512": true,
	"RS256": true, "RS384": true, "RS512": true,
	"PS256": true, "PS384": true, "PS512": true,
}

// Owns reports whether kid can name a key of purpose p. A kid of the other
// purpose is refused before any look-up, and never causes a fetch.
func (p Purpose) Owns(kid string) bool {
	if kid == "" || len(kid) > MaxKidBytes {
		return false
	}
	return strings.HasPrefix(kid, AssertionKIDPrefix) == (p == AssertionKeys)
}

// Select is the one JWKS key filter: the keys of set usable for purpose p,
// by kid. A key is usable when its kid is p's (Owns), its use is "sig" or
// absent, it names an algorithm p allows, and its public key exports. Other
// keys are skipped, not fatal: the set holds both purposes' keys, and may
// hold keys of algorithms this verifier does not take.
func Select(set jwk.Set, p Purpose) map[string]Key {
	m := make(map[string]Key, set.Len())
	for i := range set.Len() {
		k, ok := set.Key(i)
		if !ok {
			continue
		}
		kid, ok := k.KeyID()
		if !ok || !p.Owns(kid) {
			continue
		}
		if use, ok := k.KeyUsage(); ok && use != "sig" {
			continue
		}
		ka, ok := k.Algorithm()
		if !ok {
			continue
		}
		name := ka.String()
		if p == AssertionKeys && name != "EdDSA" || p == AccessKeys && !accessAlgs[name] {
			continue
		}
		alg, ok := jwa.LookupSignatureAlgorithm(name)
		if !ok {
			continue
		}
		pub, err := k.PublicKey()
		if err != nil {
			continue
		}
		var raw any
		if err := jwk.Export(pub, &raw); err != nil {
			continue
		}
		if p == AssertionKeys {
			switch ek := raw.(type) {
			case ed25519.PublicKey:
			case *ed25519.PublicKey:
				raw = *ek
			default:
				continue
			}
		}
		m[kid] = Key{Kid: kid, Alg: alg, Public: raw}
	}
	return m
}
