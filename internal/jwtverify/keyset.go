package jwtverify

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
)

// FetchFunc returns the issuer's current key set.
type FetchFunc func(ctx context.Context) (jwk.Set, error)

// KeySet holds the keys of one Purpose of an issuer's JWKS, by kid. Reads
// are lock-free. An unknown kid causes at most one fetch at a time and at
// most one per MinRefetch (background refreshes don't count, so a key
// published a second ago is found at once), and is then remembered as
// unknown for NegativeTTL: a flood of made-up kids cannot become a flood of
// fetches. A fetch that fails, or finds keys but none usable, keeps the
// last good keys.
type KeySet struct {
	// Purpose selects the keys (Select); the zero value is AccessKeys.
	Purpose Purpose
	// Fetch gets the key set: for an unknown kid, and for Refresh.
	Fetch FetchFunc
	// MinRefetch is the least time between two fetches caused by unknown kids.
	MinRefetch time.Duration
	// RetryAfterFailure, when positive and shorter than MinRefetch, is the
	// wait instead while the last fetch failed: a source that was briefly
	// unreachable (a reload, a restart) is asked again soon.
	RetryAfterFailure time.Duration
	// NegativeTTL is how long a kid a fetch did not find stays unknown
	// without another fetch (0: only MinRefetch limits fetches).
	NegativeTTL time.Duration
	// FetchTimeout bounds one fetch. Default: 5s.
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
	// lastDemand is the last fetch caused by an unknown kid.
	lastDemand time.Time
	negative   map[string]time.Time
	flight     chan struct{} // closed when the fetch under way ends
}

const maxNegative = 4096

// ErrNoUsableKey: a fetched key set holds no key of the KeySet's purpose.
var ErrNoUsableKey = errors.New("no usable signing key in the key set")

// Load replaces the keys with the usable keys of set (Select). A set that
// holds keys but none usable keeps the last good keys and is
// ErrNoUsableKey; an empty set is the issuer's answer: no key (every token
// is then refused as signed by an unknown key).
func (ks *KeySet) Load(set jwk.Set) (int, error) {
	m := Select(set, ks.Purpose)
	if len(m) == 0 && set.Len() > 0 {
		return 0, ErrNoUsableKey
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

// Get is the key of kid among those held now: no fetch.
func (ks *KeySet) Get(kid string) (Key, bool) {
	p := ks.keys.Load()
	if p == nil {
		return Key{}, false
	}
	k, ok := (*p)[kid]
	return k, ok
}

// Lookup finds the key of kid, fetching the set when the kid is unknown and
// the limits allow. A kid of the other purpose is refused at once, without
// a fetch. It is a KeyFunc.
func (ks *KeySet) Lookup(ctx context.Context, kid string) (Key, error) {
	if !ks.Purpose.Owns(kid) {
		return Key{}, fmt.Errorf("%w: the kid names no key of this purpose", ErrUnknownKey)
	}
	if k, ok := ks.Get(kid); ok {
		return k, nil
	}
	now := ks.Now()
	ks.mu.Lock()
	if until, ok := ks.negative[kid]; ok && now.Before(until) {
		ks.mu.Unlock()
		return Key{}, ks.unknown()
	}
	// a fetch may have ended between the look above and the lock: its keys
	// are in (they are stored before flight is cleared), and a refetch
	// would be refused within MinRefetch of it
	if k, ok := ks.Get(kid); ok {
		ks.mu.Unlock()
		return k, nil
	}
	if f := ks.flight; f != nil { // someone is fetching: wait for that one
		ks.mu.Unlock()
		select {
		case <-f:
		case <-ctx.Done():
			return Key{}, ctx.Err()
		}
		if k, ok := ks.Get(kid); ok {
			return k, nil
		}
		return Key{}, ks.unknown()
	}
	wait := ks.MinRefetch
	if ks.stale.Load() && ks.RetryAfterFailure > 0 && wait > ks.RetryAfterFailure {
		wait = ks.RetryAfterFailure
	}
	if !ks.lastDemand.IsZero() && now.Sub(ks.lastDemand) < wait {
		ks.markUnknown(kid, now)
		ks.mu.Unlock()
		return Key{}, ks.unknown()
	}
	f := make(chan struct{})
	ks.flight, ks.lastDemand = f, now
	ks.mu.Unlock()

	_ = ks.RefreshFrom(ks.Fetch) // its failure is remembered in stale

	ks.mu.Lock()
	ks.flight = nil
	close(f)
	k, ok := ks.Get(kid)
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
// and also ErrKeysUnavailable while the last fetch failed.
func (ks *KeySet) unknown() error {
	if ks.stale.Load() {
		return fmt.Errorf("%w: %w", ErrKeysUnavailable, ErrUnknownKey)
	}
	return ErrUnknownKey
}

// markUnknown remembers kid as unknown; mu must be held.
func (ks *KeySet) markUnknown(kid string, now time.Time) {
	if ks.NegativeTTL <= 0 {
		return
	}
	if ks.negative == nil || len(ks.negative) >= maxNegative {
		ks.negative = make(map[string]time.Time, 64)
	}
	ks.negative[kid] = now.Add(ks.NegativeTTL)
}

// Refresh fetches the key set now (background refresh).
func (ks *KeySet) Refresh() error {
	return ks.RefreshFrom(ks.Fetch)
}

// RefreshFrom loads the key set src returns (a background refresh that
// reads a cache instead of fetching, say).
func (ks *KeySet) RefreshFrom(src FetchFunc) error {
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
	set, err := src(ctx)
	if err == nil {
		if _, err = ks.Load(set); err == nil {
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
