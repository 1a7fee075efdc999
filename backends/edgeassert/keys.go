package edgeassert

import (
	"context"
	"crypto/ed25519"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
)

// KeyIDPrefix starts the kid of every key the edge signs assertions with.
// The edge publishes the keys of client access tokens in the same JWKS with
// other kids; those are never used here.
const KeyIDPrefix = "edge-"

// KeySource returns the edge's current key set. It is called with a context
// bounded by Config.FetchTimeout.
type KeySource func(ctx context.Context) (jwk.Set, error)

// keySet holds the usable assertion keys by kid. Reads are lock-free; an
// unknown kid causes at most one fetch at a time and at most one per
// minRefetch (background refreshes don't count, so a key published a second
// ago is found at once).
type keySet struct {
	fetch        KeySource
	minRefetch   time.Duration
	fetchTimeout time.Duration
	now          func() time.Time
	base         context.Context // bounds fetches: they outlive the request that caused them
	onFetch      func(error)

	keys atomic.Pointer[map[string]ed25519.PublicKey]

	mu         sync.Mutex
	lastDemand time.Time     // the last fetch caused by an unknown kid
	lastFailed bool          // … and it failed
	flight     chan struct{} // closed when the fetch under way ends
}

// retryAfterFailure bounds the wait after a failed fetch: a key source that
// was briefly unreachable (a config reload, a restart) is asked again soon,
// still at most once a second.
const retryAfterFailure = time.Second

var errNoUsableKey = errors.New("no usable assertion key in the key set")

// usableKeys picks the assertion keys of set: kid prefixed "edge-", alg
// EdDSA, use sig (or none given), an Ed25519 public key. Other keys are
// skipped, not fatal: the set also holds the access-token keys.
func usableKeys(set jwk.Set) map[string]ed25519.PublicKey {
	m := make(map[string]ed25519.PublicKey, set.Len())
	for i := 0; i < set.Len(); i++ {
		k, ok := set.Key(i)
		if !ok {
			continue
		}
		kid, ok := k.KeyID()
		if !ok || !strings.HasPrefix(kid, KeyIDPrefix) || len(kid) > maxKidBytes {
			continue
		}
		if use, ok := k.KeyUsage(); ok && use != "sig" {
			continue
		}
		if alg, ok := k.Algorithm(); !ok || alg.String() != algEdDSA {
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
		switch p := raw.(type) {
		case ed25519.PublicKey:
			m[kid] = p
		case *ed25519.PublicKey:
			m[kid] = *p
		}
	}
	return m
}

func (ks *keySet) get(kid string) (ed25519.PublicKey, bool) {
	p := ks.keys.Load()
	if p == nil {
		return nil, false
	}
	k, ok := (*p)[kid]
	return k, ok
}

// lookup finds the key of kid, fetching the set when kid is unknown and the
// rate limit allows.
func (ks *keySet) lookup(ctx context.Context, kid string) (ed25519.PublicKey, error) {
	if k, ok := ks.get(kid); ok {
		return k, nil
	}
	ks.mu.Lock()
	if f := ks.flight; f != nil { // someone is fetching: wait for that one
		ks.mu.Unlock()
		select {
		case <-f:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if k, ok := ks.get(kid); ok {
			return k, nil
		}
		return nil, ErrUnknownKey
	}
	now := ks.now()
	wait := ks.minRefetch
	if ks.lastFailed && wait > retryAfterFailure {
		wait = retryAfterFailure
	}
	if !ks.lastDemand.IsZero() && now.Sub(ks.lastDemand) < wait {
		ks.mu.Unlock()
		return nil, ErrUnknownKey
	}
	f := make(chan struct{})
	ks.flight, ks.lastDemand = f, now
	ks.mu.Unlock()

	err := ks.load(ks.fetch)

	ks.mu.Lock()
	ks.flight, ks.lastFailed = nil, err != nil
	close(f)
	ks.mu.Unlock()
	if k, ok := ks.get(kid); ok {
		return k, nil
	}
	return nil, ErrUnknownKey
}

// load gets the set from src and keeps it when it has a usable key; a
// failed or empty fetch keeps the last good keys.
func (ks *keySet) load(src KeySource) error {
	ctx, cancel := context.WithTimeout(ks.base, ks.fetchTimeout)
	defer cancel()
	set, err := src(ctx)
	if err == nil {
		if m := usableKeys(set); len(m) > 0 {
			ks.keys.Store(&m)
		} else {
			err = errNoUsableKey
		}
	}
	if ks.onFetch != nil {
		ks.onFetch(err)
	}
	return err
}
