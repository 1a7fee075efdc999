// Package jwtverify is erpgate's one reader of signed tokens: every access
// token, login token and edge assertion, at the edge (erp_jwt), in the auth
// service and in a Go backend (backends/edgeassert), is parsed, matched to
// its key and verified here, one way (SECURITY.md "Ambiguity": one parse,
// one answer, everywhere).
//
// It owns:
//   - Parse: the strict compact-JWS reader in front of jwx — strict
//     base64url, the header read by internal/tokenjson (jwx alone accepts
//     case-variant duplicate members and lenient base64), no crit, jku,
//     x5u, jwk, x5c or b64 (RFC 8725, RFC 7515);
//   - Token.Verify: the signature, through lestrrat-go/jwx's jws.Verify
//     with the key's own algorithm;
//   - VerifyAccess: the RFC 9068 access-token checks shared by the edge and
//     the auth service;
//   - Select and KeySet: the one JWKS key filter (access-token keys apart
//     from edge-assertion keys) and the key set with its refetch limits.
//
// Signing is not here: the auth service signs with jwx (authsvc/keys.go).
//
// It must not import Caddy, viper or any erpgate package but
// internal/tokenjson: backends/edgeassert, which external Go services
// import, depends on it (Go's internal rule limits who names this package
// directly, not who links it through edgeassert).
package jwtverify
