package jwtverify

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/erpgate/erpgate/internal/tokenjson"
)

// AccessType is the typ of an access token (RFC 9068 §2.1).
const AccessType = "at+jwt"

// IsAccessType reports whether typ names an access token: "at+jwt" or
// "application/at+jwt", in any case (RFC 7515 §4.1.9).
func IsAccessType(typ string) bool {
	return strings.EqualFold(typ, AccessType) || strings.EqualFold(typ, "application/"+AccessType)
}

// AccessPolicy is what an access token must satisfy (RFC 9068, RFC 8725).
type AccessPolicy struct {
	// Issuer is the exact iss.
	Issuer string
	// Audience must be in aud (a string or an array).
	Audience string
	// Leeway is the clock skew tolerated on nbf and iat.
	Leeway time.Duration
	// ExpiryLeeway is how long past exp a token is still accepted: the
	// edge allows its Leeway; the auth service, on its own clock, none.
	ExpiryLeeway time.Duration
	// MaxTokenBytes bounds the token read (0: DefaultMaxBytes).
	MaxTokenBytes int
}

// AccessClaims are the verified claims of an access token (DESIGN.md).
type AccessClaims struct {
	Subject   string
	SessionID string
	CompanyID string
	Roles     []string
	Scope     string
	Plan      string
	TokenID   string
	IssuedAt  time.Time // zero when absent
	Expiry    time.Time
}

// accessClaimSet is the payload as tokenjson decodes it: members not named
// here are allowed.
type accessClaimSet struct {
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

var accessClaimsJSON = tokenjson.MustCompile[accessClaimSet]()

// KeyFunc finds the key a token's kid names. Its errors are returned as
// they are (ErrUnknownKey, ErrKeysUnavailable, a context's).
type KeyFunc func(ctx context.Context, kid string) (Key, error)

// VerifyAccess is the one check of an access token, for the edge (erp_jwt)
// and the auth service alike: Parse; typ at+jwt (ErrType); the key of kid
// from keys; the key's alg and signature (Token.Verify); the claims read
// by tokenjson, then exp required and not past (ErrExpired), nbf and iat
// not in the future, iss exact, aud holding the audience, sub, sid and cid
// required, at most 64 roles and 4096 bytes of scope (ErrClaims). It
// returns the key that signed the token too.
func VerifyAccess(ctx context.Context, p *AccessPolicy, keys KeyFunc, token string, now time.Time) (AccessClaims, Key, error) {
	t, err := Parse(token, p.MaxTokenBytes)
	if err != nil {
		return AccessClaims{}, Key{}, err
	}
	if !IsAccessType(t.Header.Typ) {
		return AccessClaims{}, Key{}, fmt.Errorf("%w: typ must be at+jwt", ErrType)
	}
	key, err := keys(ctx, t.Header.Kid)
	if err != nil {
		return AccessClaims{}, Key{}, err
	}
	payload, err := t.Verify(key)
	if err != nil {
		return AccessClaims{}, Key{}, err
	}
	var cs accessClaimSet
	if err := accessClaimsJSON.Decode(payload, &cs); err != nil {
		return AccessClaims{}, Key{}, fmt.Errorf("%w: %v", ErrClaims, err)
	}
	c, err := checkAccessClaims(p, &cs, now)
	return c, key, err
}

// Unix is a NumericDate as a time.
func Unix(f float64) time.Time {
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9))
}

func checkAccessClaims(p *AccessPolicy, cs *accessClaimSet, now time.Time) (AccessClaims, error) {
	if cs.Exp == nil {
		return AccessClaims{}, fmt.Errorf("%w: exp required", ErrClaims)
	}
	exp := Unix(*cs.Exp)
	if !now.Before(exp.Add(p.ExpiryLeeway)) {
		return AccessClaims{}, ErrExpired
	}
	if cs.Nbf != nil && now.Add(p.Leeway).Before(Unix(*cs.Nbf)) {
		return AccessClaims{}, fmt.Errorf("%w: not yet valid", ErrClaims)
	}
	var iat time.Time
	if cs.Iat != nil {
		if iat = Unix(*cs.Iat); now.Add(p.Leeway).Before(iat) {
			return AccessClaims{}, fmt.Errorf("%w: issued in the future", ErrClaims)
		}
	}
	if cs.Iss != p.Issuer {
		return AccessClaims{}, fmt.Errorf("%w: issuer", ErrClaims)
	}
	if !cs.Aud.Contains(p.Audience) {
		return AccessClaims{}, fmt.Errorf("%w: audience", ErrClaims)
	}
	if cs.Sub == "" || cs.Cid == "" || cs.Sid == "" {
		return AccessClaims{}, fmt.Errorf("%w: sub, sid and cid required", ErrClaims)
	}
	if len(cs.Roles) > 64 || len(cs.Scope) > 4096 {
		return AccessClaims{}, fmt.Errorf("%w: too many roles or scopes", ErrClaims)
	}
	return AccessClaims{
		Subject: cs.Sub, SessionID: cs.Sid, CompanyID: cs.Cid, Roles: cs.Roles,
		Scope: cs.Scope, Plan: cs.Plan, TokenID: cs.Jti, IssuedAt: iat, Expiry: exp,
	}, nil
}
