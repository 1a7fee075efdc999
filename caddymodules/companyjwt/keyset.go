package companyjwt

// This file has no Caddy import.

import "github.com/erpgate/erpgate/internal/jwtverify"

// KeySet holds the issuer's access-token keys: jwtverify's one key set, its
// zero Purpose selecting access-token keys (never an edge assertion key,
// whose kid is refused without a fetch). An unknown kid triggers at most
// one refetch at a time, at most one per MinRefetch, and is then remembered
// as unknown for NegativeTTL; a failed fetch keeps the last good keys.
type KeySet = jwtverify.KeySet

// FetchFunc returns the issuer's current key set.
type FetchFunc = jwtverify.FetchFunc

// Key is one verification key with the algorithm it is published for.
type Key = jwtverify.Key
