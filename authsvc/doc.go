// Package authsvc is erpgate's auth service: it logs users in, binds their
// sessions to a company, issues the company-scoped access tokens the edge
// checks, rotates refresh tokens, manages API keys and publishes its signing
// keys. It is served in-process by the `erp_authsvc` Caddy handler and
// standalone by `gateway authsvc --config FILE`; both serve Handler.
//
// A *Service owns the auth rules and its in-process state (throttles, the
// signing keys in use, revocation subscribers); what persists is package
// store's. It must not import Caddy, viper or anything under caddymodules/:
// the Caddy handler (caddymodules/authsvc) and the standalone server
// (authsvc/standalone) import it, never the other way round.
//
// # Flows (all under /api/v1/auth, every answer an envelope)
//
// login → select-company → refresh → switch-company → logout (this session
// or all); me; sessions (list, revoke one); api-keys (create, list, rotate,
// revoke); introspect. Login answers a 5-minute single-use login token, not
// an access token; when a SecondFactor says so it answers mfa_required and
// select-company refuses the token until the factor is verified.
//
// # Second factor, administration, audit
//
// TOTP (totp.go, mfa.go): RFC 6238 with SHA-1, 6 digits, 30-second steps
// and one step of skew; secrets sealed like signing keys; a code accepted
// once (its step marked in Redis or in process); every attempt reserved on a
// per-user counter before it is checked; ten hashed single-use recovery
// codes. Admin API (admin.go) under /api/v1/admin for platform admins, and
// for company owners and admins on their own company's memberships.
// Audit (audit.go, store/audit.go): every auth event is one record written
// with the change it records, hash-chained; `gateway erp audit verify`
// re-computes the chain. The OpenAPI document and reference page are in
// package openapi, checked against Routes() by openapi_test.go. The router
// (router.go) is a table of http.ServeMux patterns; every answer it gives
// itself (404, 405) is an envelope.
//
// # Tokens
//
// Access tokens are JWS compact, header {alg: EdDSA, kid, typ: at+jwt},
// claims iss sub aud exp iat nbf jti sid cid roles scope plan; scope is the
// space-separated union of the roles' scopes (scopes.go). Refresh tokens
// (`ert_…`) and API keys (`erp_live_<prefix>_<secret>`) carry 256 random
// bits and are stored as SHA-256. A refresh token is consumed on use; a
// consumed one presented again revokes its whole session (family) and is
// logged as a security event ("refresh_token_reuse").
//
// # What the edge uses in process
//
// The edge's JWT and API-key providers get the shared *Service from the erp
// app (caddymodules/erpapp: App.AuthService) and use:
//
//   - PublicKeys(ctx) jwk.Set: the published keys (kid, alg "EdDSA", use
//     "sig" on each; assertion keys' kids start with "edge-"), a copy;
//     re-read it to see rotations. Issuer() and Audience() are what iss
//     and aud must equal; tokens must have typ at+jwt.
//   - SignAssertion(ctx, a): erp_authz's edge assertion for a backend.
//   - SubscribeRevocations(ctx, fn): fn(msg) for every revocation this
//     service records from now on, at once, Redis or not (msg: a bare
//     session id, `apikey:<id>` or `apikey-rotated:<id>`). Every instance's
//     revocations reach every edge through Redis (channel
//     `<prefix>revocations`, marks `<prefix>revoked:sid:<sid>` kept for an
//     access token's lifetime plus a minute), published by the relay from
//     the store's outbox (revocation.go). IsSessionRevoked(ctx, userID, sid)
//     answers from the store: what an edge asks when its view of
//     revocations is not current (erp_jwt's revocation_staleness).
//   - IntrospectAPIKey(ctx, key) Introspection: active, status, company_id,
//     scope, plan, key_id, exp. Over HTTP the same answer comes from
//     POST /api/v1/auth/introspect with `Authorization: Bearer
//     <introspection_secret>`. A prefix that names no key costs what a
//     known prefix with a wrong secret costs (the same store call, one
//     SHA-256, two constant-time comparisons).
//
// # Keys
//
// Signing keys are Ed25519, sealed at rest with AES-256-GCM under the master
// key (ERP_MASTER_KEY) with the kid as additional data. A new key is
// published KeyPublishDelay before it signs; a key is deleted once its
// successor has been signing for longer than an access token lives.
// Rotation runs on schedule (KeyRotation) and on demand (RotateSigningKey,
// `gateway erp keys rotate`).
//
// The edge's assertions to backends (SignAssertion; DESIGN.md "Edge
// assertion") are signed with keys of their own, kept apart in the store
// (store.KeyAssertion) and managed the same way: their kid is
// "edge-" + thumbprint (no access-token kid starts so), they are published
// in the same JWKS, retired once no assertion (MaxAssertionTTL) they signed
// can be alive, and rotated on demand with RotateAssertionKey (`gateway erp
// keys rotate --assertion`). An access-token key never signs an assertion
// and an assertion key never signs, nor verifies, an access token.
package authsvc
