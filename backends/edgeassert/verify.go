package edgeassert

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/httprc/v3"
	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/erpgate/erpgate/internal/jwtverify"
)

// The contract's names (DESIGN.md, "Edge assertion").
const (
	// Header carries the assertion on every request the edge proxies.
	Header = "X-ERP-Assertion"
	// Type is the assertion's typ header.
	Type = "erp-edge+jwt"
	// MaxLifetime is the longest exp − iat the edge gives an assertion.
	MaxLifetime = 60 * time.Second

	algEdDSA = "EdDSA"
)

// Why an assertion was refused. The middleware tells the client none of
// this; Config.OnRefuse gets it for the service's log.
var (
	ErrMissing    = errors.New("no edge assertion")
	ErrDuplicate  = errors.New("more than one edge assertion")
	ErrMalformed  = errors.New("malformed edge assertion")
	ErrType       = errors.New("not an edge assertion (typ)")
	ErrAlgorithm  = errors.New("edge assertion algorithm refused")
	ErrUnknownKey = errors.New("edge assertion signed by an unknown key")
	ErrSignature  = errors.New("edge assertion signature invalid")
	ErrClaims     = errors.New("edge assertion claims invalid")
	ErrAudience   = errors.New("edge assertion is for another backend")
	ErrExpired    = errors.New("edge assertion expired")
)

// Config of a Verifier. Issuer, one of JWKSURL and Keys, and one of
// Audience and AudienceFor are required.
type Config struct {
	// JWKSURL is the edge's key set, e.g. https://edge.example/.well-known/jwks.json.
	JWKSURL string
	// Keys, when set, is used instead of JWKSURL (an auth service in the
	// same process, a file, a test).
	Keys KeySource
	// HTTPClient fetches JWKSURL. Default: jwx's fetch client (timeouts,
	// no redirects to other schemes).
	HTTPClient *http.Client

	// Issuer is the exact iss of the edge's assertions.
	Issuer string
	// Audience is this backend's name: the aud every assertion must have.
	Audience string
	// AudienceFor, when set, names the backend a request is for (a service
	// that is several backends of the edge); "" refuses the request.
	AudienceFor func(*http.Request) string

	// Leeway for exp, iat and nbf (clock skew between edge and service).
	// Default: 5s.
	Leeway time.Duration
	// RefreshInterval of the key set in the background. Default: 5m.
	RefreshInterval time.Duration
	// MinRefetch is the least time between two fetches caused by unknown
	// kids (after a failed fetch, at most 1s). Default: 10s.
	MinRefetch time.Duration
	// FetchTimeout bounds one key-set fetch. Default: 5s.
	FetchTimeout time.Duration
	// MaxTokenBytes is the longest assertion read. Default: 8192.
	MaxTokenBytes int
	// CacheSize is how many verified assertions are remembered. Default:
	// 10000; negative: none.
	CacheSize int

	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// OnFetch is told of every key-set fetch and its outcome (metrics, logs).
	OnFetch func(error)
	// OnRefuse is told why the middleware refused a request (logs). It
	// must not log the assertion itself.
	OnRefuse func(r *http.Request, err error)
}

// Identity is what the edge verified about a request's caller.
type Identity struct {
	Company  string    // cid
	User     string    // sub
	Roles    []string  // roles
	Scope    string    // scope: space-separated permissions
	Plan     string    // plan
	TokenID  string    // jti
	Audience string    // the backend it was for
	Expiry   time.Time // exp

	kid string // a cached assertion is good only while its key is published
}

// HasScope reports whether the identity's scope holds s.
func (id *Identity) HasScope(s string) bool {
	for rest := id.Scope; rest != ""; {
		var f string
		f, rest, _ = strings.Cut(rest, " ")
		if f == s {
			return true
		}
	}
	return false
}

// Verifier checks edge assertions. It is safe for concurrent use.
type Verifier struct {
	cfg   Config
	base  context.Context
	cache *cache

	startOnce sync.Once
	keys      *jwtverify.KeySet
}

// New returns a verifier. It does no I/O: keys are fetched when the first
// assertion needs them, then refreshed in the background until ctx ends.
func New(ctx context.Context, cfg Config) (*Verifier, error) {
	switch {
	case cfg.Issuer == "":
		return nil, errors.New("edgeassert: Issuer is required")
	case cfg.Keys == nil && cfg.JWKSURL == "":
		return nil, errors.New("edgeassert: JWKSURL or Keys is required")
	case cfg.Keys == nil && !strings.HasPrefix(cfg.JWKSURL, "https://") && !strings.HasPrefix(cfg.JWKSURL, "http://"):
		return nil, errors.New("edgeassert: JWKSURL must be an http(s) URL")
	case cfg.Audience == "" && cfg.AudienceFor == nil:
		return nil, errors.New("edgeassert: Audience or AudienceFor is required")
	}
	if cfg.Leeway <= 0 {
		cfg.Leeway = 5 * time.Second
	}
	if cfg.RefreshInterval <= 0 {
		cfg.RefreshInterval = 5 * time.Minute
	}
	if cfg.MinRefetch <= 0 {
		cfg.MinRefetch = 10 * time.Second
	}
	if cfg.FetchTimeout <= 0 {
		cfg.FetchTimeout = 5 * time.Second
	}
	if cfg.MaxTokenBytes <= 0 {
		cfg.MaxTokenBytes = 8192
	}
	if cfg.CacheSize == 0 {
		cfg.CacheSize = 10000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	v := &Verifier{cfg: cfg, base: ctx}
	if cfg.CacheSize > 0 {
		v.cache = newCache(cfg.CacheSize)
	}
	return v, nil
}

// keySet starts the key source on first use: the jwk cache (whose
// goroutines fetch) and the background refresh.
func (v *Verifier) keySet() *jwtverify.KeySet {
	v.startOnce.Do(func() {
		fetch, current := v.cfg.Keys, v.cfg.Keys
		if fetch == nil {
			fetch, current = v.jwksSource()
		}
		ks := v.newKeySet(fetch)
		go func() {
			t := time.NewTicker(v.cfg.RefreshInterval)
			defer t.Stop()
			for {
				select {
				case <-v.base.Done():
					return
				case <-t.C:
					_ = ks.RefreshFrom(jwtverify.FetchFunc(current))
					if v.cache != nil {
						v.cache.prune(v.cfg.Now())
					}
				}
			}
		}()
		v.keys = ks
	})
	return v.keys
}

// jwksSource reads JWKSURL through jwx's jwk.Cache on httprc. fetch asks
// the cache for a fetch now (first use, unknown kid); current is the set
// the cache keeps fresh in the background (every RefreshInterval at most,
// as the JWKS's Cache-Control allows), read without I/O.
func (v *Verifier) jwksSource() (fetch, current KeySource) {
	url := v.cfg.JWKSURL
	var (
		mu    sync.Mutex
		cache *jwk.Cache
	)
	get := func() (*jwk.Cache, error) {
		mu.Lock()
		defer mu.Unlock()
		if cache != nil {
			return cache, nil
		}
		c, err := jwk.NewCache(v.base, httprc.NewClient())
		if err != nil {
			return nil, fmt.Errorf("JWKS cache: %w", err)
		}
		opts := []jwk.RegisterOption{
			jwk.WithMinInterval(v.cfg.MinRefetch),
			jwk.WithMaxInterval(v.cfg.RefreshInterval),
			jwk.WithWaitReady(false),
		}
		if v.cfg.HTTPClient != nil {
			opts = append(opts, jwk.WithHTTPClient(v.cfg.HTTPClient))
		}
		if err := c.Register(v.base, url, opts...); err != nil {
			return nil, fmt.Errorf("JWKS cache: %w", err)
		}
		cache = c
		return c, nil
	}
	var waited atomic.Bool
	fetch = func(ctx context.Context) (jwk.Set, error) {
		c, err := get()
		if err != nil {
			return nil, err
		}
		// The first time, the cache's own first fetch (started by
		// Register) is the one to wait for; later, fetch anew.
		if !waited.Swap(true) && c.Ready(ctx, url) {
			return c.Lookup(ctx, url)
		}
		return c.Refresh(ctx, url)
	}
	current = func(ctx context.Context) (jwk.Set, error) {
		c, err := get()
		if err != nil {
			return nil, err
		}
		return c.Lookup(ctx, url)
	}
	return fetch, current
}

// Verify returns the identity of a valid, live assertion for audience.
func (v *Verifier) Verify(ctx context.Context, token, audience string) (*Identity, error) {
	now := v.cfg.Now()
	if v.cache != nil {
		if id, ok := v.cache.get(token); ok {
			if !now.Before(id.Expiry.Add(v.cfg.Leeway)) {
				return nil, ErrExpired
			}
			if id.Audience != audience {
				return nil, ErrAudience
			}
			if _, ok := v.keySet().Get(id.kid); !ok {
				return nil, ErrUnknownKey // the key was withdrawn
			}
			return id, nil
		}
	}
	id, err := v.verify(ctx, token, audience, now)
	if err != nil {
		return nil, err
	}
	if v.cache != nil {
		v.cache.put(token, id)
	}
	return id, nil
}

func (v *Verifier) verify(ctx context.Context, token, audience string, now time.Time) (*Identity, error) {
	if token == "" {
		return nil, ErrMissing
	}
	t, err := jwtverify.Parse(token, v.cfg.MaxTokenBytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	switch {
	case t.Header.Typ != Type:
		return nil, ErrType
	case t.Header.Alg != algEdDSA:
		return nil, ErrAlgorithm
	}
	// A kid that is not an assertion key's is refused here, before any
	// fetch (the key set's purpose).
	key, err := v.keySet().Lookup(ctx, t.Header.Kid)
	if errors.Is(err, jwtverify.ErrUnknownKey) {
		return nil, ErrUnknownKey
	} else if err != nil {
		return nil, err
	}
	pb, err := t.Verify(key)
	if err != nil {
		return nil, ErrSignature
	}
	cs, err := decodeClaims(pb)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrClaims, err)
	}
	id, err := v.checkClaims(&cs, audience, now)
	if err != nil {
		return nil, err
	}
	id.kid = key.Kid
	return id, nil
}

func (v *Verifier) checkClaims(cs *claimSet, audience string, now time.Time) (*Identity, error) {
	leeway := v.cfg.Leeway
	if cs.Exp == nil || cs.Iat == nil {
		return nil, fmt.Errorf("%w: exp and iat required", ErrClaims)
	}
	exp, iat := jwtverify.Unix(*cs.Exp), jwtverify.Unix(*cs.Iat)
	if !now.Before(exp.Add(leeway)) {
		return nil, ErrExpired
	}
	if now.Add(leeway).Before(iat) {
		return nil, fmt.Errorf("%w: issued in the future", ErrClaims)
	}
	if exp.Sub(iat) > MaxLifetime { // one signer's clock: no leeway between its iat and exp
		return nil, fmt.Errorf("%w: lives longer than %s", ErrClaims, MaxLifetime)
	}
	if cs.Nbf != nil && now.Add(leeway).Before(jwtverify.Unix(*cs.Nbf)) {
		return nil, fmt.Errorf("%w: not yet valid", ErrClaims)
	}
	if cs.Iss != v.cfg.Issuer {
		return nil, fmt.Errorf("%w: issuer", ErrClaims)
	}
	if audience == "" || len(cs.Aud) != 1 || cs.Aud[0] != audience {
		return nil, ErrAudience
	}
	if cs.Sub == "" || cs.Cid == "" {
		return nil, fmt.Errorf("%w: sub and cid required", ErrClaims)
	}
	if len(cs.Roles) > 64 || len(cs.Scope) > 4096 {
		return nil, fmt.Errorf("%w: too many roles or scopes", ErrClaims)
	}
	return &Identity{
		Company: cs.Cid, User: cs.Sub, Roles: cs.Roles, Scope: cs.Scope, Plan: cs.Plan,
		TokenID: cs.Jti, Audience: audience, Expiry: exp,
	}, nil
}

// cache remembers verified assertions until they expire. It is bounded: when
// full, it forgets everything (the edge re-sends the same assertions, so it
// refills at once) rather than keep an eviction order on the hot path.
type cache struct {
	mu  sync.RWMutex
	max int
	m   map[string]*Identity
}

func newCache(max int) *cache { return &cache{max: max, m: make(map[string]*Identity, 64)} }

func (c *cache) get(token string) (*Identity, bool) {
	c.mu.RLock()
	id, ok := c.m[token]
	c.mu.RUnlock()
	return id, ok
}

func (c *cache) put(token string, id *Identity) {
	c.mu.Lock()
	if len(c.m) >= c.max {
		c.m = make(map[string]*Identity, 64)
	}
	c.m[token] = id
	c.mu.Unlock()
}

func (c *cache) prune(now time.Time) {
	c.mu.Lock()
	for k, id := range c.m {
		if !now.Before(id.Expiry) {
			delete(c.m, k)
		}
	}
	c.mu.Unlock()
}
