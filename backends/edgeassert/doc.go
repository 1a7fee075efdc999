// Package edgeassert lets an ERP service written in Go tell requests that
// came through the erpgate edge from anyone else who can reach it.
// A Verifier owns its key set and its cache of verified assertions; there is
// no package-wide state. Other Go modules import it, so it must not import
// Caddy or anything under caddymodules/; of ours it imports only
// internal/jwtverify and internal/tokenjson.
//
// The edge vouches for every request it proxies with an edge assertion: a
// short-lived JWT in the X-ERP-Assertion header, signed with the edge's own
// Ed25519 key and published in its JWKS (/.well-known/jwks.json). It names
// the backend it is for (aud) and the identity the edge verified (sub, cid,
// roles, scope, plan). A service that checks it needs no shared secret and
// trusts no other identity header: X-ERP-Company-ID and its kin can be sent
// by anyone who reaches the service directly.
//
// Use:
//
//	v, err := edgeassert.New(ctx, edgeassert.Config{
//		JWKSURL:  "https://edge.example/.well-known/jwks.json",
//		Issuer:   "https://edge.example",
//		Audience: "invoices", // this backend's name in the edge's config
//	})
//	if err != nil { … }
//	http.ListenAndServe("127.0.0.1:9001", v.Middleware(mux))
//	// in a handler:
//	id, _ := edgeassert.FromContext(r.Context()) // id.Company, id.User, id.Roles, …
//
// # What is checked
//
// Following RFC 8725 and DESIGN.md's "Edge assertion":
//   - strict compact JWS with strict base64url; at most MaxTokenBytes;
//   - header: typ exactly "erp-edge+jwt"; alg exactly "EdDSA" (the only
//     algorithm accepted, and the key's own alg must be EdDSA too); a kid
//     that starts with "edge-" and names a key in the edge's JWKS; crit,
//     jku, x5u, jwk, x5c and b64 are refused, never followed;
//   - claims: iss exactly the configured issuer; aud exactly this
//     backend's name (a string, or an array holding only that name); exp
//     required and in the future; iat required and not in the future;
//     exp − iat at most 60 s; nbf, when present, not in the future (each
//     time comparison with Leeway, default 5 s); sub and cid required;
//   - token JSON: one object, no duplicate member in any case, member
//     names matched exactly, valid UTF-8, strings where strings belong.
//
// The token is read as the edge reads its access tokens (erpgate's
// internal/jwtverify: the strict reader above in front of
// lestrrat-go/jwx's jws.Verify); the key set is its one JWKS key set.
//
// Keys whose kid does not start with "edge-" are never used: the edge
// publishes the keys of client access tokens in the same JWKS, and a
// client's access token (typ at+jwt, signed by such a key) offered as an
// assertion is refused twice over.
//
// # Keys
//
// The key set comes from JWKSURL through lestrrat-go/jwx's jwk.Cache (on
// httprc), refreshed in the background every RefreshInterval; a failed
// refresh keeps the last good set. An assertion with a kid not (yet) known
// causes at most one refetch at a time and at most one per MinRefetch, so a
// flood of made-up kids cannot become a flood of fetches, while a key the
// edge published a second ago is found. Keys can instead come from any
// function (Config.Keys), e.g. an auth service in the same process. Nothing
// is fetched before the first request: New does no I/O.
//
// Verified assertions are cached (bounded, never past exp, and only while
// their key is still published): the edge reuses an assertion for up to
// 60 s, so most requests cost a map look-up, not a signature check.
//
// # The middleware
//
// Middleware removes every identity header a client could set
// (X-ERP-Company-ID, X-ERP-User-ID, X-ERP-Roles, X-ERP-Scope, in any case
// and with '_' for '-'), verifies the one X-ERP-Assertion (two are refused),
// and on success puts the Identity in the request's context. Otherwise it
// answers 401 with an application/problem+json body and a WWW-Authenticate
// challenge that say only that a valid edge assertion is required; why it
// was refused goes to Config.OnRefuse (for the service's log).
package edgeassert
