package companyjwt

// This file has no Caddy import.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/erpgate/erpgate/contract"
)

// Key is one verification key with the algorithm it is published for. The
// key's algorithm — never the token's — decides how a signature is checked.
type Key struct {
	Kid    string
	Alg    jwa.SignatureAlgorithm
	Public any
}

// allowedAlgs are the asymmetric signature algorithms a published key may
// carry; HMAC and "none" never verify an access token (RFC 8725 §3.1).
var allowedAlgs = map[string]bool{
	"EdDSA": true, "Ed25519": true,
	"ES256": true, "ES384": true, "ES512": true,
	"RS256": true, "RS384": true, "RS512": true,
	"PS256": true, "PS384": true, "PS512": true,
}

// FetchFunc returns the issuer's current key set.
type FetchFunc func(ctx context.Context) (jwk.Set, error)

// KeySet holds the issuer's published keys. An unknown kid triggers at most
// one refetch at a time, at most one per MinRefetch, and is then remembered
// as unknown for NegativeTTL: a flood of random kids cannot become a flood of
// fetches. A failed fetch keeps the last good keys.
type KeySet struct {
	Fetch        FetchFunc
	MinRefetch   time.Duration
	NegativeTTL  time.Duration
	FetchTimeout time.Duration
	Now          func() time.Time
	// BaseContext bounds fetches (they outlive the request that caused them).
	BaseContext context.Context
	// OnFetch is told of every fetch and its outcome (metrics, logs).
	OnFetch func(error)

	keys atomic.Pointer[map[string]Key]
	// stale is set while the last fetch failed: an unknown kid may then
	// be a key the issuer published and we could not fetch.
	stale atomic.Bool

	mu sync.Mutex
	// lastDemand is the last refetch caused by an unknown kid; background
	// refreshes don't count, so a key published a second ago is found.
	lastDemand time.Time
	negative   map[string]time.Time
	flight     chan struct{}
}

const maxNegative = 4096

// Load replaces the keys with the usable keys of set: signing keys with a kid
// and an allowed alg, except the edge's assertion keys (kid "edge-…"): keys
// are not interchangeable, and no access token is signed by one. Other keys
// are skipped, not fatal.
func (ks *KeySet) Load(set jwk.Set) (int, error) {
	m := make(map[string]Key, set.Len())
	for i := 0; i < set.Len(); i++ {
		k, ok := set.Key(i)
		if !ok {
			continue
		}
		kid, ok := k.KeyID()
		if !ok || kid == "" || strings.HasPrefix(kid, contract.AssertionKIDPrefix) {
			continue
		}
		if use, ok := k.KeyUsage(); ok && use != "sig" {
			continue
		}
		ka, ok := k.Algorithm()
		if !ok || !allowedAlgs[ka.String()] {
			continue
		}
		alg, ok := jwa.LookupSignatureAlgorithm(ka.String())
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
		m[kid] = Key{Kid: kid, Alg: alg, Public: raw}
	}
	if len(m) == 0 && set.Len() > 0 {
		return 0, errors.New("no usable signing key in the key set")
	}
	ks.keys.Store(&m)
	return len(m), nil
}

// Len is the number of usable keys.
func (ks *KeySet) Len() int {
	if p := ks.keys.Load(); p != nil {
		return len(*p)
	}
	return 0
}

func (ks *KeySet) get(kid string) (Key, bool) {
	p := ks.keys.Load()
	if p == nil {
		return Key{}, false
	}
	k, ok := (*p)[kid]
	return k, ok
}

// Lookup finds the key of kid, refetching the set when the kid is unknown
// and the rate limit allows. An assertion key's kid is refused at once: it
// never names an access-token key, and must not cause a fetch.
func (ks *KeySet) Lookup(ctx context.Context, kid string) (Key, error) {
	if strings.HasPrefix(kid, contract.AssertionKIDPrefix) {
		return Key{}, fmt.Errorf("%w: an edge assertion key signs no access token", ErrUnknownKey)
	}
	if k, ok := ks.get(kid); ok {
		return k, nil
	}
	now := ks.Now()
	ks.mu.Lock()
	if until, ok := ks.negative[kid]; ok && now.Before(until) {
		ks.mu.Unlock()
		return Key{}, ks.unknown()
	}
	if f := ks.flight; f != nil {
		ks.mu.Unlock()
		select {
		case <-f:
		case <-ctx.Done():
			return Key{}, ctx.Err()
		}
		if k, ok := ks.get(kid); ok {
			return k, nil
		}
		return Key{}, ks.unknown()
	}
	if !ks.lastDemand.IsZero() && now.Sub(ks.lastDemand) < ks.MinRefetch {
		ks.markUnknown(kid, now)
		ks.mu.Unlock()
		return Key{}, ks.unknown()
	}
	f := make(chan struct{})
	ks.flight = f
	ks.lastDemand = now
	ks.mu.Unlock()

	_ = ks.refresh() // its failure is remembered in stale

	ks.mu.Lock()
	ks.flight = nil
	close(f)
	k, ok := ks.get(kid)
	if !ok {
		ks.markUnknown(kid, now)
	}
	ks.mu.Unlock()
	if ok {
		return k, nil
	}
	return Key{}, ks.unknown()
}

// unknown is the error for a kid the key set does not hold: ErrUnknownKey,
// and also ErrKeysUnavailable while the last fetch failed (the token cannot
// be checked, which is not the same as invalid).
func (ks *KeySet) unknown() error {
	if ks.stale.Load() {
		return fmt.Errorf("%w: %w", ErrKeysUnavailable, ErrUnknownKey)
	}
	return ErrUnknownKey
}

// markUnknown remembers kid as unknown; mu must be held.
func (ks *KeySet) markUnknown(kid string, now time.Time) {
	if ks.negative == nil || len(ks.negative) >= maxNegative {
		ks.negative = make(map[string]time.Time, 64)
	}
	ks.negative[kid] = now.Add(ks.NegativeTTL)
}

// Refresh fetches the key set now (background refresh).
func (ks *KeySet) Refresh() error {
	return ks.refresh()
}

func (ks *KeySet) refresh() error {
	base := ks.BaseContext
	if base == nil {
		return errors.New("key set has no base context")
	}
	timeout := ks.FetchTimeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(base, timeout)
	defer cancel()
	set, err := ks.Fetch(ctx)
	if err == nil {
		_, err = ks.Load(set)
		if err == nil {
			// keys changed: forget what was unknown
			ks.mu.Lock()
			ks.negative = nil
			ks.mu.Unlock()
		}
	}
	ks.stale.Store(err != nil)
	if ks.OnFetch != nil {
		ks.OnFetch(err)
	}
	return err
}
