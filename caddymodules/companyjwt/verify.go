package companyjwt

// This file has no Caddy import: the token checks test and benchmark alone.

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v3/jws"

	"github.com/erpgate/erpgate/contract"
	"github.com/erpgate/erpgate/internal/revocation"
	"github.com/erpgate/erpgate/internal/tokenjson"
)

// Failures, each mapped to an envelope code by the provider.
var (
	ErrMissing    = errors.New("no access token")
	ErrMalformed  = errors.New("malformed access token")
	ErrUnknownKey = errors.New("access token signed by an unknown key")
	ErrSignature  = errors.New("access token signature invalid")
	ErrClaims     = errors.New("access token claims invalid")
	ErrExpired    = errors.New("access token expired")
	ErrRevoked    = errors.New("access token revoked")
	// ErrKeysUnavailable: the token names a key the edge does not hold and
	// the key set could not be fetched; the token can't be checked now.
	ErrKeysUnavailable = errors.New("key set unavailable")
	// ErrRevocationUnknown: the edge's view of revocations is older than
	// Verifier.Staleness and the session could not be checked otherwise.
	ErrRevocationUnknown = errors.New("access token revocation cannot be checked")
)

// Claims are the verified claims of a company-scoped access token.
type Claims struct {
	Subject   string
	SessionID string
	CompanyID string
	Roles     []string
	Scope     string
	Plan      string
	TokenID   string
	Expiry    time.Time

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

// Verifier checks access tokens: strict compact parsing, the key's own
// algorithm, RFC 9068 typing and claims, a bounded cache of verified tokens,
// and session revocation.
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

var strictB64 = base64.RawURLEncoding.Strict()

// Verify returns the claims of a valid, live token.
func (v *Verifier) Verify(ctx context.Context, token string) (*Claims, error) {
	now := v.Now()
	if v.Cache != nil {
		if c, ok := v.Cache.Get(token); ok {
			if !now.Before(c.Expiry.Add(v.Policy.Leeway)) {
				return nil, ErrExpired
			}
			if v.Revoked.Has(c.SessionID) {
				return nil, ErrRevoked
			}
			if _, ok := v.Keys.get(c.kid); !ok {
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
	c.Credential = contract.Credential{ID: token, Expiry: c.Expiry}
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

// header and claimSet are decoded by tokenjson: member names exactly as
// written, no duplicates in any case, valid UTF-8, each member of its type
// (SECURITY.md, "Ambiguity"). Members not named here are allowed.
type header struct {
	Alg  string        `json:"alg"`
	Kid  string        `json:"kid"`
	Typ  string        `json:"typ"`
	Crit tokenjson.Raw `json:"crit"`
	Jku  tokenjson.Raw `json:"jku"`
	X5u  tokenjson.Raw `json:"x5u"`
	Jwk  tokenjson.Raw `json:"jwk"`
	X5c  tokenjson.Raw `json:"x5c"`
	B64  tokenjson.Raw `json:"b64"`
}

type claimSet struct {
	Iss   string             `json:"iss"`
	Sub   string             `json:"sub"`
	Aud   tokenjson.Audience `json:"aud"`
	Exp   *float64           `json:"exp"`
	Nbf   *float64           `json:"nbf"`
	Iat   *float64           `json:"iat"`
	Jti   string             `json:"jti"`
	Sid   string             `json:"sid"`
	Cid   string             `json:"cid"`
	Roles []string           `json:"roles"`
	Scope string             `json:"scope"`
	Plan  string             `json:"plan"`
}

var (
	headerJSON = tokenjson.MustCompile[header]()
	claimsJSON = tokenjson.MustCompile[claimSet]()
)

func (v *Verifier) verifySlow(ctx context.Context, token string, now time.Time) (*Claims, error) {
	if token == "" {
		return nil, ErrMissing
	}
	max := v.Policy.MaxTokenBytes
	if max <= 0 {
		max = 8192
	}
	if len(token) > max {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrMalformed, max)
	}
	h64, rest, ok := strings.Cut(token, ".")
	p64, s64, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 || h64 == "" || p64 == "" || s64 == "" || strings.IndexByte(s64, '.') >= 0 {
		return nil, fmt.Errorf("%w: not a compact JWS", ErrMalformed)
	}
	hb, err := strictB64.DecodeString(h64)
	if err != nil {
		return nil, fmt.Errorf("%w: header encoding", ErrMalformed)
	}
	pb, err := strictB64.DecodeString(p64)
	if err != nil {
		return nil, fmt.Errorf("%w: payload encoding", ErrMalformed)
	}
	if _, err := strictB64.DecodeString(s64); err != nil {
		return nil, fmt.Errorf("%w: signature encoding", ErrMalformed)
	}
	var h header
	if err := headerJSON.Decode(hb, &h); err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrMalformed, err)
	}
	switch {
	case h.Crit != nil:
		return nil, fmt.Errorf("%w: crit is not supported", ErrMalformed)
	case h.Jku != nil || h.X5u != nil || h.Jwk != nil || h.X5c != nil:
		return nil, fmt.Errorf("%w: embedded or remote key references are refused", ErrMalformed)
	case h.B64 != nil:
		return nil, fmt.Errorf("%w: b64 is not supported", ErrMalformed)
	case !strings.EqualFold(h.Typ, "at+jwt") && !strings.EqualFold(h.Typ, "application/at+jwt"):
		return nil, fmt.Errorf("%w: typ must be at+jwt", ErrClaims)
	case h.Kid == "" || len(h.Kid) > 256:
		return nil, fmt.Errorf("%w: kid missing or too long", ErrMalformed)
	}
	key, err := v.Keys.Lookup(ctx, h.Kid)
	if err != nil {
		return nil, err
	}
	if h.Alg != key.Alg.String() {
		return nil, fmt.Errorf("%w: alg does not match the key", ErrSignature)
	}
	if _, err := jws.VerifyCompactFast(key.Public, []byte(token), key.Alg); err != nil {
		return nil, ErrSignature
	}
	var cs claimSet
	if err := claimsJSON.Decode(pb, &cs); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrClaims, err)
	}
	c, err := v.checkClaims(&cs, now)
	if err != nil {
		return nil, err
	}
	c.kid = key.Kid
	return c, nil
}

func unix(f float64) time.Time {
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9))
}

func (v *Verifier) checkClaims(cs *claimSet, now time.Time) (*Claims, error) {
	p := v.Policy
	if cs.Exp == nil {
		return nil, fmt.Errorf("%w: exp required", ErrClaims)
	}
	exp := unix(*cs.Exp)
	if !now.Before(exp.Add(p.Leeway)) {
		return nil, ErrExpired
	}
	if cs.Nbf != nil && now.Add(p.Leeway).Before(unix(*cs.Nbf)) {
		return nil, fmt.Errorf("%w: not yet valid", ErrClaims)
	}
	if cs.Iat != nil && now.Add(p.Leeway).Before(unix(*cs.Iat)) {
		return nil, fmt.Errorf("%w: issued in the future", ErrClaims)
	}
	if cs.Iss != p.Issuer {
		return nil, fmt.Errorf("%w: issuer", ErrClaims)
	}
	if !cs.Aud.Contains(p.Audience) {
		return nil, fmt.Errorf("%w: audience", ErrClaims)
	}
	if cs.Sub == "" || cs.Cid == "" || cs.Sid == "" {
		return nil, fmt.Errorf("%w: sub, sid and cid required", ErrClaims)
	}
	if len(cs.Roles) > 64 || len(cs.Scope) > 4096 {
		return nil, fmt.Errorf("%w: too many roles or scopes", ErrClaims)
	}
	return &Claims{
		Subject: cs.Sub, SessionID: cs.Sid, CompanyID: cs.Cid, Roles: cs.Roles,
		Scope: cs.Scope, Plan: cs.Plan, TokenID: cs.Jti, Expiry: exp,
		Metadata: map[string]string{
			"company_id": cs.Cid,
			"roles":      strings.Join(cs.Roles, ","),
			"plan":       cs.Plan,
		},
	}, nil
}
