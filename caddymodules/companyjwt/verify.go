package companyjwt

// This file has no Caddy import: the token checks test and benchmark alone.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/jwtverify"
	"github.com/erpgate/erpgate/internal/revocation"
	"github.com/erpgate/erpgate/internal/tracing"
)

// Failures, each mapped to an envelope code by the provider. Those of the
// token itself are internal/jwtverify's.
var (
	ErrMissing    = errors.New("no access token")
	ErrMalformed  = jwtverify.ErrMalformed
	ErrUnknownKey = jwtverify.ErrUnknownKey
	ErrSignature  = jwtverify.ErrSignature // a wrong alg for the key too
	ErrClaims     = jwtverify.ErrClaims    // a wrong typ too
	ErrExpired    = jwtverify.ErrExpired
	ErrRevoked    = errors.New("access token revoked")
	// ErrKeysUnavailable: the token names a key the edge does not hold and
	// the key set could not be fetched; the token can't be checked now.
	ErrKeysUnavailable = jwtverify.ErrKeysUnavailable
	// ErrRevocationUnknown: the edge's view of revocations is older than
	// Verifier.Staleness and the session could not be checked otherwise.
	ErrRevocationUnknown = errors.New("access token revocation cannot be checked")
)

// Claims are the verified claims of a company-scoped access token.
type Claims struct {
	// Subject, SessionID, CompanyID, Roles, Scope, Plan, TokenID, Expiry
	jwtverify.AccessClaims

	kid string // the key that signed it: a cached token dies with its key

	// Credential is the token as erp_authz sees it (contract.VarCredential):
	// the token itself and its exp. Read only.
	Credential contract.Credential

	// Metadata is the identity as caddyauth publishes it
	// ({http.auth.user.company_id}, …): built once per verified token, so
	// a cached token costs no map per request. Read only.
	Metadata map[string]string

	// checked (unix nanoseconds): when CheckSession last found the session
	// not revoked (used while the revocation set is not current).
	checked atomic.Int64
}

// HasScope reports whether the space-separated scope holds s.
func (c *Claims) HasScope(s string) bool {
	for rest := c.Scope; rest != ""; {
		var f string
		f, rest, _ = strings.Cut(rest, " ")
		if f == s {
			return true
		}
	}
	return false
}

// Policy is what a token must satisfy (RFC 8725, RFC 9068).
type Policy struct {
	Issuer        string
	Audience      string
	Leeway        time.Duration
	MaxTokenBytes int
}

// Verifier checks access tokens with jwtverify.VerifyAccess (strict compact
// parsing, the key's own algorithm, RFC 9068 typing and claims), adding a
// bounded cache of verified tokens and session revocation.
type Verifier struct {
	Policy  Policy
	Keys    *KeySet
	Cache   *TokenCache // optional
	Revoked *revocation.Set
	Now     func() time.Time
	// Staleness bounds how old the revocation set's view may be (see
	// revocation.Set.CurrentAt); zero: no bound. Past it, a token whose
	// session the set does not hold is checked with CheckSession, at most
	// once per Staleness per token, and refused with ErrRevocationUnknown
	// when that is nil or fails.
	Staleness time.Duration
	// CheckSession reports from the auth service's store whether the
	// user's session is revoked.
	CheckSession func(ctx context.Context, userID, sid string) (revoked bool, err error)
}

// Verify returns the claims of a valid, live token.
func (v *Verifier) Verify(ctx context.Context, token string) (*Claims, error) {
	now := v.Now()
	if v.Cache != nil {
		if c, ok := v.Cache.Get(token); ok {
			if span := trace.SpanFromContext(ctx); span.IsRecording() {
				span.SetAttributes(tracing.KeyCache.String("hit"))
			}
			if !now.Before(c.Expiry.Add(v.Policy.Leeway)) {
				return nil, ErrExpired
			}
			if v.Revoked.Has(c.SessionID) {
				return nil, ErrRevoked
			}
			if _, ok := v.Keys.Get(c.kid); !ok {
				return nil, ErrUnknownKey // the key was retired or withdrawn
			}
			if v.Staleness > 0 && !v.Revoked.CurrentAt(now, v.Staleness) {
				if err := v.recheck(ctx, c, now); err != nil {
					return nil, err
				}
			}
			return c, nil
		}
	}
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.SetAttributes(tracing.KeyCache.String("miss"))
	}
	c, err := v.verifySlow(ctx, token, now)
	if err != nil {
		return nil, err
	}
	if v.Revoked.Has(c.SessionID) {
		return nil, ErrRevoked
	}
	if v.Staleness > 0 && !v.Revoked.CurrentAt(now, v.Staleness) {
		if err := v.recheck(ctx, c, now); err != nil {
			return nil, err
		}
	}
	c.Credential = contract.Credential{ID: token, Expiry: c.Expiry, Revocable: c.SessionID}
	if v.Cache != nil {
		v.Cache.Put(token, c)
	}
	return c, nil
}

// recheck asks the store about c's session when the revocation set is not
// current; an answer that it is not revoked holds for Staleness.
func (v *Verifier) recheck(ctx context.Context, c *Claims, now time.Time) error {
	if last := c.checked.Load(); last != 0 && now.UnixNano()-last <= int64(v.Staleness) {
		return nil
	}
	if v.CheckSession == nil {
		return ErrRevocationUnknown
	}
	revoked, err := v.CheckSession(ctx, c.Subject, c.SessionID)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrRevocationUnknown, err)
	}
	if revoked {
		v.Revoked.Add(c.SessionID, c.Expiry.Add(v.Policy.Leeway))
		return ErrRevoked
	}
	c.checked.Store(now.UnixNano())
	return nil
}

func (v *Verifier) verifySlow(ctx context.Context, token string, now time.Time) (*Claims, error) {
	if token == "" {
		return nil, ErrMissing
	}
	p := jwtverify.AccessPolicy{Issuer: v.Policy.Issuer, Audience: v.Policy.Audience,
		Leeway: v.Policy.Leeway, ExpiryLeeway: v.Policy.Leeway, MaxTokenBytes: v.Policy.MaxTokenBytes}
	ac, key, err := jwtverify.VerifyAccess(ctx, &p, v.Keys.Lookup, token, now)
	switch {
	case errors.Is(err, jwtverify.ErrType):
		return nil, fmt.Errorf("%w: %w", ErrClaims, err)
	case errors.Is(err, jwtverify.ErrAlgorithm):
		return nil, fmt.Errorf("%w: %w", ErrSignature, err)
	case err != nil:
		return nil, err
	}
	return &Claims{
		AccessClaims: ac, kid: key.Kid,
		Metadata: map[string]string{
			"company_id": ac.CompanyID,
			"roles":      strings.Join(ac.Roles, ","),
			"plan":       ac.Plan,
		},
	}, nil
}
