package edgeassert

import (
	"context"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/erpgate/erpgate/internal/jwtverify"
)

// KeyIDPrefix starts the kid of every key the edge signs assertions with.
// The edge publishes the keys of client access tokens in the same JWKS with
// other kids; those are never used here.
const KeyIDPrefix = jwtverify.AssertionKIDPrefix

// KeySource returns the edge's current key set. It is called with a context
// bounded by Config.FetchTimeout.
type KeySource func(ctx context.Context) (jwk.Set, error)

// retryAfterFailure bounds the wait after a failed fetch: a key source that
// was briefly unreachable (a config reload, a restart) is asked again soon,
// still at most once a second.
const retryAfterFailure = time.Second

// newKeySet is the assertion keys of the edge's JWKS, in erpgate's one key
// set (internal/jwtverify): kid "edge-…", alg EdDSA, use sig or none given,
// an Ed25519 key; the other keys of the set are skipped. Reads are
// lock-free; an unknown kid causes at most one fetch at a time and at most
// one per MinRefetch (background refreshes don't count, so a key published
// a second ago is found at once); a failed fetch, or one without an
// assertion key, keeps the last good keys.
func (v *Verifier) newKeySet(fetch KeySource) *jwtverify.KeySet {
	return &jwtverify.KeySet{
		Purpose: jwtverify.AssertionKeys, Fetch: jwtverify.FetchFunc(fetch),
		MinRefetch: v.cfg.MinRefetch, RetryAfterFailure: retryAfterFailure, FetchTimeout: v.cfg.FetchTimeout,
		Now: v.cfg.Now, BaseContext: v.base, OnFetch: v.cfg.OnFetch,
	}
}
